import json
import os

import tensorflow as tf

from data_prep.entities import Entity
from data_prep.ner_data import FEATURES, read_labeled_sentences, window_features, windows, word_labels


def test_stats_report_release_counts_and_unaligned_entities(ner_dir):
    out, stats = ner_dir
    assert {s: (v["sentences"], v["entities"]) for s, v in stats.items()} == \
        {"train": (7050, 10924), "dev": (507, 795), "test": (543, 609)}
    assert all(0 < v["unaligned_entities"] < v["entities"] * 0.02 for v in stats.values())
    on_disk = json.load(open(os.path.join(out, "stats.json")))
    assert on_disk["test"]["entities_per_type"]["PERSON"] == stats["test"]["entities_per_type"]["PERSON"]
    labels = json.load(open(os.path.join(out, "labels.json")))
    assert labels["scheme"] == "BIO" and labels["labels"][0] == "O" and len(labels["labels"]) == 45


def test_tfrecords_have_design_features_and_one_example_per_window(ner_dir):
    out, stats = ner_dir
    spec = {name: tf.io.FixedLenFeature([64], tf.int64) for name in FEATURES}
    dataset = tf.data.TFRecordDataset(os.path.join(out, "dev.tfrecord")).map(
        lambda r: tf.io.parse_single_example(r, spec))
    examples = list(dataset.as_numpy_iterator())
    assert len(examples) == stats["dev"]["windows"] > stats["dev"]["sentences"]
    sentences = read_labeled_sentences(os.path.join(out, "dev.jsonl"))
    assert sum(len(s.windows) for s in sentences) == len(examples)
    labels = json.load(open(os.path.join(out, "labels.json")))["labels"]
    windows_in_order = [(s, w) for s in sentences for w in s.windows]
    for example, (sentence, (first, end)) in zip(examples, windows_in_order):
        count = int(example["labels_mask"].sum())
        assert count == end - first  # every word of the window is labeled, none twice
        assert [labels[i] for i in example["labels"][:count]] == sentence.word_labels[first:end]
        positions = example["labeled_positions"][:count]
        assert list(positions) == sorted(positions) and positions[0] == 1
        assert all(example["input_mask"][p] == 1 for p in positions)


def test_long_sentences_are_windowed_never_truncated(ner_dir):
    out, stats = ner_dir
    assert stats["train"]["sentences_split_into_windows"] > 0
    for sentence in read_labeled_sentences(os.path.join(out, "train.jsonl")):
        covered = [w for first, end in sentence.windows for w in range(first, end)]
        assert covered == list(range(len(sentence.words)))


def test_entities_on_word_edges_are_labeled_exactly_and_only_the_others_count_as_unaligned(ner_dir):
    out, stats = ner_dir
    aligned = 0
    for sentence in read_labeled_sentences(os.path.join(out, "test.jsonl")):
        starts = {w[0]: i for i, w in enumerate(sentence.words)}
        ends = {w[1]: i for i, w in enumerate(sentence.words)}
        labels = sentence.word_labels + ["O"]
        for entity in sentence.entities:
            if entity.start in starts and entity.end in ends:
                first, last = starts[entity.start], ends[entity.end]
                assert labels[first:last + 1] == [f"B-{entity.type}"] + [f"I-{entity.type}"] * (last - first)
                assert labels[last + 1] != f"I-{entity.type}"
                aligned += 1
    assert aligned > 400
    assert stats["test"]["entities"] - stats["test"]["unaligned_entities"] == aligned


def test_word_labels_and_unaligned_entities():
    words = [(0, 2), (2, 5), (6, 8), (8, 9)]  # e.g. 東京 タワー が ...
    labels, unaligned = word_labels(words, [Entity(0, 5, "FAC"), Entity(7, 8, "GPE")])
    assert labels == ["B-FAC", "I-FAC", "B-GPE", "O"]
    assert unaligned == [Entity(7, 8, "GPE")]


def test_windows_and_features_for_a_sentence_longer_than_the_model(tokenizer):
    encoding = tokenizer.encode("吾輩は猫である。" * 10)
    spans = windows(encoding, max_tokens=14)
    assert spans[0][0] == 0 and spans[-1][1] == len(encoding.words) and len(spans) > 3
    features = window_features(encoding, spans[1], list(range(len(encoding.words))), 2, 3, 16)
    assert all(len(v) == 16 for v in features.values())
    assert features["labels"][:spans[1][1] - spans[1][0]] == list(range(*spans[1]))
