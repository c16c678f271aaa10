"""What can a tagger read off the encoder it starts from, before fine-tuning changes it? A linear probe per layer.

For each `--init GROUP=INIT` (INIT: `random`, a pretrain dir or one of its `encoder/ckpt-N`), the encoder fine-tuning
would start from is frozen; INIT may also be a fine-tuned dir, whose encoder (not its classifier) is probed as a
reference: an encoder that fine-tuning has taught what the tagger needs. Per layer (embeddings, then each transformer
layer), a softmax regression learns every GSD train word's BIO label from the layer's state at the word's first
WordPiece (each feature standardised over the train words), and is scored as fine-tuned taggers are: a sentence's
word probabilities, its windows stitched back, decoded as the likeliest valid BIO sequence, entity F1 over exact
character spans, on dev and test. Nothing in the encoder moves, so the probe measures what a start brings, where
fine-tuning (which rewrites every layer) measures what it ends at. A group's INITs are its runs: the n-th `random` of
a group draws the weights fine-tuning's n-th trial would (seed `finetune.seed` + n), and each run's probe trains with
that seed.

    python benchmarks/linear_probe.py --data build/recipe/ner --config configs/cpu.yaml \\
        --init random=random --init random=random --init pretrained=build/recipe/pretrain [--out docs/results.md]
"""

import argparse
import collections
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.report import group_and_dir, machine, write_section  # noqa: E402
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tqdm import tqdm  # noqa: E402

from benchmarks.cpu_recipe import mean_std  # noqa: E402
from benchmarks.encoder_collapse import start_tagger  # noqa: E402
from data_prep.config import load_config  # noqa: E402
from data_prep.tokenizer import JapaneseTokenizer  # noqa: E402
from finetune.data import NerData  # noqa: E402
from finetune.evaluation import score_probabilities, softmax, stitch_windows  # noqa: E402
from finetune.model import TokenTagger  # noqa: E402


SPLITS = ("train", "dev", "test")
EPOCHS, SECTION, TITLE = 20, "linear_probe", "A linear probe per layer: what each start brings before fine-tuning"


def word_states(tagger: TokenTagger, data: NerData, batch_size: int = 64) -> dict:
    """{split: (windows, labels)}: per window of the split (in file order), [words, layers, hidden] states at its
    words' first WordPieces and the words' label ids."""
    @tf.function(reduce_retracing=True)
    def gathered(features):
        states = tf.stack(tagger.encode(features, all_states=True), axis=2)  # [batch, positions, layers, hidden]
        return tf.gather(states, tf.cast(features["labeled_positions"], tf.int32), batch_dims=1)

    return {split: _window_rows(gathered, data.dataset(split, batch_size), split) for split in SPLITS}


def _window_rows(gathered, batches, split: str):
    windows, labels = [], []
    for features, batch_labels in tqdm(batches, desc=f"{split} states", unit="batch", mininterval=10, leave=False):
        for row, row_labels in zip(gathered(features).numpy(), batch_labels.numpy()):
            words = int((row_labels >= 0).sum())  # a window's words come first, then -1 labels
            windows.append(row[:words])
            labels.append(row_labels[:words])
    return windows, labels


