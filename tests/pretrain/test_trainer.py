import dataclasses

import keras
import numpy as np
import tensorflow as tf

from pretrain.model import SpecialIds
from pretrain.optimizer import WarmupLinearDecay
from pretrain.trainer import Pretraining
from tests.pretrain.test_model import random_batch

SPECIAL = SpecialIds(pad=0, cls=2, sep=3, mask=4)


def without_warmup(config):
    """Warm-up makes step 0's learning rate 0: a step that moves no weight proves nothing about the update."""
    return dataclasses.replace(config, pretrain=dataclasses.replace(config.pretrain, warmup_steps=0))


def replica_comparable(config):
    """No dropout, and the full learning rate from the first step. Gradients are clipped (pretrain.clip_norm 1.0)
    at these initial losses."""
    config = without_warmup(config)
    return dataclasses.replace(config, model=dataclasses.replace(config.model, hidden_dropout=0.0))


def single_and_mirrored_runs(config, mirrored, batch):
    """The same model built on one device and on two replicas, with the single run's initial weights."""
    runs = [Pretraining(config, SPECIAL, strategy) for strategy in (tf.distribute.get_strategy(), mirrored)]
    for run in runs:
        with run.strategy.scope():
            run.model(batch)
            run.optimizer.build(run.model.trainable_variables)
    runs[1].model.set_weights(runs[0].model.get_weights())
    return runs


def assert_same_weights(first, second):
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_mirrored_step_equals_default_step(debug_config, mirrored):
    batch = random_batch(rows=8, length=64)
    single, replicated = single_and_mirrored_runs(replica_comparable(debug_config), mirrored, batch)
    assert replicated.strategy.num_replicas_in_sync == 2
    first, second = single.step(batch), replicated.step(batch)
    np.testing.assert_allclose(second["loss"], first["loss"], rtol=1e-5)
    np.testing.assert_allclose(second["mlm_accuracy"], first["mlm_accuracy"])
    assert_same_weights(single, replicated)


def step_proportional_to_gradient(config):
    """Clipping off, no decay, and an Adam epsilon far above every gradient, with a learning rate as large: a step
    is then the gradient itself (lr * g / (|g| + epsilon)). Clipping and Adam's usual epsilon make a step blind to
    the gradient's scale, so replicas summing half or twice the gradient would go unseen."""
    config = replica_comparable(config)
    return dataclasses.replace(config, pretrain=dataclasses.replace(
        config.pretrain, clip_norm=1e9, weight_decay=0.0, adam_epsilon=1e3, learning_rate=1e3))


def test_mirrored_step_takes_the_gradient_of_the_global_batch(debug_config, mirrored):
    batch = random_batch(rows=8, length=64)
    single, replicated = single_and_mirrored_runs(step_proportional_to_gradient(debug_config), mirrored, batch)
    before = single.model.get_weights()
    single.step(batch), replicated.step(batch)
    moved = [np.abs(a - b).max() for a, b in zip(single.model.get_weights(), before)]
    assert np.median(moved) > 1e-4  # the steps are large enough for the comparison to see their scale
    assert_same_weights(single, replicated)


def test_mirrored_loop_equals_default_loop(debug_config, mirrored):
    """`run_steps`, the training loop's compiled multi-step function, over a distributed dataset."""
    batches = [random_batch(rows=8, length=64, seed=seed) for seed in range(3)]
    dataset = tf.data.Dataset.from_tensor_slices(
        {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}).batch(8)
    single, replicated = single_and_mirrored_runs(replica_comparable(debug_config), mirrored, batches[0])
    first = single.run_steps(iter(dataset), 3)
    second = replicated.run_steps(iter(mirrored.experimental_distribute_dataset(dataset)), 3)
    assert single.steps_done == replicated.steps_done == 3
    for name in ("loss", "mlm_accuracy", "rtd_accuracy", "replaced_rate"):
        np.testing.assert_allclose(second[name], first[name], rtol=1e-5)
    assert_same_weights(single, replicated)


def test_learning_rate_warms_up_then_decays_to_zero():
    schedule = WarmupLinearDecay(1e-3, warmup_steps=10, total_steps=100)
    values = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    np.testing.assert_allclose(values, [0.0, 5e-4, 9e-4, 4.5e-4, 0.0], atol=1e-9)


def test_bfloat16_compute_keeps_float32_weights_and_finite_losses(debug_config):
    config = without_warmup(debug_config)
    config = dataclasses.replace(config, pretrain=dataclasses.replace(config.pretrain, mixed_precision="mixed_bfloat16"))
    run = Pretraining(config, SPECIAL, tf.distribute.get_strategy())
    batch = random_batch(rows=4, length=64)
    metrics = run.step(batch)
    assert np.isfinite(metrics["loss"]) and metrics["loss"] > 0
    before = run.model.get_weights()
    run.step(batch)
    after = run.model.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    assert sum(not np.array_equal(a, b) for a, b in zip(before, after)) > len(after) / 2
    assert run.model.rtd_head.dense.compute_dtype == "bfloat16"
    assert {v.dtype for v in run.model.trainable_variables} == {"float32"}
    assert keras.mixed_precision.global_policy().name == "float32"


