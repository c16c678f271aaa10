"""A user's NER files: char-span JSON and JSONL, and CoNLL token/tag files in IOB2, IOB1, BIOES and BILOU, all with
Japanese type names, read to the same sentences and the same ner-data; bad records fail with file:line; a split cut
from a single file reruns identically; and such data goes through finetune, export and predict."""

import json
import pathlib
import re
import subprocess
import sys

import pytest

from data_prep.console import registered_commands, run
from data_prep.errors import InputError
from data_prep.ner_formats import read_ner_file
from data_prep.splits import cut_missing_splits, parse_ratio
from tests.serving.test_cli import CONSOLE

# Each sentence as chunks of (tokens, entity type or None); neighbouring chunks of one type are two entities.
SENTENCES = [
    [(["山田", "太郎"], "人名"), (["は"], None), (["東京"], "地名"), (["に", "住ん", "で", "いる", "。"], None)],
    [(["トヨタ", "自動車"], "法人名"), (["は"], None), (["愛知", "県"], "地名"), (["に", "ある", "。"], None)],
    [(["鈴木", "花子"], "人名"), (["が"], None), (["大阪"], "地名"), (["で", "講演", "し", "た", "。"], None)],
    [(["ソニー"], "法人名"), (["の", "本社", "は"], None), (["東京"], "地名"), (["に", "ある", "。"], None)],
    [(["東京"], "地名"), (["大阪"], "地名"), (["を", "結ぶ", "新幹線", "。"], None)],
    [(["日本", "銀行"], "法人名"), (["は", "金利", "を", "据え置い", "た", "。"], None)],
    [(["任天堂"], "法人名"), (["は"], None), (["京都"], "地名"), (["の", "会社", "だ", "。"], None)],
    [(["佐藤"], "人名"), (["さん", "は"], None), (["京都"], "地名"), (["を", "訪れ", "た", "。"], None)],
]


def text_and_spans(chunks) -> tuple[str, list[tuple[int, int, str]]]:
    text, spans = "", []
    for tokens, kind in chunks:
        if kind:
            spans.append((len(text), len(text) + len("".join(tokens)), kind))
        text += "".join(tokens)
    return text, spans


def chunk_tags(tokens, kind, scheme, follows_same_type) -> list[str]:
    if kind is None:
        return ["O"] * len(tokens)
    if scheme == "iob1":
        return [("B" if follows_same_type and i == 0 else "I") + f"-{kind}" for i in range(len(tokens))]
    if scheme == "iob2":
        return [("B" if i == 0 else "I") + f"-{kind}" for i in range(len(tokens))]
    single, begin, inside, last = ("S", "B", "I", "E") if scheme == "bioes" else ("U", "B", "I", "L")
    if len(tokens) == 1:
        return [f"{single}-{kind}"]
    return [f"{begin}-{kind}"] + [f"{inside}-{kind}"] * (len(tokens) - 2) + [f"{last}-{kind}"]


def conll(sentences, scheme, separator="\t") -> str:
    blocks = []
    for chunks in sentences:
        lines, previous = [], None
        for tokens, kind in chunks:
            tags = chunk_tags(tokens, kind, scheme, kind is not None and kind == previous)
            lines += [f"{token}{separator}{tag}" for token, tag in zip(tokens, tags)]
            previous = kind
        blocks.append("\n".join(lines))
    return "-DOCSTART-\tO\n\n" + "\n\n".join(blocks) + "\n"


def char_span_records(sentences) -> list[dict]:
    records = []
    for index, chunks in enumerate(sentences):
        text, spans = text_and_spans(chunks)
        records.append({"curid": str(100 + index), "text": text, "name": f"記事{index}",  # other fields are kept aside
                        "entities": [{"name": text[s:e], "span": [s, e], "type": t} for s, e, t in spans]})
    return records


