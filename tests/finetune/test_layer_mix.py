"""benchmarks/layer_mix.py: a tagger whose classifier reads a learnt mix of every layer, fine-tuned as ours are."""

import dataclasses

import numpy as np
import tensorflow as tf

from benchmarks.layer_mix import LayerMixTagger
from data_prep.tokenizer import JapaneseTokenizer
from finetune.data import NerData
from finetune.model import TokenTagger
from finetune.trainer import Initialization, train_trial


def test_a_mix_all_on_the_top_layer_is_the_plain_tagger(ner_dir, debug_config):
    data = NerData.load(ner_dir[0])
    features, _ = next(iter(data.dataset("dev", 4)))
    plain, mixed = (model(debug_config.model, len(data.labels)) for model in (TokenTagger, LayerMixTagger))
    plain.build_variables(), mixed.build_variables()
    assert np.allclose(mixed.mix.shares(), 1 / (debug_config.model.num_hidden_layers + 1))  # starts even
    for target, source in ((mixed.embeddings, plain.embeddings), (mixed.encoder, plain.encoder),
                           (mixed.classifier, plain.classifier)):
        target.set_weights(source.get_weights())
    mixed.mix.weights_logits.assign([-1e4] * debug_config.model.num_hidden_layers + [0.0])
    assert np.allclose(mixed(features), plain(features), atol=1e-5)


def test_fine_tuning_learns_the_mix(ner_dir, debug_config, tmp_path):
    data = NerData.load(ner_dir[0])
    config = dataclasses.replace(debug_config, finetune=dataclasses.replace(
        debug_config.finetune, num_epochs=1, max_train_examples=256, layerwise_lr_decay=0.8))
    init = Initialization.resolve("random", config, data, JapaneseTokenizer.load(data.tokenizer_dir))
    tagger, run = train_trial(config, data, init, tf.distribute.get_strategy(), 1, str(tmp_path), LayerMixTagger)
    shares = tagger.mix.shares()
    assert abs(sum(shares) - 1) < 1e-6 and np.ptp(shares) > 1e-4, shares  # the mix moved from even
    assert 0 <= run["test"]["f1"] <= 1 and run["best_epoch"] == 1
