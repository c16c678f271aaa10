"""NER fine-tuning data (`electra-ja ner-data`): gold character spans (GSD-NE, or a user's files in any format
ner_formats.py reads) -> BIO labels on MeCab words -> first-WordPiece `labeled_positions`, as tf.Examples, plus
what evaluation and users need beside them.

Training words are the tokenizer's own MeCab words, so an entity whose edge falls inside a MeCab word cannot
be reproduced exactly: the words it overlaps are labeled anyway and the entity is counted as unaligned.
A sentence with more tokens than fit is split into windows at word boundaries, never truncated.

Output directory: `{split}.tfrecord`, `{split}.jsonl` (text, gold spans, words, windows: one line per sentence,
windows in the order of the TFRecord's examples), `labels.json`, `stats.json`, `dataset.json`, and a copy of
the tokenizer (`tokenizer/`), so fine-tuning from random init or a TF1 checkpoint knows its vocabulary.

Example:
    build_ner_data(load_gsd("data/ud_japanese_gsd_ne/r2.8-NE"), "build/demo/tokenizer", "build/demo/ner",
                   NerDataConfig())
"""

import collections
import json
from dataclasses import asdict, dataclass

from tensorflow.io import gfile
from tqdm import tqdm

from data_prep import storage
from data_prep.bio import OUTSIDE, label_names
from data_prep.config import NerDataConfig
from data_prep.entities import Entity, Sentence
from data_prep.errors import InputError
from data_prep.records import int64_feature_spec, write_tfrecord
from data_prep.splits import Splits
from data_prep.tokenizer import CLS, SEP, Encoding, JapaneseTokenizer

FEATURES = ("input_ids", "input_mask", "segment_ids", "labeled_positions", "labels", "labels_mask")


@dataclass(frozen=True)
class LabeledSentence:
    """One sentence as evaluation sees it; `windows` are [first_word, end_word) ranges, one per tf.Example."""

    id: str
    text: str
    entities: list[Entity]
    words: list[tuple[int, int]]
    word_labels: list[str]
    windows: list[tuple[int, int]]


def word_labels(words: list[tuple[int, int]], entities: list[Entity]) -> tuple[list[str], list[Entity]]:
    """BIO label per word, and the entities whose edges do not fall on word boundaries."""
    labels, unaligned = [OUTSIDE] * len(words), []
    for entity in entities:
        inside = [i for i, (start, end) in enumerate(words) if start < entity.end and end > entity.start]
        if not inside or words[inside[0]][0] != entity.start or words[inside[-1]][1] != entity.end:
            unaligned.append(entity)
        if inside and all(labels[i] == OUTSIDE for i in inside):
            labels[inside[0]] = f"B-{entity.type}"
            for i in inside[1:]:
                labels[i] = f"I-{entity.type}"
    return labels, unaligned


def windows(encoding: Encoding, max_tokens: int) -> list[tuple[int, int]]:
    """Greedy [first_word, end_word) ranges of at most `max_tokens` WordPieces each, covering every word."""
    sizes = collections.Counter(encoding.token_words)
    ranges, first, used = [], 0, 0
    for word in range(len(encoding.words)):
        if sizes[word] > max_tokens:
            raise InputError(f"--max-seq-length: word {encoding.words[word].text!r} has {sizes[word]} "
                             f"WordPieces, more than the {max_tokens} a window holds")
        if used + sizes[word] > max_tokens:
            ranges.append((first, word))
            first, used = word, 0
        used += sizes[word]
    ranges.append((first, len(encoding.words)))
    return ranges


def window_token_ids(encoding: Encoding, window: tuple[int, int]) -> list[int]:
    """The WordPiece ids of the words [first_word, end_word)."""
    firsts = encoding.first_token_of_each_word() + [len(encoding.token_ids)]
    return encoding.token_ids[firsts[window[0]]:firsts[window[1]]]


def window_features(encoding: Encoding, window: tuple[int, int], label_ids: list[int], cls_id: int,
                    sep_id: int, max_seq_length: int) -> dict[str, list[int]]:
    """[CLS] tokens [SEP] of one window; labels sit on each word's first WordPiece."""
    first_word, end_word = window
    firsts = encoding.first_token_of_each_word() + [len(encoding.token_ids)]
    start = firsts[first_word]
    input_ids = [cls_id] + window_token_ids(encoding, window) + [sep_id]
    labels = label_ids[first_word:end_word]
    return {
        "input_ids": _pad(input_ids, max_seq_length),
        "input_mask": _pad([1] * len(input_ids), max_seq_length),
        "segment_ids": [0] * max_seq_length,
        "labeled_positions": _pad([f - start + 1 for f in firsts[first_word:end_word]], max_seq_length),  # +1: [CLS]
        "labels": _pad(labels, max_seq_length),
        "labels_mask": _pad([1] * len(labels), max_seq_length),
    }