def write_format(directory: pathlib.Path, name: str, sentences=SENTENCES) -> str:
    """One of FORMATS of `sentences` in `directory`; returns its path."""
    records = char_span_records(sentences)
    contents = {
        "json": ("data.json", json.dumps(records, ensure_ascii=False, indent=1)),
        "jsonl": ("data.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)),
        "iob2": ("data.iob2", conll(sentences, "iob2")),
        "iob1": ("data.iob1", conll(sentences, "iob1", separator=" ")),
        "bioes": ("data.bioes", conll(sentences, "bioes")),
        "bilou": ("data.bilou", conll(sentences, "bilou", separator=" ")),
    }
    file_name, content = contents[name]
    path = directory / file_name
    path.write_text(content, encoding="utf-8")
    return str(path)


FORMATS = ("json", "jsonl", "iob2", "iob1", "bioes", "bilou")


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_reads_the_gold_spans(tmp_path, name):
    sentences = read_ner_file(write_format(tmp_path, name))
    expected = [text_and_spans(chunks) for chunks in SENTENCES]
    assert [(s.text, [(e.start, e.end, e.type) for e in s.entities]) for s in sentences] == expected
    assert sum(len(s.entities) for s in sentences) == 15


def test_every_format_gives_the_same_ner_data(tmp_path, tokenizer_dir):
    outputs = {}
    for name in FORMATS:
        path = write_format(tmp_path, name)
        out = tmp_path / f"ner-{name}"
        assert run(["ner-data", "--train", path, "--dev", path, "--test", path, "--tokenizer", tokenizer_dir,
                    "--out", str(out), "--max-seq-length", "32"], registered_commands()) == 0
        outputs[name] = {file: (out / file).read_bytes() for file in ("train.tfrecord", "labels.json")}
        assert json.loads((out / "dataset.json").read_text())["source"] == {"train": path, "dev": path, "test": path}
    assert json.loads(outputs["json"]["labels.json"])["labels"] == ["O", "B-人名", "I-人名", "B-地名", "I-地名",
                                                                      "B-法人名", "I-法人名"]
    assert all(output == outputs["json"] for output in outputs.values())


def test_types_missing_from_train_are_reported(tmp_path, tokenizer_dir, capsys):
    (tmp_path / "a").mkdir()
    train = write_format(tmp_path / "a", "jsonl", [s for s in SENTENCES if all(k != "法人名" for _, k in s)])
    dev = write_format(tmp_path, "iob2")
    out = tmp_path / "ner"
    assert run(["ner-data", "--train", train, "--dev", dev, "--test", dev, "--tokenizer", tokenizer_dir,
                "--out", str(out)], registered_commands()) == 0
    assert "ner-data dev: types not in train (no model can learn them): 法人名" in capsys.readouterr().out
    stats = json.loads((out / "stats.json").read_text())
    assert stats["test"]["types_not_in_train"] == ["法人名"] and stats["train"]["types_not_in_train"] == []
    assert stats["test"]["entities_per_type"] == {"人名": 3, "地名": 8, "法人名": 4}


def many_records(count: int) -> list[dict]:
    return [char_span_records([SENTENCES[i % 8]])[0] | {"curid": str(i)} for i in range(count)]


def test_a_single_file_is_cut_by_seed_and_reruns_identically(tmp_path, tokenizer_dir):
    path = tmp_path / "all.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in many_records(40)), encoding="utf-8")
    runs = {}
    for name, seed in (("first", "0"), ("again", "0"), ("other", "1")):
        out = tmp_path / name
        assert run(["ner-data", "--train", str(path), "--tokenizer", tokenizer_dir, "--out", str(out),
                    "--split-seed", seed], registered_commands()) == 0
        runs[name] = {split: [json.loads(line)["id"] for line in (out / f"{split}.jsonl").read_text().splitlines()]
                      for split in ("train", "dev", "test")}
    assert runs["first"] == runs["again"] != runs["other"]
    ids = runs["first"]
    assert (len(ids["train"]), len(ids["dev"]), len(ids["test"])) == (32, 4, 4)
    assert sorted(ids["train"] + ids["dev"] + ids["test"], key=int) == [str(i) for i in range(40)]
    dataset = json.loads((tmp_path / "first" / "dataset.json").read_text())
    assert dataset["source"] == {"train": str(path), "cut_from_train": {
        "split": "80/10/10", "seed": 0, "splits": ["dev", "test"], "records": {"train": 32, "dev": 4, "test": 4}}}


def test_a_given_dev_file_is_kept_and_only_test_is_cut(tmp_path):
    given = {"train": list(range(30)), "dev": ["d"]}
    splits = cut_missing_splits(given, {"train": "t.jsonl", "dev": "d.jsonl"}, parse_ratio("80/10/10"), seed=3)
    assert splits.items["dev"] == ["d"] and len(splits.items["test"]) == 3 and len(splits.items["train"]) == 27
    assert not set(splits.items["test"]) & set(splits.items["train"])


@pytest.mark.parametrize("ratio, records, message", [
    ("80/10", 30, r"--split 80/10: expected TRAIN/DEV/TEST weights such as 80/10/10"),
    ("80/0/10", 30, r"no --dev file was given, so its weight must be above 0"),
    ("80/10/10", 4, r"t.jsonl: 4 records are too few to cut dev and test from them"),
])
def test_impossible_splits_are_clear_errors(ratio, records, message):
    with pytest.raises(InputError, match=message):
        cut_missing_splits({"train": list(range(records))}, {"train": "t.jsonl"}, parse_ratio(ratio), seed=0)


GOOD = {"text": "山田太郎は東京に住む。", "entities": [{"span": [0, 4], "type": "人名"}]}


@pytest.mark.parametrize("file_name, content, message", [
    ("x.jsonl", [GOOD, {"text": "東京", "entities": [{"span": [0, 9], "type": "地名"}]}],
     r"x.jsonl:2: entity 0: span \[0, 9\] lies outside the text's 2 characters"),
    ("x.jsonl", [GOOD, GOOD, {"text": "東京", "entities": [{"span": [2, 1], "type": "地名"}]}],
     r"x.jsonl:3: entity 0: span \[2, 1\] is reversed"),
    ("x.jsonl", [{"text": "東京", "entities": [{"span": [1, 1], "type": "地名"}]}], r"x.jsonl:1: entity 0: .* is empty"),
    ("x.jsonl", [{"text": "東京タワー", "entities": [{"span": [0, 2], "type": "地名"}, {"span": [1, 5], "type": "施設"}]}],
     r"x.jsonl:1: entities overlap: \[0, 2\] 地名 and \[1, 5\] 施設"),
    ("x.jsonl", [GOOD, {"entities": []}], r"x.jsonl:2: missing field 'text'"),
    ("x.jsonl", [{"text": "東京", "entities": [{"span": [0, 2]}]}], r"x.jsonl:1: entity 0: expected \{\"span\""),
    ("x.json", [GOOD, {"text": "東京"}], r"x.json: record 1: missing field 'entities'"),
    ("x.json", [GOOD, {"text": "東京", "entities": [{"span": ["0", 2], "type": "地名"}]}],
     r"x.json: record 1: entity 0: span must be \[start, end\] in characters"),
])
def test_bad_char_span_records_name_the_line_or_record(tmp_path, file_name, content, message):
    path = tmp_path / file_name
    text = json.dumps(content, ensure_ascii=False) if file_name.endswith(".json") else \
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in content)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_ner_file(str(path))


