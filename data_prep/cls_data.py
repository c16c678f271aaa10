"""Sentence-classification data (`electra-ja cls-data`): labeled texts -> [CLS] text [SEP] windows as tf.Examples.

Input files, by extension: `.jsonl` (`{"text": ..., "label": ...}` a line; other fields ignored) or anything else as
TSV `text<TAB>label` lines (an optional `text<TAB>label` header; blank lines skipped; the label is after the last
tab). Every bad line is an InputError naming file:line; nothing is dropped. Splits not given as files are cut from
train (splits.py). A text longer than a window is split at MeCab word boundaries into several windows, never
truncated; each window carries its text's index, so evaluation and the client average a text's windows.

Output directory: `{split}.tfrecord` (input_ids, input_mask, segment_ids, label_ids, text_index), `{split}.jsonl`
(id, text, label, windows: a line per text, in text_index order), `labels.json` ({"task": "classification",
"labels": [...]}, sorted), `stats.json` (texts, windows and labels per split; labels missing from train),
`dataset.json` (task, sizes, vocabulary hash, features, splits, source) and a copy of the tokenizer.

Example:
    splits = load_cls_files({"train": "reviews.tsv"}, ratio=(80, 10, 10), seed=0)
    build_cls_data(splits, "build/tokenizer", "build/cls", ClsDataConfig())
"""

import collections
import json
from dataclasses import asdict, dataclass

from tqdm import tqdm

from data_prep import storage
from data_prep.config import ClsDataConfig
from data_prep.errors import InputError
from data_prep.ner_data import window_token_ids, windows
from data_prep.records import int64_feature_spec, write_tfrecord
from data_prep.splits import Splits, cut_missing_splits
from data_prep.tokenizer import CLS, SEP, JapaneseTokenizer
from export.contract import CLASSIFICATION

TASK = CLASSIFICATION
FEATURES = ("input_ids", "input_mask", "segment_ids")
LABEL_FEATURES = ("label_ids", "text_index")


@dataclass(frozen=True)
class LabeledText:
    id: str
    text: str
    label: str


def load_cls_files(paths: dict[str, str], ratio: tuple[int, int, int], seed: int) -> Splits:
    """`paths`: train and optionally dev and test; the splits not given are cut from train."""
    return cut_missing_splits({split: read_cls_file(path) for split, path in paths.items()}, paths, ratio, seed)


def read_cls_file(path: str) -> list[LabeledText]:
    texts = []
    jsonl = path.endswith((".jsonl", ".json"))
    for number, line in storage.read_lines(path):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        where = f"{path}:{number}"
        text, label = _json_record(line, where) if jsonl else _tsv_record(line, where)
        if number == 1 and not jsonl and (text.strip().lower(), label.strip().lower()) == ("text", "label"):
            continue  # a header
        if not text.strip():
            raise InputError(f"{where}: empty text")
        if not label.strip() or label != label.strip():
            raise InputError(f"{where}: label {label!r} must be a name without surrounding spaces")
        texts.append(LabeledText(f"{path.rsplit('/', 1)[-1]}:{number}", text, label))
    if not texts:
        raise InputError(f"{path}: no labeled texts")
    return texts


def _tsv_record(line: str, where: str) -> tuple[str, str]:
    text, tab, label = line.rpartition("\t")
    if not tab:
        raise InputError(f"{where}: expected text<TAB>label, got {line[:80]!r}")
    return text, label


def _json_record(line: str, where: str) -> tuple[str, str]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise InputError(f'{where}: expected a record {{"text": ..., "label": ...}}')
    for field in ("text", "label"):
        if field not in record:
            raise InputError(f"{where}: missing field {field!r}")
    if not isinstance(record["text"], str):
        raise InputError(f"{where}: 'text' must be a string")
    if not isinstance(record["label"], (str, int)) or isinstance(record["label"], bool):
        raise InputError(f"{where}: 'label' must be a string or an integer, got {record['label']!r}")
    return record["text"], str(record["label"])


def build_cls_data(splits: Splits, tokenizer_dir: str, out_dir: str, config: ClsDataConfig) -> dict:
    """Writes the output directory and returns stats.json's content."""
    tokenizer = JapaneseTokenizer.load(tokenizer_dir)
    found = {split: {t.label for t in texts} for split, texts in splits.items.items()}
    labels = sorted(set().union(*found.values()))
    # Every split is encoded before anything is written: an error in test must not leave train's files behind.
    encoded = {split: _encode_split(split, texts, tokenizer, labels, config) for split, texts in splits.items.items()}
    storage.make_output_dir(out_dir, "--out")
    stats = {}
    for split, (examples, lines, split_stats) in encoded.items():
        write_tfrecord(storage.join(out_dir, f"{split}.tfrecord"), examples)
        storage.write_text(storage.join(out_dir, f"{split}.jsonl"),
                           "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
        stats[split] = {**split_stats, "labels_not_in_train": sorted(found[split] - found["train"])}
    storage.write_json(storage.join(out_dir, "labels.json"), {"task": TASK, "labels": labels})
    tokenizer.save(storage.join(out_dir, "tokenizer"))
    storage.write_json(storage.join(out_dir, "stats.json"), stats)
    storage.write_json(storage.join(out_dir, "dataset.json"), {
        "task": TASK,
        "max_seq_length": config.max_seq_length,
        "vocab_size": tokenizer.vocab_size,
        "vocab_sha256": tokenizer.vocab_hash(),
        "num_labels": len(labels),
        "features": {**int64_feature_spec(FEATURES, config.max_seq_length), **int64_feature_spec(LABEL_FEATURES, 1)},
        "splits": {split: {"texts": s["texts"], "examples": s["windows"]} for split, s in stats.items()},
        "source": splits.source,
    })
    return stats


def _encode_split(split: str, texts: list[LabeledText], tokenizer: JapaneseTokenizer, labels: list[str],
                  config: ClsDataConfig) -> tuple[list[dict], list[dict], dict]:
    label_index = {name: i for i, name in enumerate(labels)}
    cls_id, sep_id = tokenizer.id_of(CLS), tokenizer.id_of(SEP)
    examples, lines = [], []
    encodings = tokenizer.encode_many([t.text for t in texts])
    for index, (text, encoding) in enumerate(tqdm(zip(texts, encodings), total=len(texts), desc=f"cls-data {split}")):
        if not encoding.token_ids:
            raise InputError(f"{text.id}: the text has no tokens (only spaces or control characters)")
        spans = windows(encoding, config.max_seq_length - 2)
        for window in spans:
            ids = [cls_id] + window_token_ids(encoding, window) + [sep_id]
            padding = [0] * (config.max_seq_length - len(ids))
            examples.append({"input_ids": ids + padding, "input_mask": [1] * len(ids) + padding,
                             "segment_ids": [0] * config.max_seq_length, "label_ids": [label_index[text.label]],
                             "text_index": [index]})
        lines.append({**asdict(text), "windows": len(spans)})
    counts = collections.Counter(t.label for t in texts)
    return examples, lines, {
        "texts": len(texts),
        "windows": len(examples),
        "texts_split_into_windows": sum(1 for line in lines if line["windows"] > 1),
        "texts_per_label": dict(sorted(counts.items())),
    }


def read_texts(path: str) -> list[dict]:
    """A `{split}.jsonl` back: id, text, label and window count of each text, in text_index order."""
    return [json.loads(line) for _, line in storage.read_lines(path) if line.strip()]
