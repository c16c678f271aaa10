
import numpy as np
import pytest
import tensorflow as tf

from pretrain.model import ElectraPretrainer, SpecialIds, example_uniform, mask_tokens

SPECIAL = SpecialIds(pad=0, cls=2, sep=3, mask=4)


def random_batch(rows=8, length=32, vocab=4000, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, size=(rows, length))
    lengths = rng.integers(6, length + 1, size=rows)
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int32)
    ids = np.where(mask == 1, ids, 0)
    ids[:, 0] = SPECIAL.cls
    ids[np.arange(rows), lengths - 1] = SPECIAL.sep
    middle = lengths // 2
    ids[np.arange(rows), middle] = SPECIAL.sep  # [CLS] A [SEP] B [SEP]
    return {"input_ids": ids.astype(np.int32), "input_mask": mask, "segment_ids": np.zeros_like(mask),
            "example_ids": np.arange(rows, dtype=np.int32)}


def test_masking_skips_special_tokens_and_respects_the_budget():
    batch = random_batch(rows=64, length=48)
    noise = lambda stream, shape: example_uniform(7, batch["example_ids"], stream, shape)  # noqa: E731
    masked, positions, original, weights = [t.numpy() for t in mask_tokens(
        tf.constant(batch["input_ids"]), tf.constant(batch["input_mask"]), SPECIAL, 0.15, 6, noise)]
    ids, mask = batch["input_ids"], batch["input_mask"]
    lengths = mask.sum(axis=1)
    expected = np.clip(np.round(lengths * 0.15), 1, 6)
    assert (weights.sum(axis=1) == expected).all()
    for row in range(len(ids)):
        chosen = positions[row][weights[row] > 0]
        assert len(set(chosen)) == len(chosen), "no position twice"
        assert not set(ids[row][chosen]) & {SPECIAL.cls, SPECIAL.sep, SPECIAL.pad}
        assert (original[row][weights[row] > 0] == ids[row][chosen]).all()
        changed = np.flatnonzero(masked[row] != ids[row])
        assert set(changed) <= set(chosen) and (masked[row][changed] == SPECIAL.mask).all()
    chosen_total = weights.sum()
    mask_tokens_used = (masked == SPECIAL.mask).sum()
    assert 0.7 < mask_tokens_used / chosen_total < 0.95  # 85% [MASK], 15% left unchanged


def test_noise_of_an_example_does_not_depend_on_its_batch():
    alone = example_uniform(3, tf.constant([41]), 2, [1, 5, 7]).numpy()
    together = example_uniform(3, tf.constant([40, 41, 42]), 2, [3, 5, 7]).numpy()
    np.testing.assert_array_equal(alone[0], together[1])
    assert not np.array_equal(together[0], together[1])


@pytest.fixture(scope="module")
def model(debug_config):
    model = ElectraPretrainer.from_config_tree(debug_config.model, debug_config.pretrain, SPECIAL)
    model(random_batch(length=64))
    return model


def test_generator_and_discriminator_share_one_embedding_variable(model):
    word = [v for v in model.weights if "word_embeddings" in v.path]
    assert len(word) == 1
    assert model.mlm_head.token_embedding is model.embeddings.token
    assert model.generator.size.hidden_size == 32 and model.discriminator.size.hidden_size == 64


def test_discriminator_gets_no_gradient_through_sampling(model):
    batch = random_batch(length=64)
    with tf.GradientTape() as tape:
        rtd = model(batch, training=False)["rtd_loss"]
    generator_only = [v for v in model.generator.trainable_variables + model.mlm_head.trainable_variables
                      if "word_embeddings" not in v.path]  # the shared embedding rightly gets the RTD gradient
    generator_grads = tape.gradient(rtd, generator_only)
    assert all(g is None for g in generator_grads)


def test_losses_combine_with_the_discriminator_weight(model):
    outputs = model(random_batch(length=64), training=False)
    np.testing.assert_allclose(outputs["loss"], outputs["mlm_loss"] + 50.0 * outputs["rtd_loss"], rtol=1e-6)
    assert 0.0 < float(tf.reduce_mean(outputs["sampled_replaced"])) <= 1.0
