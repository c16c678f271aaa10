"""Does a tagger that reads every layer, not only the top one, gain more from pretraining? ELMo's scalar mix.

The linear probe (docs/results.md, "A linear probe per layer") found the CPU recipe's pretraining ahead of random
weights in the encoder's first layer and barely in its top one, the only layer the tagger's classifier reads. Here the
classifier reads instead a learnt mix of every layer's states, embeddings included: `scale * sum_k softmax(w)_k *
state_k` (Peters et al. 2018), the mix weights starting equal and learning at the classifier's rate. Each `--init` is
fine-tuned as `electra-ja finetune` would (same data, schedule, best epoch on dev, valid-BIO decoding, a trial per
seed from `finetune.seed`), and `--out` gets the trials as a fine-tuned dir's `results.json` (with each trial's learnt
mix) and TensorBoard logs, which benchmarks/cpu_recipe.py reads like any fine-tuned dir's. There is no checkpoint:
the variant is an experiment, not a model to export.

    python benchmarks/layer_mix.py --data build/recipe/ner --config configs/cpu.yaml --init random \\
        --seeds 3 --out build/layer-mix/random
"""

import argparse
import dataclasses
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from data_prep import storage  # noqa: E402
from data_prep.config import load_config  # noqa: E402
from data_prep.tokenizer import JapaneseTokenizer  # noqa: E402
from finetune.data import NerData  # noqa: E402
from finetune.model import TokenTagger  # noqa: E402
from finetune.trainer import Initialization, train_trial  # noqa: E402


class ScalarMix(keras.layers.Layer):
    """`scale * sum_k softmax(weights)_k * states_k` over a list of `count` equally shaped states."""

    def __init__(self, count: int, **kwargs):
        super().__init__(**kwargs)
        self.weights_logits = self.add_weight(shape=(count,), initializer="zeros", name="logits")
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")
        self.built = True  # its weights need no input shape; an unbuilt sublayer makes Keras warn at the first call

    def call(self, states):
        shares = tf.cast(tf.nn.softmax(self.weights_logits), states[0].dtype)
        return tf.cast(self.scale, states[0].dtype) * tf.einsum("k,k...->...", shares, tf.stack(states))

    def shares(self) -> list[float]:
        return [float(v) for v in tf.nn.softmax(self.weights_logits).numpy()]


class LayerMixTagger(TokenTagger):
    """TokenTagger whose classifier reads a ScalarMix of the embeddings and every layer's output at each word's first
    WordPiece, instead of the top layer's.

    Example:
        tagger = LayerMixTagger(load_config("configs/debug.yaml").model, num_labels=45)
        logits = tagger(features)          # as TokenTagger's
        tagger.mix.shares()                # [embeddings, layer 1, ..., layer L] weights, summing to 1
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mix = ScalarMix(len(self.encoder.blocks) + 1, name="layer_mix")

    def call(self, inputs, training=False):
        words = [self.head_input(state, inputs) for state in self.encode(inputs, training, all_states=True)]
        return self.classifier(self.dropout(self.mix(words), training=training))

    def layer_depths(self) -> dict[str, int]:
        """The mix learns at the classifier's depth (the top rate under layer-wise decay)."""
        depths = super().layer_depths()
        return {**depths, **{v.path: max(depths.values()) for v in self.mix.trainable_variables}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="an ner-data dir")
    parser.add_argument("--config", required=True, help="the fine-tuning settings (and sizes for `random`)")
    parser.add_argument("--init", required=True, help="random, a pretrain dir or one of its encoder/ckpt-N")
    parser.add_argument("--seeds", type=int, default=3, help="trials, seeds finetune.seed onwards")
    parser.add_argument("--out", required=True, help="a dir for results.json and tensorboard/")
    args = parser.parse_args()
    config = load_config(args.config)
    data = NerData.load(args.data)
    init = Initialization.resolve(args.init, config, data, JapaneseTokenizer.load(data.tokenizer_dir))
    strategy = tf.distribute.get_strategy()
    trials = []
    for trial in range(args.seeds):
        seed = config.finetune.seed + trial
        print(f"\nlayer mix: trial {trial + 1}/{args.seeds} (seed {seed}, init {init.kind})", flush=True)
        tagger, run = train_trial(config, data, init, strategy, seed,
                                  storage.join(args.out, "tensorboard", f"trial-{trial + 1}"), LayerMixTagger)
        run["layer_mix"] = {"shares": tagger.mix.shares(), "scale": float(tagger.mix.scale.numpy())}
        print(f"dev F1 {run['dev']['f1']:.4f}, test F1 {run['test']['f1']:.4f}, mix "
              + " ".join(f"{share:.3f}" for share in run["layer_mix"]["shares"])
              + f" x {run['layer_mix']['scale']:.3f}", flush=True)
        trials.append(run)
        storage.write_json(storage.join(args.out, "results.json"),
                           {"init": {"kind": init.kind, "path": init.path, "checkpoint": init.checkpoint},
                            "data": args.data, "finetune": dataclasses.asdict(config.finetune),
                            "head": "layer mix", "trials": trials})


if __name__ == "__main__":
    main()
