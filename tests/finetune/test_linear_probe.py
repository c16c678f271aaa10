"""benchmarks/linear_probe.py: an independent softmax regression per layer, scored as taggers are."""

import collections
import math

import numpy as np

from benchmarks.linear_probe import LayerProbes, probe_scores
from data_prep.tokenizer import JapaneseTokenizer
from finetune.data import NerData


def test_each_layer_is_probed_on_its_own_states():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=[3, 8]) * 3

    def states(count):
        """Layer 0 is noise; layer 1 is its label's centre, a little blurred."""
        labels = rng.integers(0, 3, count)
        return np.stack([rng.normal(size=[count, 8]), centres[labels] + rng.normal(size=[count, 8]) * 0.1], 1), labels

    probes = LayerProbes(*states(3000), num_labels=3, seed=1, epochs=5)
    held_out, labels = states(600)
    accuracy = (probes.probabilities([held_out])[0].argmax(-1) == labels[:, None]).mean(axis=0)
    assert accuracy[1] > 0.99 and accuracy[0] < 0.45, accuracy  # noise stays near chance (1/3), layer 1 is read


def test_probe_scores_per_layer_on_gsd(ner_dir, debug_config):
    data = NerData.load(ner_dir[0])
    scores = probe_scores("random", 12345, debug_config, data, JapaneseTokenizer.load(data.tokenizer_dir), epochs=3)
    layers = debug_config.model.num_hidden_layers + 1  # embeddings first
    prior = collections.Counter(label for s in data.sentences("train") for label in s.word_labels)
    for split in ("dev", "test"):
        assert len(scores[split]["f1"]) == len(scores[split]["loss"]) == layers
        assert all(0 <= f1 <= 1 for f1 in scores[split]["f1"])
        # Even random weights carry each word's identity, which tells more than how often each label occurs.
        words = [label for s in data.sentences(split) for label in s.word_labels]
        prior_loss = -np.mean([math.log(prior[label] / prior.total()) for label in words])
        assert all(loss < prior_loss for loss in scores[split]["loss"]), (scores[split]["loss"], prior_loss)
