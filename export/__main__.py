from data_prep.console import stage_main

stage_main("export")
