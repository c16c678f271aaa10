"""ELECTRA (Clark et al. 2020) in Keras 3, top to bottom: shared embeddings, a small generator trained with
masked-language modelling, and a discriminator trained to spot the tokens the generator replaced.

Generator and discriminator share one token/position/segment embedding (one variable each), as in the paper
and google-research/electra; the generator's MLM head is tied to the token embedding. Masking and sampling
happen inside the graph with static shapes, so the whole step compiles with XLA for TPUs.

Example:
    config = load_config("configs/debug.yaml").model
    model = ElectraPretrainer(config, special_ids=SpecialIds(pad=0, cls=2, sep=3, mask=4))
    outputs = model({"input_ids": ids, "input_mask": mask, "segment_ids": segments, "example_ids": rows},
                    training=True)
    outputs["loss"], outputs["mlm_loss"], outputs["rtd_loss"]
"""

import functools
from dataclasses import dataclass

import keras
import keras_hub
import tensorflow as tf

from data_prep.config import ModelConfig, PretrainConfig

INITIALIZER_RANGE = 0.02
LAYER_NORM_EPSILON = 1e-12
# By transformers' names (ModelConfig.hidden_act): google-research/electra computes the tanh approximation.
ACTIVATIONS = {"gelu_new": functools.partial(keras.activations.gelu, approximate=True),
               "gelu": functools.partial(keras.activations.gelu, approximate=False)}


def initializer():
    return keras.initializers.TruncatedNormal(stddev=INITIALIZER_RANGE)


@dataclass(frozen=True)
class SpecialIds:
    pad: int
    cls: int
    sep: int
    mask: int


