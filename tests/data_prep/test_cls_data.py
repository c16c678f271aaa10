"""cls-data: TSV and JSONL labeled texts, windows for long texts (never truncated), seeded splits, file:line errors."""

import json

import pytest
import tensorflow as tf

from data_prep.cls_data import read_cls_file
from data_prep.console import registered_commands, run
from data_prep.errors import InputError
from data_prep.tokenizer import JapaneseTokenizer

TEXTS = [("吾輩は猫である。名前はまだ無い。", "小説"), ("東京都は日本の首都である。", "百科事典"),
         ("どこで生れたかとんと見当がつかぬ。", "小説"), ("大阪市は関西の中心都市である。", "百科事典")]


def write_tsv(path, rows, header=True):
    path.write_text(("text\tlabel\n" if header else "") + "".join(f"{t}\t{l}\n" for t, l in rows) + "\n",
                    encoding="utf-8")
    return str(path)


def test_tsv_and_jsonl_read_the_same_texts(tmp_path):
    tsv = read_cls_file(write_tsv(tmp_path / "a.tsv", TEXTS))
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"id": i, "text": t, "label": l}, ensure_ascii=False) + "\n"
                                              for i, (t, l) in enumerate(TEXTS)), encoding="utf-8")
    jsonl = read_cls_file(str(tmp_path / "a.jsonl"))
    assert [(t.text, t.label) for t in tsv] == [(t.text, t.label) for t in jsonl] == TEXTS


def test_long_texts_become_windows_that_cover_every_token(tmp_path, tokenizer_dir):
    long_text = "".join(t for t, _ in TEXTS) * 3
    train = write_tsv(tmp_path / "train.tsv", TEXTS + [(long_text, "小説")])
    out = tmp_path / "cls"
    assert run(["cls-data", "--train", train, "--dev", train, "--test", train, "--tokenizer", tokenizer_dir,
                "--out", str(out), "--max-seq-length", "16"], registered_commands()) == 0
    spec = {name: tf.io.FixedLenFeature([16], tf.int64) for name in ("input_ids", "input_mask", "segment_ids")}
    spec.update({name: tf.io.FixedLenFeature([1], tf.int64) for name in ("label_ids", "text_index")})
    examples = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(str(out / "train.tfrecord"))]
    long_windows = [e for e in examples if int(e["text_index"][0]) == 4]
    assert len(long_windows) > 3 and all(int(e["label_ids"][0]) == 0 for e in long_windows)  # 小説 sorts first
    tokenizer = JapaneseTokenizer.load(tokenizer_dir)
    pieces = [i for e in long_windows for i in e["input_ids"].numpy().tolist()[1:int(sum(e["input_mask"])) - 1]]
    assert pieces == tokenizer.encode(long_text).token_ids
    assert json.loads((out / "labels.json").read_text()) == {"task": "classification", "labels": ["小説", "百科事典"]}
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["task"] == "classification" and dataset["splits"]["train"] == {"texts": 5,
                                                                                  "examples": len(examples)}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["test"]["texts_split_into_windows"] == 1 and stats["test"]["texts_per_label"] == {"小説": 3,
                                                                                                   "百科事典": 2}
    lines = [json.loads(line) for line in (out / "dev.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [line["windows"] for line in lines] == [1, 1, 1, 1, len(long_windows)]


def test_a_single_file_is_split_by_seed_and_labels_missing_from_train_are_reported(tmp_path, tokenizer_dir, capsys):
    rows = [(f"{text}{i}番目。", label) for i in range(10) for text, label in TEXTS]
    train = write_tsv(tmp_path / "all.tsv", rows, header=False)
    ids = []
    for name in ("a", "b"):
        assert run(["cls-data", "--train", train, "--tokenizer", tokenizer_dir, "--out", str(tmp_path / name)],
                   registered_commands()) == 0
        ids.append({split: [json.loads(line)["id"] for line in (tmp_path / name / f"{split}.jsonl").read_text(
            encoding="utf-8").splitlines()] for split in ("train", "dev", "test")})
    assert ids[0] == ids[1] and [len(ids[0][s]) for s in ("train", "dev", "test")] == [32, 4, 4]
    assert not set(ids[0]["train"]) & (set(ids[0]["dev"]) | set(ids[0]["test"]))
    other = write_tsv(tmp_path / "other.tsv", [("新しい種類の文。", "新聞")])
    assert run(["cls-data", "--train", train, "--test", other, "--tokenizer", tokenizer_dir, "--out",
                str(tmp_path / "c")], registered_commands()) == 0
    assert "cls-data test: labels not in train (no model can learn them): 新聞" in capsys.readouterr().out


@pytest.mark.parametrize("name, content, message", [
    ("x.tsv", "吾輩は猫である。\n", r"x.tsv:1: expected text<TAB>label"),
    ("x.tsv", "吾輩は猫である。\t小説\n\t小説\n", r"x.tsv:2: empty text"),
    ("x.tsv", "吾輩は猫である。\t 小説\n", r"x.tsv:1: label ' 小説' must be a name without surrounding spaces"),
    ("x.jsonl", '{"text": "吾輩"}\n', r"x.jsonl:1: missing field 'label'"),
    ("x.jsonl", '{"text": "吾輩", "label": "a"}\n{"text": "猫", "label": true}\n', r"x.jsonl:2: 'label' must be"),
    ("x.jsonl", '{"text": "吾輩", "label": "a"}\n{oops\n', r"x.jsonl:2: not valid JSON"),
])
def test_bad_lines_name_file_and_line(tmp_path, name, content, message):
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_cls_file(str(tmp_path / name))
