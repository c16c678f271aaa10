"""Pretraining computes what the reference implementation (transformers' PyTorch ELECTRA) computes: the same losses
and gradients on one batch, and the same loss curve over 100 AdamW steps (benchmarks/pretrain_parity.py, at debug
size here; docs/results.md has the small-size run)."""

import dataclasses

import pytest
import tensorflow as tf

from benchmarks.pretrain_parity import compare_step, real_batches, train_both, without_dropout
from data_prep.tokenizer import JapaneseTokenizer
from pretrain.trainer import Pretraining, special_ids


@pytest.fixture(scope="module")
def setting(debug_config, pretraining_data):
    tokenizer = JapaneseTokenizer.load(f"{pretraining_data}/tokenizer")
    config = without_dropout(debug_config)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, vocab_size=tokenizer.vocab_size),
                                 pretrain=dataclasses.replace(config.pretrain, num_train_steps=100, warmup_steps=10))
    return config, special_ids(tokenizer), real_batches(pretraining_data, config.pretrain.batch_size, 100,
                                                        config.pretrain.seed)


def test_one_step_has_the_reference_losses_and_gradients(setting):
    config, specials, batches = setting
    run = Pretraining(config, specials, tf.distribute.get_strategy())
    run.model.build_variables(64)
    step = compare_step(run.model, batches[0], config.pretrain.disc_weight)
    assert step["gradients compared"] == len(run.model.trainable_variables)
    for key in ("loss", "mlm_loss", "rtd_loss"):
        assert step[f"{key} relative difference"] <= 1e-4, step
    assert step["max gradient relative difference"] <= 1e-4, step


def test_a_hundred_steps_follow_the_reference_loss_curve(setting):
    config, specials, batches = setting
    run = Pretraining(config, specials, tf.distribute.get_strategy())
    run.model.build_variables(64)
    ours, theirs = train_both(run, batches, config)
    assert len(ours) == 100 and ours[-1] < ours[0] * 0.8  # it trains
    gaps = [abs(a - b) / abs(b) for a, b in zip(ours, theirs)]
    assert max(gaps) <= 0.01, (max(gaps), gaps.index(max(gaps)))