@dataclass(frozen=True)
class EncoderSize:
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int

    @classmethod
    def discriminator(cls, config: ModelConfig) -> "EncoderSize":
        return cls(config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size)

    @classmethod
    def generator(cls, config: ModelConfig) -> "EncoderSize":
        """google-research/electra's get_generator_config: scaled hidden and layers, 64-wide heads, 4x FFN."""
        hidden = int(round(config.hidden_size * config.generator_hidden_fraction))
        layers = int(round(config.num_hidden_layers * config.generator_layers_fraction))
        return cls(hidden, layers, max(1, hidden // 64), 4 * hidden)


class Embeddings(keras.layers.Layer):
    """Token + position + segment embeddings, LayerNorm and dropout; one instance serves both networks."""

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.token = keras_hub.layers.ReversibleEmbedding(config.vocab_size, config.embedding_size,
                                                          embeddings_initializer=initializer(),
                                                          name="word_embeddings")
        self.position = keras_hub.layers.PositionEmbedding(config.max_position_embeddings, initializer=initializer(),
                                                           name="position_embeddings")
        self.segment = keras.layers.Embedding(config.type_vocab_size, config.embedding_size,
                                              embeddings_initializer=initializer(), name="token_type_embeddings")
        self.norm = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="LayerNorm")
        self.dropout = keras.layers.Dropout(config.hidden_dropout)

    def call(self, input_ids, segment_ids, training=False):
        tokens = self.token(input_ids)
        x = tokens + self.position(tokens) + self.segment(segment_ids)
        return self.dropout(self.norm(x), training=training)


class Encoder(keras.layers.Layer):
    """A projection from the embedding size (when it differs) and post-LayerNorm transformer layers (BERT's)."""

    def __init__(self, size: EncoderSize, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.size = size
        self.project = (keras.layers.Dense(size.hidden_size, kernel_initializer=initializer(),
                                           name="embeddings_project")
                        if config.embedding_size != size.hidden_size else None)
        self.blocks = [
            keras_hub.layers.TransformerEncoder(
                size.intermediate_size, size.num_heads, dropout=config.hidden_dropout,
                activation=ACTIVATIONS[config.hidden_act],
                layer_norm_epsilon=LAYER_NORM_EPSILON, kernel_initializer=initializer(), name=f"layer_{i}")
            for i in range(size.num_layers)
        ]

    def call(self, embeddings, input_mask, training=False, all_states=False):
        """The top layer's output or, with `all_states`, what each layer reads and writes: the embeddings (projected
        when sizes differ), then every layer's output."""
        states = [self.project(embeddings) if self.project is not None else embeddings]
        padding_mask = tf.cast(input_mask, tf.bool)
        for block in self.blocks:
            states.append(block(states[-1], padding_mask=padding_mask, training=training))
        return states if all_states else states[-1]


class DiscriminatorHead(keras.layers.Layer):
    """Per-token logit that the token was replaced (dense + GELU + dense to 1), as electra's."""

    def __init__(self, config: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(config.hidden_size, activation=ACTIVATIONS[config.hidden_act],
                                        kernel_initializer=initializer(), name="dense")
        self.logit = keras.layers.Dense(1, kernel_initializer=initializer(), name="dense_1")

    def call(self, hidden):
        return tf.squeeze(self.logit(self.dense(hidden)), axis=-1)


def example_uniform(seed: int, example_ids, stream: int, shape):
    """Uniform [0, 1) noise of `shape` = [batch, ...] where row b depends only on (seed, example_ids[b], stream).

    A counter hashed with murmur3's finalizer: unlike one random op per batch, the noise an example gets does
    not depend on which replica or batch it lands in, so 1 and N replicas compute the same step.
    """
    shape = tf.convert_to_tensor(shape, tf.int32)
    per_row = tf.reduce_prod(shape[1:])
    counters = tf.reshape(tf.range(per_row, dtype=tf.int32), tf.concat([[1], shape[1:]], 0))
    rows = tf.reshape(tf.cast(example_ids, tf.int32), tf.concat([[-1], tf.ones_like(shape[1:])], 0))
    x = tf.bitcast(counters + rows * per_row, tf.uint32) ^ tf.constant((seed * 0x9E3779B1 + stream * 0x85EBCA77)
                                                                       & 0xFFFFFFFF, tf.uint32)
    for shift, multiplier in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        x = (x ^ tf.bitwise.right_shift(x, tf.constant(shift, tf.uint32))) * tf.constant(multiplier, tf.uint32)
    x = x ^ tf.bitwise.right_shift(x, tf.constant(16, tf.uint32))
    return tf.cast(tf.bitwise.right_shift(x, tf.constant(8, tf.uint32)), tf.float32) * (1.0 / (1 << 24))


def mask_tokens(input_ids, input_mask, special: SpecialIds, mask_prob: float, max_predictions: int, noise):
    """Dynamic masking as google-research/electra: pick round(mask_prob * length) positions per sequence (at
    least 1, at most max_predictions), never [CLS]/[SEP]/[PAD]; 85% become [MASK], 15% stay unchanged.

    `noise(stream, shape)` gives per-example uniform noise. Returns (masked_ids, positions [B, N], original ids
    at positions [B, N], weights [B, N]). Positions are sampled without replacement (top-k of random scores),
    so no position is counted twice.
    """
    input_mask = tf.cast(input_mask, tf.int32)
    candidates = tf.logical_and(tf.cast(input_mask, tf.bool), tf.logical_not(
        tf.logical_or(tf.equal(input_ids, special.cls), tf.equal(input_ids, special.sep))))
    scores = noise(0, tf.shape(input_ids))
    scores = tf.where(candidates, scores, -1.0)
    _, positions = tf.math.top_k(scores, k=max_predictions)
    lengths = tf.cast(tf.reduce_sum(input_mask, axis=-1), tf.float32)
    wanted = tf.clip_by_value(tf.cast(tf.round(lengths * mask_prob), tf.int32), 1, max_predictions)
    chosen_is_candidate = tf.gather(candidates, positions, batch_dims=1)
    weights = tf.logical_and(tf.sequence_mask(wanted, max_predictions), chosen_is_candidate)
    positions = tf.where(weights, positions, 0)
    original = tf.gather(input_ids, positions, batch_dims=1)
    use_mask_token = noise(1, tf.shape(positions)) < 0.85
    replaced = scatter_at(input_ids, positions, tf.fill(tf.shape(positions), special.mask),
                          tf.logical_and(weights, use_mask_token))
    return replaced, positions, original, tf.cast(weights, tf.float32)


def scatter_at(ids, positions, values, where):
    """ids with ids[b, positions[b, n]] = values[b, n] wherever where[b, n]; a one-hot form XLA likes."""
    hits = tf.one_hot(positions, tf.shape(ids)[1], dtype=tf.int32) * tf.cast(where, tf.int32)[..., None]
    touched = tf.reduce_max(hits, axis=1)
    new_values = tf.reduce_sum(hits * values[..., None], axis=1)
    return tf.where(touched > 0, new_values, ids)


def gumbel_sample(logits, uniform):
    """A token per row of softmax(logits) (temperature already applied), via the Gumbel-max trick."""
    uniform = tf.clip_by_value(uniform, 1e-9, 1.0 - 1e-7)
    return tf.argmax(logits - tf.math.log(-tf.math.log(uniform)), axis=-1, output_type=tf.int32)


class ElectraPretrainer(keras.Model):
    """Generator + discriminator with shared embeddings; `call` returns the losses and what to log."""

    def __init__(self, config: ModelConfig, special_ids: SpecialIds, mask_prob: float = 0.15,
                 max_predictions: int = 20, disc_weight: float = 50.0, temperature: float = 1.0, seed: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.config = config
        self.special_ids = special_ids
        self.mask_prob, self.max_predictions = mask_prob, max_predictions
        self.disc_weight, self.temperature = disc_weight, temperature
        self.embeddings = Embeddings(config, name="embeddings")
        self.generator = Encoder(EncoderSize.generator(config), config, name="generator")
        # Exact GELU whatever hidden_act says, as transformers' ElectraGeneratorPredictions (the reference we test
        # against and export to); google-research/electra applies hidden_act here, < 2e-4 apart per activation.
        self.mlm_head = keras_hub.layers.MaskedLMHead(token_embedding=self.embeddings.token,
                                                      intermediate_activation=ACTIVATIONS["gelu"],
                                                      layer_norm_epsilon=LAYER_NORM_EPSILON,
                                                      kernel_initializer=initializer(),
                                                      name="generator_predictions")
        self.discriminator = Encoder(EncoderSize.discriminator(config), config, name="electra")
        self.rtd_head = DiscriminatorHead(config, name="discriminator_predictions")

    @classmethod
    def from_config_tree(cls, model: ModelConfig, pretrain: PretrainConfig, special_ids: SpecialIds):
        return cls(model, special_ids, mask_prob=pretrain.mask_prob, max_predictions=pretrain.max_predictions_per_seq,
                   disc_weight=pretrain.disc_weight, temperature=pretrain.temperature, seed=pretrain.seed)

    def build_variables(self, length: int | None = None) -> None:
        """Creates every weight (a call on zeros), so checkpoints can be restored into them. Masking needs
        `length` >= max_predictions."""
        dummy = {k: tf.zeros([1, length or self.max_predictions], tf.int32)
                 for k in ("input_ids", "input_mask", "segment_ids")}
        self({**dummy, "example_ids": tf.zeros([1], tf.int32)})

    def encode(self, input_ids, input_mask, segment_ids, training=False):
        """The discriminator's hidden states: what fine-tuning builds on."""
        return self.discriminator(self.embeddings(input_ids, segment_ids, training=training), input_mask,
                                  training=training)

    def objective(self, mlm_loss_sum, mlm_count, rtd_loss_sum, token_count):
        """ELECTRA's objective: the generator's mean MLM loss + disc_weight × the discriminator's mean loss."""
        return (mlm_loss_sum / tf.maximum(mlm_count, 1.0)
                + self.disc_weight * rtd_loss_sum / tf.maximum(token_count, 1.0))

    def call(self, inputs, training=False):
        """`inputs`: input_ids, input_mask, segment_ids and example_ids (which seed each row's masking)."""
        input_ids = tf.cast(inputs["input_ids"], tf.int32)
        input_mask = tf.cast(inputs["input_mask"], tf.int32)
        segment_ids = tf.cast(inputs["segment_ids"], tf.int32)
        noise = functools.partial(example_uniform, self.seed, inputs["example_ids"])
        masked_ids, positions, original, weights = mask_tokens(
            input_ids, input_mask, self.special_ids, self.mask_prob, self.max_predictions, noise)

        generator_hidden = self.generator(self.embeddings(masked_ids, segment_ids, training=training), input_mask,
                                          training=training)
        mlm_logits = tf.cast(self.mlm_head(generator_hidden, mask_positions=positions), tf.float32)
        mlm_loss_sum = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(original, mlm_logits) * weights)

        # Sampling is an argmax, so no gradient flows from the discriminator into the generator (the paper's setup).
        sampled = gumbel_sample(mlm_logits / self.temperature, noise(2, tf.shape(mlm_logits)))
        fake_ids = scatter_at(masked_ids, positions, sampled, weights > 0)
        replaced = tf.cast(tf.not_equal(fake_ids, input_ids), tf.float32) * tf.cast(input_mask, tf.float32)
        rtd_logits = tf.cast(self.rtd_head(self.encode(fake_ids, input_mask, segment_ids, training=training)),
                             tf.float32)
        token_weights = tf.cast(input_mask, tf.float32)
        rtd_loss_sum = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(replaced, rtd_logits) * token_weights)
        mlm_count, token_count = tf.reduce_sum(weights), tf.reduce_sum(token_weights)
        return {
            "loss": self.objective(mlm_loss_sum, mlm_count, rtd_loss_sum, token_count),
            "mlm_loss": mlm_loss_sum / tf.maximum(mlm_count, 1.0),
            "rtd_loss": rtd_loss_sum / tf.maximum(token_count, 1.0),
            "mlm_loss_sum": mlm_loss_sum,
            "rtd_loss_sum": rtd_loss_sum,
            "mlm_predictions": tf.argmax(mlm_logits, axis=-1, output_type=tf.int32),
            "mlm_targets": original,
            "mlm_weights": weights,
            "rtd_predictions": tf.cast(rtd_logits > 0, tf.float32),
            "rtd_labels": replaced,
            "token_weights": token_weights,
            "sampled_replaced": tf.cast(tf.not_equal(sampled, original), tf.float32) * weights,
            "fake_ids": fake_ids,  # the discriminator's input: what a reference implementation is given to compare
        }
