"""Fine-tuning batches: padded to their own longest window (rounded to a multiple of BUCKET_WIDTH), training drawn
from buckets of similar length, evaluation in file order with the answers of fixed-length batches."""

import dataclasses

import numpy as np

from finetune.data import BUCKET_WIDTH, NerData
from finetune.model import TokenTagger
from finetune.trainer import steps_per_epoch


def test_training_batches_are_full_bucketed_and_padded_little(ner_dir):
    data = NerData.load(ner_dir[0])
    widths = set()
    for features, labels in data.dataset("train", 16, training=True, seed=3).take(200):
        width = features["input_ids"].shape[1]
        lengths = features["input_mask"].numpy().sum(axis=1)
        widths.add(width)
        assert features["input_ids"].shape[0] == 16 and width % BUCKET_WIDTH == 0
        assert lengths.min() > width - BUCKET_WIDTH and lengths.max() <= width  # one bucket per batch
        words = (labels.numpy() >= 0).sum(axis=1)
        assert all(np.all(features["labeled_positions"].numpy()[row, words[row]:] == 0) for row in range(16))
        assert all(features[name].shape == (16, width) for name in features) and labels.shape == (16, width)
    assert len(widths) >= 3 and max(widths) <= data.max_seq_length


def test_evaluation_batches_keep_file_order_and_answer_as_fixed_length_ones(ner_dir, debug_config):
    data = NerData.load(ner_dir[0])
    tagger = TokenTagger(debug_config.model, len(data.labels))
    tagger.build_variables()
    dynamic = list(data.dataset("dev", 4))
    fixed = list(data.dataset("dev", 4, fixed_length=True))
    assert len(dynamic) == len(fixed) and sum(len(f["input_ids"]) for f, _ in dynamic) == data.examples("dev")
    # Scoring dev after every epoch builds its pipeline once, and iterating it again gives the same batches.
    assert data.dataset("dev", 4) is data.dataset("dev", 4) and data.dataset("dev", 8) is not data.dataset("dev", 4)
    again = list(data.dataset("dev", 4))
    assert all(np.array_equal(a["input_ids"], b["input_ids"]) for (a, _), (b, _) in zip(dynamic, again))
    assert data.dataset("train", 4, training=True) is not data.dataset("train", 4, training=True)
    assert any(f["input_ids"].shape[1] < data.max_seq_length for f, _ in dynamic)
    for (short, short_labels), (full, full_labels) in zip(dynamic, fixed):
        width = short["input_ids"].shape[1]
        assert width % BUCKET_WIDTH == 0
        np.testing.assert_array_equal(short["input_ids"], full["input_ids"][:, :width])
        np.testing.assert_array_equal(short_labels, full_labels[:, :width])
        real = short_labels.numpy() >= 0
        np.testing.assert_allclose(tagger(short).numpy()[real], tagger(full).numpy()[:, :width][real], atol=1e-5)


def test_a_labelled_data_budget_trains_on_one_subset_whatever_the_seed(ner_dir, debug_config):
    data = NerData.load(ner_dir[0])
    budget = dataclasses.replace(debug_config, finetune=dataclasses.replace(debug_config.finetune, batch_size=8,
                                                                            max_train_examples=40))
    assert steps_per_epoch(budget, data) == 5

    def windows_seen(seed: int, budget: int, batches: int) -> list[bytes]:
        seen = []
        for features, _ in data.dataset("train", 8, training=True, seed=seed, max_examples=budget).take(batches):
            seen += [row.tobytes() for row in features["input_ids"].numpy()]
        return seen

    # three passes over 40 windows; buckets hold windows back until they fill, so most of the 40 appear, maybe not all
    first, second = windows_seen(1, 40, 15), windows_seen(2, 40, 15)
    assert 32 <= len(set(first)) <= 40 and set(first) == set(second) and first != second
    assert len(set(windows_seen(1, 0, 15))) > 40  # no budget: every window can be drawn
