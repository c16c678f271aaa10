"""`electra-ja demo`: every stage on configs/debug.yaml and the shipped data, each through its own CLI.

Stages are called by command name through the dispatcher, so the demo exercises exactly what users type.
"""

import time

from data_prep.console import Command, registered_commands, run


def demo_steps(config: str, data_dir: str, work_dir: str) -> list[tuple[str, list[str]]]:
    gsd = f"{data_dir}/ud_japanese_gsd_ne/r2.8-NE"
    corpus, tokenizer = f"{work_dir}/corpus", f"{work_dir}/tokenizer"
    common = ["--config", config]
    return [
        # Pretraining text: the novel plus GSD's train sentences (never dev/test, which we evaluate on).
        ("corpus", ["--source", f"{data_dir}/corpus/wagahaiwa_nekodearu.txt", f"{gsd}/text/train.txt",
                    "--out", corpus, *common]),
        ("vocab", ["--corpus", corpus, "--out", tokenizer, *common]),
        ("pretraining-data", ["--corpus", corpus, "--tokenizer", tokenizer, "--out", f"{work_dir}/pretrain_data",
                              *common]),
        ("ner-data", ["--gsd", gsd, "--tokenizer", tokenizer, "--out", f"{work_dir}/ner", *common]),
        ("pretrain", ["--data", f"{work_dir}/pretrain_data", "--model-dir", f"{work_dir}/pretrain", *common]),
        ("finetune", ["--data", f"{work_dir}/ner", "--init-checkpoint", f"{work_dir}/pretrain",
                      "--out", f"{work_dir}/finetuned", *common]),
    ]


def _add_arguments(parser):
    parser.add_argument("--config", default="configs/debug.yaml")
    parser.add_argument("--data-dir", default="data", help="the shipped data (GSD-NE and the sample corpus)")
    parser.add_argument("--work-dir", default="build/demo", help="where every stage writes its output")


def _run(args):
    from data_prep.errors import InputError

    commands = registered_commands()
    for name, argv in demo_steps(args.config, args.data_dir, args.work_dir):
        print(f"\n=== electra-ja {name} {' '.join(argv)}", flush=True)
        started = time.time()
        if run([name, *argv], commands) != 0:
            raise InputError(f"demo stopped: `electra-ja {name}` failed (see above)")
        print(f"--- {name} done in {time.time() - started:.1f}s", flush=True)
    print(f"\ndemo: all stages ran; outputs under {args.work_dir}")


demo_command = Command("run every stage on configs/debug.yaml and the shipped data", _add_arguments, _run)
