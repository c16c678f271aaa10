import json
import os
import shutil
import subprocess
import sys

import pytest

from data_prep.console import main
from data_prep.demo import CLASSIFIED_TEXTS
from tests.conftest import DEBUG_CONFIG, GSD_DIR, REPO

ELECTRA_JA = shutil.which("electra-ja", path=os.path.dirname(sys.executable)) or shutil.which("electra-ja")


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_lists_the_data_prep_commands():
    result = subprocess.run([ELECTRA_JA, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for command in ("corpus", "vocab", "pretraining-data", "ner-data", "demo"):
        assert command in result.stdout


def test_errors_are_one_line_without_traceback(tmp_path):
    result = subprocess.run([ELECTRA_JA, "corpus", "--source", str(tmp_path / "missing.txt"), "--out",
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == \
        f"electra-ja corpus: error: --source {tmp_path / 'missing.txt'}: no such file or directory"


@pytest.mark.parametrize("argv, message", [
    (["corpus", "--source", "tfds:no_such_dataset", "--out", "{tmp}/c"], "--source tfds:no_such_dataset: Dataset"),
    (["corpus", "--source", "{in}/sjis.txt", "--out", "{tmp}/c"], "sjis.txt:2: not UTF-8 text"),
    (["corpus", "--source", "{in}/empty.txt", "--out", "{in}/empty.txt"], "--out {in}/empty.txt: cannot create"),
    (["corpus", "--source", "{in}/empty.txt", "--out", "{tmp}/c", "--num-shards", "0"],
     "--num-shards: CorpusConfig.num_shards: must be at least 1, got 0"),
    (["corpus", "--source", "{in}/empty.txt", "--out", "{tmp}/c", "--set", "corpus.num_shards=two"],
     "CorpusConfig.num_shards: expected int, got 'two'"),
    (["vocab", "--corpus", "{in}/empty.txt", "--out", "{tmp}/t"], "no text to train a vocabulary on"),
    (["vocab", "--corpus", str(GSD_DIR / "text" / "dev.txt"), "--out", "{tmp}/t", "--vocab-size", "10"],
     "vocab.vocab_size (--vocab-size) 10: smaller than the"),
    (["ner-data", "--gsd", "{in}/bad", "--tokenizer", "{tokenizer}", "--out", "{tmp}/n"],
     "ja_gsd-ud-train.ne.conllu:1: expected 10 tab-separated CoNLL-U columns, got 2"),
    (["ner-data", "--gsd", "{in}/bad_test", "--tokenizer", "{tokenizer}", "--out", "{tmp}/n"],
     "test.bio:1: expected token<TAB>tag"),
    (["ner-data", "--gsd", "{in}/long_test", "--tokenizer", "{tokenizer}", "--out", "{tmp}/n", "--max-seq-length",
      "3"], "--max-seq-length: word 'ホッケーホッケーホッケー' has"),
    (["ner-data", "--gsd", "{in}/bad_test", "--tokenizer", "{tokenizer}", "--out", "{tmp}/n", "--max-seq-length",
      "2"], "--max-seq-length: NerDataConfig.max_seq_length: must be at least 3, got 2"),
    (["pretraining-data", "--corpus", str(GSD_DIR / "text" / "dev.txt"), "--tokenizer", "{tmp}", "--out",
      "{tmp}/p"], "--tokenizer {tmp}: no vocab.txt"),
    (["pretraining-data", "--corpus", "{in}/empty.txt", "--tokenizer", "{tokenizer}", "--out", "{tmp}/p"],
     "--corpus {in}/empty.txt: no sentences to build examples from"),
])
def test_bad_input_exits_2_naming_the_culprit(capsys, tmp_path, tokenizer_dir, argv, message):
    inputs = tmp_path / "in"
    (inputs / "bad").mkdir(parents=True)
    (inputs / "empty.txt").write_text("\n", encoding="utf-8")
    (inputs / "sjis.txt").write_bytes("一行目。\n".encode("utf-8") + "二行目。\n".encode("shift_jis"))
    (inputs / "bad" / "ja_gsd-ud-train.ne.conllu").write_text("1\t東京\n", encoding="utf-8")
    (inputs / "bad_test").mkdir()
    for split in ("train", "dev"):  # good splits: their output must not be left behind when test fails
        (inputs / "bad_test" / f"{split}.bio").write_text("東京\tB-GPE\nに\tO\n", encoding="utf-8")
    (inputs / "bad_test" / "test.bio").write_text("東京\n", encoding="utf-8")
    shutil.copytree(inputs / "bad_test", inputs / "long_test")
    (inputs / "long_test" / "test.bio").write_text("ホッケーホッケーホッケー\tB-GPE\n", encoding="utf-8")
    fill = {"tmp": str(tmp_path), "in": str(inputs), "tokenizer": tokenizer_dir}
    code, _, err = run_cli(capsys, *[a.format(**fill) for a in argv])
    assert code == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message.format(**fill) in errors[0]
    assert [p for p in tmp_path.rglob("*") if p != inputs and inputs not in p.parents] == []  # not even a dir


def test_demo_runs_every_stage(tmp_path):
    result = subprocess.run([ELECTRA_JA, "demo", "--config", str(DEBUG_CONFIG), "--data-dir", str(REPO / "data"),
                             "--work-dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    for line in ("corpus: ", "vocab: 4000 WordPieces", "pretraining-data: ", "ner-data test: 543 sentences",
                 "pretrain: step 300 reached", "finetune dev: precision", "finetune test: precision",
                 "export: SavedModel at", "serve: model 'ner' version 1", "serve: stopped",
                 "cls-data test: 1000 texts", "finetune test: accuracy"):
        assert line in result.stdout
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"text"')]
    classified = [line for line in lines if "label" in line]
    assert [line["text"] for line in classified] == list(CLASSIFIED_TEXTS)
    assert all(set(line["scores"]) == {"小説", "百科・報道"} for line in classified)
    answers = [line for line in lines if "entities" in line]
    assert len(answers) == 4  # two texts, over gRPC and over REST
    assert answers[:2] == answers[2:]
    for answer in answers:
        assert all(answer["text"][e["start"]:e["end"]] == e["text"] for e in answer["entities"])
    assert json.load(open(tmp_path / "pretrain_data" / "dataset.json"))["complete"]
    assert os.path.exists(tmp_path / "ner" / "labels.json")
    assert os.path.exists(tmp_path / "pretrain" / "encoder" / "ckpt-300.index")
    results = json.load(open(tmp_path / "finetuned" / "results.json"))
    test_types = {"DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "MOVEMENT", "NORP", "ORDINAL",
                  "ORG", "PERCENT", "PERSON", "PRODUCT", "QUANTITY", "TIME", "TITLE_AFFIX", "WORK_OF_ART"}
    assert set(results["test"]["per_type"]) >= test_types
    assert sum(results["test"]["per_type"][kind]["gold"] for kind in test_types) == 609
    assert results["init"]["kind"] == "pretrained" and results["summary"]["test"]["f1"]["std"] == 0.0
