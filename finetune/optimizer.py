"""AdamW with layer-wise learning-rate decay (Clark et al. 2020, Sec. 3 / Appendix), for fine-tuning.

The learning rate itself is scaled per variable (pretrain.optimizer.DenseAdamW's rate_multiplier):
`decay ** (deepest - depth)`, with depths from `TokenTagger.layer_depths()`.

Example:
    optimizer = LayerwiseAdamW(tagger.layer_depths(), decay=0.8, learning_rate=schedule, weight_decay=0.01)
"""

from pretrain.optimizer import DenseAdamW


class LayerwiseAdamW(DenseAdamW):
    def __init__(self, depths: dict[str, int], decay: float, **kwargs):
        super().__init__(rate_multiplier=self._multiplier, **kwargs)
        deepest = max(depths.values())
        self.multipliers = {path: decay ** (deepest - depth) for path, depth in depths.items()}

    def _multiplier(self, path: str) -> float:
        if path not in self.multipliers:
            raise ValueError(f"no layer depth for {path}")
        return self.multipliers[path]