@pytest.mark.parametrize("lines, scheme, message", [
    ("山田\tB-人名\nは\tO\n東京\tI-地名\n", "iob2", r"x.tsv:3: I-地名 does not continue an open 地名 entity \(IOB2"),
    ("山田\tB-人名\n太郎\tO\n", "bioes", r"x.tsv:2: O follows an unfinished 人名 entity"),
    ("山田\tB-人名\n太郎\tI-人名\n", "bioes", r"x.tsv:2: the sentence ends inside a 人名 entity"),
    ("山田\tX-人名\n", "auto", r"x.tsv:1: tag 'X-人名' is not O or B/I-TYPE \(iob2\)"),
    ("山田\tB-\n", "iob2", r"x.tsv:1: tag 'B-' is not O or B/I-TYPE"),
    ("山田\n", "auto", r"x.tsv:1: expected token<TAB>tag"),
    ("山田\tI-人名\nは\tO\n\n東京\tB-地名\nに\tO\n", "auto",
     r"x.tsv: mixes IOB1 \(line 1: an entity opens with I-\) and IOB2 \(line 4: B- after O\)"),
])
def test_bad_tag_files_name_the_line(tmp_path, lines, scheme, message):
    path = tmp_path / "x.tsv"
    path.write_text(lines, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_ner_file(str(path), tag_scheme=scheme)


@pytest.mark.parametrize("argv, message", [
    (["--gsd", "g", "--dev", "d.jsonl"], "--dev/--test: give them with --train"),
    (["--train", "{missing}"], "no such file"),
    (["--train", "{bad}"], r"bad.jsonl:1: not valid JSON"),
])
def test_ner_data_flags_fail_with_one_line_and_write_nothing(tmp_path, tokenizer_dir, capsys, argv, message):
    (tmp_path / "bad.jsonl").write_text("{not json\n", encoding="utf-8")
    fill = {"missing": str(tmp_path / "missing.jsonl"), "bad": str(tmp_path / "bad.jsonl")}
    code = run(["ner-data", *[a.format(**fill) for a in argv], "--tokenizer", tokenizer_dir,
                "--out", str(tmp_path / "out")], registered_commands())
    error = capsys.readouterr().err
    assert code == 2 and re.search(message, error), error
    assert len(error.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_your_data_goes_through_finetune_export_and_predict(tmp_path, tokenizer_dir):
    """Japanese type names from a JSONL file all the way to predict's answer: the tagger overfits 8 sentences."""
    path = write_format(tmp_path, "jsonl")
    ner, model, export = (str(tmp_path / name) for name in ("ner", "model", "export"))
    commands = [
        ["ner-data", "--train", path, "--dev", path, "--test", path, "--tokenizer", tokenizer_dir, "--out", ner,
         "--config", "configs/debug.yaml"],
        ["finetune", "--data", ner, "--init-checkpoint", "random", "--out", model, "--config",
         "configs/debug.yaml", "--set", "finetune.batch_size=4", "--set", "finetune.num_epochs=60",
         "--set", "finetune.learning_rate=3e-3", "--set", "finetune.layerwise_lr_decay=1.0"],
        ["export", "--model", model, "--export-dir", export],
    ]
    for argv in commands:
        assert run(argv, registered_commands()) == 0, argv
    assert json.loads(pathlib.Path(model, "results.json").read_text())["test"]["f1"] == 1.0
    text, spans = text_and_spans(SENTENCES[1])
    result = subprocess.run([sys.executable, "-c", CONSOLE, "predict", "--model-base-path", export, text],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert [(e["start"], e["end"], e["type"]) for e in answer["entities"]] == spans