class LayerProbes:
    """One softmax regression per layer, trained together (separate weights; the loss is the mean of theirs, and
    Adam's updates do not depend on that 1/layers scale), on standardised features."""

    def __init__(self, states: np.ndarray, labels: np.ndarray, num_labels: int, seed: int, epochs: int,
                 batch_size: int = 512, learning_rate: float = 1e-2):
        self.mean = states.mean(axis=0)
        self.std = states.std(axis=0) + 1e-6  # a feature constant over train words would divide by 0
        layers = states.shape[1]
        keras.utils.set_random_seed(seed)
        self.model = keras.Sequential([keras.Input(states.shape[1:]), keras.layers.EinsumDense(
            "nkh,khl->nkl", output_shape=(layers, num_labels), bias_axes="kl")])
        self.model.compile(keras.optimizers.Adam(learning_rate),
                           keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        self.model.fit(self._standardised(states), np.repeat(labels[:, None], layers, axis=1), epochs=epochs,
                       batch_size=batch_size, shuffle=True, verbose=2)

    def _standardised(self, states: np.ndarray) -> np.ndarray:
        return (states - self.mean) / self.std

    def probabilities(self, windows: list[np.ndarray]) -> list[np.ndarray]:
        """[words, layers, labels] probabilities of each window's [words, layers, hidden] states."""
        states = np.concatenate(windows)
        probabilities = softmax(np.asarray(self.model.predict(self._standardised(states), batch_size=4096,
                                                              verbose=0)))
        return np.split(probabilities, np.cumsum([len(w) for w in windows])[:-1])


def probe_scores(init: str, seed: int, config, data: NerData, tokenizer: JapaneseTokenizer, epochs: int) -> dict:
    """{split: {"f1": [per layer], "loss": [per layer]}} of one start's probes on dev and test; the loss is the
    mean cross-entropy of a word's gold label (nats), smoother than F1, which hangs on whole entities."""
    states = word_states(start_tagger(init, seed, config, data, tokenizer), data)
    train_windows, train_labels = states["train"]
    probes = LayerProbes(np.concatenate(train_windows), np.concatenate(train_labels), len(data.labels), seed, epochs)
    layers = train_windows[0].shape[1]
    scores = {}
    for split in SPLITS[1:]:
        sentences = data.sentences(split)
        windows, labels = states[split]
        window_probs = probes.probabilities(windows)
        per_sentence = stitch_windows(window_probs, data, split, sentences)
        # [words, layers]: each word's gold-label probability under every layer's probe
        gold = np.concatenate([probs[np.arange(len(probs)), :, ids] for probs, ids in zip(window_probs, labels)])
        scores[split] = {
            "f1": [score_probabilities(sentences, [p[:, k] for p in per_sentence], data.labels)["f1"]
                   for k in range(layers)],
            "loss": list(-np.log(np.maximum(gold, np.finfo(np.float32).tiny)).mean(axis=0))}
    return scores


def _cell(values: list[float]) -> str:
    return mean_std(values) if len(values) > 1 else f"{values[0]:.4f}"


def table(split: str, metric: str, groups: dict[str, list[dict]]) -> str:
    layers = len(next(iter(groups.values()))[0][split][metric])
    header = f"| start | runs | {' | '.join(['embeddings', *(f'layer {i}' for i in range(1, layers))])} |"
    rows = [f"| {group} | {len(runs)} | "
            + " | ".join(_cell([run[split][metric][k] for run in runs]) for k in range(layers)) + " |"
            for group, runs in groups.items()]
    return "\n".join([header, "|---|---:|" + "---:|" * layers, *rows])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="an ner-data dir")
    parser.add_argument("--config", required=True, help="its model section sizes `random` starts")
    parser.add_argument("--init", action="append", required=True, type=group_and_dir, metavar="GROUP=INIT",
                        help="random, a pretrain dir, encoder/ckpt-N or a fine-tuned dir; repeat a group for more "
                             "runs of it")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="passes of each probe over the train words")
    parser.add_argument("--out", help="write a section into this file (docs/results.md)")
    parser.add_argument("--section", default=SECTION, help="the section of --out to write")
    parser.add_argument("--title", default=TITLE, help="the section's heading")
    args = parser.parse_args()
    config = load_config(args.config)
    data = NerData.load(args.data)
    tokenizer = JapaneseTokenizer.load(data.tokenizer_dir)
    groups = collections.defaultdict(list)
    for group, init in args.init:
        seed = config.finetune.seed + len(groups[group])
        print(f"{group}: {init} (seed {seed})", flush=True)
        groups[group].append(probe_scores(init, seed, config, data, tokenizer, args.epochs))
        for split, scores in groups[group][-1].items():
            for metric, values in scores.items():
                print(f"  {split} {metric} per layer: " + "  ".join(f"{v:.4f}" for v in values), flush=True)
    print(table("test", "f1", groups))
    if args.out:
        command = " ".join(["python benchmarks/linear_probe.py", "--data", args.data, "--config", args.config,
                            *(f"--init '{group}={init}'" for group, init in args.init),
                            *(["--epochs", str(args.epochs)] if args.epochs != EPOCHS else []), "--out", args.out,
                            *([f"--section {args.section}"] if args.section != SECTION else []),
                            *([f"--title '{args.title}'"] if args.title != TITLE else [])])
        write_section(args.out, args.section, f"""## {args.title}

Command: `{command}`. Machine: {machine()}.
The encoder each start gives fine-tuning, frozen; per layer, a softmax regression from the state at each GSD train
word's first WordPiece to its BIO label (features standardised over train words, Adam 1e-2, batch 512, {args.epochs}
epochs), scored as the taggers are (likeliest valid BIO sequence, entity F1 over exact character spans), and by the
mean cross-entropy of each word's gold label (nats; lower is better); mean ± std over a group's runs. A fine-tuned
dir's row probes its encoder as fine-tuning left it (its own classifier unused): a reference for what the probe reads
off an encoder that holds what the tagger needs.

Test F1:

{table("test", "f1", groups)}

Dev F1:

{table("dev", "f1", groups)}

Test cross-entropy per word:

{table("test", "loss", groups)}
""")


if __name__ == "__main__":
    main()
