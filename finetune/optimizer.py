"""AdamW with layer-wise learning-rate decay (Clark et al. 2020, Sec. 3 / Appendix), for fine-tuning.

Scaling gradients would not do it (Adam divides the scale back out), so the learning rate itself is scaled per
variable: `decay ** (deepest - depth)`, with depths from `TokenTagger.layer_depths()`. Decoupled weight decay
uses the unscaled rate, as Keras' AdamW does; LayerNorm and biases are not decayed; sparse gradients are
densified (see pretrain.optimizer.DenseAdamW).

Example:
    optimizer = LayerwiseAdamW(tagger.layer_depths(), decay=0.8, learning_rate=schedule, weight_decay=0.01)
"""

from pretrain.optimizer import DenseAdamW


class LayerwiseAdamW(DenseAdamW):
    def __init__(self, depths: dict[str, int], decay: float, **kwargs):
        super().__init__(**kwargs)
        deepest = max(depths.values())
        self.multipliers = {path: decay ** (deepest - depth) for path, depth in depths.items()}

    def build(self, variables):
        missing = [v.path for v in variables if v.path not in self.multipliers]
        if missing:
            raise ValueError(f"no layer depth for {missing[:3]}")
        self._variable_multipliers = [self.multipliers[v.path] for v in variables]
        super().build(variables)

    def update_step(self, gradient, variable, learning_rate):
        scale = self._variable_multipliers[self._get_variable_index(variable)]
        super().update_step(gradient, variable, learning_rate * scale)
