"""The optimizer of BERT/ELECTRA: AdamW (no decay on LayerNorm and biases), linear warm-up then linear decay.

Keras' Adam applies a sparse gradient (tf.IndexedSlices, what an embedding lookup produces) slice by slice:
with a token repeated in the batch its second moment gets the sum of the squared per-occurrence gradients
instead of the square of their sum, so frequent tokens (and the 2-row segment embedding, hit at every position)
take steps up to sqrt(occurrences) times too large, and a batch split over replicas steps differently again.
DenseAdamW densifies such gradients first, which is Adam's definition and what google-research/electra's
optimizer computes.

Example:
    optimizer = make_optimizer(config.pretrain)
"""

import re
from typing import Callable

import keras
import tensorflow as tf

from data_prep.config import PretrainConfig

# Matched against variable paths, as electra matches its TF1 variable names.
NO_WEIGHT_DECAY = re.compile("LayerNorm|layer_norm|bias")


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps` (BERT/ELECTRA)."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int):
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        decay = tf.maximum(0.0, 1.0 - step / float(max(1, self.total_steps)))
        warmup = step / float(max(1, self.warmup_steps))
        return self.peak * tf.where(step < self.warmup_steps, warmup, decay)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


class DenseAdamW(keras.optimizers.AdamW):
    """AdamW with sparse gradients summed per row before the moments are updated, and `global_clipnorm` applied
    to the gradient summed over replicas."""

    def __init__(self, *args, global_clipnorm: float | None = None,
                 rate_multiplier: Callable[[str], float] | None = None, **kwargs):
        # Keras clips before it sums the replicas' gradients, so each replica's part by that part's own norm: under
        # MirroredStrategy the steps were not the single-device ones. Clipping the sum here is what clipping means.
        super().__init__(*args, **kwargs)
        self.summed_clipnorm = global_clipnorm
        self.rate_multiplier = rate_multiplier

    def _all_reduce_sum_gradients(self, grads_and_vars):
        grads_and_vars = super()._all_reduce_sum_gradients(grads_and_vars)
        if self.summed_clipnorm is None:
            return grads_and_vars
        grads, variables = zip(*grads_and_vars)
        # Dense first: the norm of an embedding's IndexedSlices counts a repeated token's rows apart, not their sum.
        dense = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        return list(zip(tf.clip_by_global_norm(dense, self.summed_clipnorm)[0], variables))

    def get_config(self):
        return {**super().get_config(), "global_clipnorm": self.summed_clipnorm}

    def build(self, variables):
        # Keras' var_names would match the last path component only ("gamma", "beta"), missing LayerNorm.
        self.exclude_from_weight_decay(var_list=[v for v in variables if NO_WEIGHT_DECAY.search(v.path)])
        self._rate_multipliers = [self.rate_multiplier(v.path) if self.rate_multiplier else 1.0 for v in variables]
        super().build(variables)

    def _apply_weight_decay(self, variables):
        """Nothing: update_step decays each variable at its own rate, as google-research/electra's optimizer and
        torch's per-group AdamW do; Keras decays every variable at the base rate."""

    def update_step(self, gradient, variable, learning_rate):
        """Adam as Kingma & Ba's Algorithm 1 and torch.optim.AdamW compute it, epsilon added to the bias-corrected
        sqrt(v). Keras adds it before the correction: an epsilon 30x larger at step 1, 3x at step 10, enough to take
        a 100-step pretraining curve 4% away from the reference's."""
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)
        gradient = tf.cast(gradient, variable.dtype)
        step = tf.cast(self.iterations + 1, variable.dtype)
        index = self._get_variable_index(variable)
        learning_rate = learning_rate * self._rate_multipliers[index]
        if self._use_weight_decay(variable):
            self.assign_sub(variable, variable * tf.cast(self.weight_decay * learning_rate, variable.dtype))
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, (gradient - m) * (1 - self.beta_1))
        self.assign_add(v, (tf.square(gradient) - v) * (1 - self.beta_2))
        m_hat = m / (1 - tf.pow(tf.cast(self.beta_1, variable.dtype), step))
        v_hat = v / (1 - tf.pow(tf.cast(self.beta_2, variable.dtype), step))
        self.assign_sub(variable, tf.cast(learning_rate, variable.dtype) * m_hat / (tf.sqrt(v_hat) + self.epsilon))


# The generator's own weights: its encoder and MLM head. The embeddings it shares with the discriminator are not.
GENERATOR_VARIABLES = re.compile(r"(^|/)generator(_predictions)?/")


def make_optimizer(config: PretrainConfig) -> keras.optimizers.Optimizer:
    generator_scale = config.generator_learning_rate_scale
    return DenseAdamW(learning_rate=WarmupLinearDecay(config.learning_rate, config.warmup_steps,
                                                      config.num_train_steps),
                      weight_decay=config.weight_decay, beta_1=0.9, beta_2=0.999, epsilon=config.adam_epsilon,
                      global_clipnorm=config.clip_norm,
                      rate_multiplier=lambda path: generator_scale if GENERATOR_VARIABLES.search(path) else 1.0)
