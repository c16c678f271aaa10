import nbformat

from tests.conftest import REPO


def test_colab_notebook_is_valid_and_runs_only_readme_commands():
    notebook = nbformat.read(REPO / "notebooks" / "colab_tpu.ipynb", as_version=4)
    nbformat.validate(notebook)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = [line[1:] for cell in notebook.cells if cell.cell_type == "code"
                for line in cell.source.splitlines() if line.startswith("!")]
    assert any(c.startswith("electra-ja pretrain ") and "--tpu local" in c for c in commands)
    for stage in ("ner-data", "select-checkpoint", "finetune", "evaluate", "export", "predict"):
        assert any(c.startswith(f"electra-ja {stage} ") for c in commands), stage
    assert [c for c in commands if c not in readme] == []