def build_ner_data(splits: Splits, tokenizer_dir: str, out_dir: str, config: NerDataConfig) -> dict:
    """Writes the output directory and returns stats.json's content."""
    tokenizer = JapaneseTokenizer.load(tokenizer_dir)
    types = {split: {e.type for s in sentences for e in s.entities} for split, sentences in splits.items.items()}
    # Every type gets its labels, so evaluation can count the entities of a type train lacks (reported) as missed.
    labels = label_names(set().union(*types.values()))
    # Every split is labeled before anything is written: an error in test must not leave train's files behind.
    labeled = {split: _label_split(split, sentences, tokenizer, labels, config)
               for split, sentences in splits.items.items()}
    storage.make_output_dir(out_dir, "--out")
    for split, (examples, lines, _) in labeled.items():
        write_tfrecord(storage.join(out_dir, f"{split}.tfrecord"), examples)
        storage.write_text(storage.join(out_dir, f"{split}.jsonl"),
                           "".join(json.dumps(asdict(line), ensure_ascii=False) + "\n" for line in lines))
    stats = {split: {**split_stats, "types_not_in_train": sorted(types[split] - types["train"])}
             for split, (_, _, split_stats) in labeled.items()}
    storage.write_json(storage.join(out_dir, "labels.json"), {"scheme": "BIO", "labels": labels})
    tokenizer.save(storage.join(out_dir, "tokenizer"))
    storage.write_json(storage.join(out_dir, "stats.json"), stats)
    storage.write_json(storage.join(out_dir, "dataset.json"), {
        "max_seq_length": config.max_seq_length,
        "vocab_size": tokenizer.vocab_size,
        "vocab_sha256": tokenizer.vocab_hash(),
        "num_labels": len(labels),
        "features": int64_feature_spec(FEATURES, config.max_seq_length),
        "splits": {split: {"sentences": s["sentences"], "examples": s["windows"]} for split, s in stats.items()},
        "source": splits.source,
    })
    return stats


def _label_split(split: str, sentences: list[Sentence], tokenizer: JapaneseTokenizer, labels: list[str],
                 config: NerDataConfig) -> tuple[list[dict[str, list[int]]], list[LabeledSentence], dict]:
    """The split's examples (features by name), its sentences as evaluation reads them, and its statistics."""
    label_index = {name: i for i, name in enumerate(labels)}
    cls_id, sep_id = tokenizer.id_of(CLS), tokenizer.id_of(SEP)
    counts, unaligned_counts = collections.Counter(), collections.Counter()
    examples, lines = [], []
    encodings = tokenizer.encode_many([s.text for s in sentences])
    for sentence, encoding in tqdm(zip(sentences, encodings), total=len(sentences), desc=f"ner-data {split}"):
        words = [(w.start, w.end) for w in encoding.words]
        bio, unaligned = word_labels(words, sentence.entities)
        spans = windows(encoding, config.max_seq_length - 2)
        for window in spans:
            features = window_features(encoding, window, [label_index[b] for b in bio], cls_id, sep_id,
                                       config.max_seq_length)
            examples.append(features)
        lines.append(LabeledSentence(sentence.id, sentence.text, sentence.entities, words, bio, spans))
        counts.update(e.type for e in sentence.entities)
        unaligned_counts.update(e.type for e in unaligned)
    return examples, lines, {
        "sentences": len(sentences),
        "windows": len(examples),
        "sentences_split_into_windows": sum(1 for line in lines if len(line.windows) > 1),
        "words": sum(len(line.words) for line in lines),
        "entities": sum(counts.values()),
        "entities_per_type": dict(sorted(counts.items())),
        "unaligned_entities": sum(unaligned_counts.values()),
        "unaligned_entities_per_type": dict(sorted(unaligned_counts.items())),
    }


def read_labeled_sentences(path: str) -> list[LabeledSentence]:
    """The `{split}.jsonl` written beside each TFRecord, back as LabeledSentence objects."""
    sentences = []
    with gfile.GFile(path, "r") as f:
        for line in f:
            row = json.loads(line)
            row["entities"] = [Entity(**e) for e in row["entities"]]
            row["words"] = [tuple(w) for w in row["words"]]
            row["windows"] = [tuple(w) for w in row["windows"]]
            sentences.append(LabeledSentence(**row))
    return sentences


def _pad(values: list[int], length: int) -> list[int]:
    return values + [0] * (length - len(values))