def test_repeated_tokens_take_the_step_of_their_summed_gradient():
    """A sparse embedding gradient with a token repeated must step like its dense sum (Keras' Adam alone does not)."""
    from pretrain.optimizer import DenseAdamW

    sparse = tf.IndexedSlices(tf.constant([[1.0, -2.0], [1.0, -2.0], [1.0, -2.0], [0.5, 0.5]]),
                              tf.constant([1, 1, 1, 3]), dense_shape=tf.constant([4, 2]))
    steps = {}
    for name, optimizer_class, gradient in (("dense", keras.optimizers.AdamW, tf.convert_to_tensor(sparse)),
                                            ("ours", DenseAdamW, sparse), ("keras", keras.optimizers.AdamW, sparse)):
        variable = keras.Variable(np.ones([4, 2], np.float32))
        optimizer = optimizer_class(learning_rate=0.1, weight_decay=0.0, beta_1=0.5, beta_2=0.5)
        for _ in range(2):
            optimizer.apply_gradients([(gradient, variable)])
        steps[name] = variable.numpy()
    np.testing.assert_allclose(steps["ours"], steps["dense"], rtol=1e-6)
    assert not np.allclose(steps["keras"], steps["dense"], rtol=1e-3)


def test_weight_decay_spares_layer_norms_and_biases_only(debug_config):
    """With zero gradients AdamW's only move is the decay: kernels and embeddings shrink, the rest stay."""
    config = without_warmup(debug_config)
    config = dataclasses.replace(config, pretrain=dataclasses.replace(config.pretrain, weight_decay=0.5))
    run = Pretraining(config, SPECIAL, tf.distribute.get_strategy())
    run.model(random_batch(rows=2, length=16))
    variables = run.model.trainable_variables
    for variable in variables:  # biases and LayerNorm betas start at 0, where decay could not show
        variable.assign(tf.ones_like(variable))
    before = [v.numpy() for v in variables]
    run.optimizer.apply_gradients([(tf.zeros_like(v), v) for v in variables])
    spared = {v.path for v, b in zip(variables, before) if np.array_equal(v.numpy(), b)}
    expected = {v.path for v in variables if "LayerNorm" in v.path or "layer_norm" in v.path or "bias" in v.path}
    assert any("LayerNorm" in path for path in expected) and any("layer_norm" in path for path in expected)
    assert spared == expected


def test_weight_decay_follows_each_variables_rate():
    """Decay is part of a variable's update, so a variable at 3x the rate decays 3x as much (as in
    google-research/electra's layer-wise decay and torch's per-group AdamW); zero gradients leave only the decay."""
    from pretrain.optimizer import DenseAdamW

    fast, slow = keras.Variable(np.ones([2], np.float32), name="fast"), keras.Variable(np.ones([2], np.float32))
    optimizer = DenseAdamW(learning_rate=0.01, weight_decay=0.1,
                           rate_multiplier=lambda path: 3.0 if "fast" in path else 1.0)
    optimizer.apply_gradients([(tf.zeros([2]), fast), (tf.zeros([2]), slow)])
    np.testing.assert_allclose(fast.numpy(), 1 - 0.1 * 0.01 * 3, rtol=1e-6)
    np.testing.assert_allclose(slow.numpy(), 1 - 0.1 * 0.01, rtol=1e-6)


def test_the_seed_fixes_initial_weights_and_steps(debug_config):
    batch = random_batch(rows=4, length=32)
    runs, metrics = [], []
    for _ in range(2):  # as two processes would: build, then step twice
        runs.append(Pretraining(without_warmup(debug_config), SPECIAL, tf.distribute.get_strategy()))
        metrics.append([runs[-1].step(batch) for _ in range(2)])
    assert metrics[0] == metrics[1]
    assert metrics[0][0]["loss"] != metrics[0][1]["loss"]  # the first step moved the weights
    for a, b in zip(*(run.model.get_weights() for run in runs)):
        np.testing.assert_array_equal(a, b)


def test_the_generator_learns_at_its_own_rate(debug_config):
    """Adam's first step moves each weight by the learning rate times the sign of its gradient, so with the generator's
    rate 3x its encoder and MLM head move 3x as far, while the shared embeddings and the discriminator do not."""
    moves = {}
    for scale in (1.0, 3.0):
        config = replica_comparable(debug_config)
        config = dataclasses.replace(config, pretrain=dataclasses.replace(
            config.pretrain, weight_decay=0.0, generator_learning_rate_scale=scale))
        run = Pretraining(config, SPECIAL, tf.distribute.get_strategy())
        batch = random_batch(rows=4, length=32)
        run.model(batch)
        before = run.model.get_weights()
        run.step(batch)
        moves[scale] = [np.abs(a - b).max() for a, b in zip(run.model.get_weights(), before)]
    # Paths as the model names them (a second model in one process gets a suffixed name).
    paths = [v.path.split("/", 1)[1] for v in run.model.weights]
    generator = [path.startswith(("generator/", "generator_predictions/")) for path in paths]
    assert any(generator) and "embeddings/word_embeddings/embeddings" in paths
    for path, in_generator, once, thrice in zip(paths, generator, moves[1.0], moves[3.0]):
        np.testing.assert_allclose(thrice, 3.0 * once if in_generator else once, rtol=1e-3, err_msg=path)
