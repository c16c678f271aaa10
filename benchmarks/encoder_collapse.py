"""Does pretraining leave the discriminator's token representations more alike than random weights do?

For each `--init` (`random`, a pretrain dir, or one of its `encoder/ckpt-N`), the encoder a tagger would start
fine-tuning from (for a fine-tuned dir, the one fine-tuning left) reads the dev windows of an ner-data dir; per layer
(0 = embeddings) it reports the mean cosine similarity between the hidden states of different real tokens of a
window. Near 1 means collapse: every token looks the same to the tagger that starts there, which then has to undo it.

    python benchmarks/encoder_collapse.py --data build/recipe/ner --config configs/cpu.yaml \
        --init random --init build/recipe/pretrain [--out docs/results.md]
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.report import machine, write_section  # noqa: E402
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402
from tensorflow.io import gfile  # noqa: E402

from data_prep import storage  # noqa: E402
from data_prep.config import load_config  # noqa: E402
from data_prep.tokenizer import JapaneseTokenizer  # noqa: E402
from finetune.data import NerData  # noqa: E402
from finetune.model import TokenTagger  # noqa: E402
from finetune.trainer import Initialization, load_finetuned  # noqa: E402


def layer_similarities(tagger: TokenTagger, features) -> list[float]:
    """Mean cosine similarity between different real tokens of a window, per layer (embeddings first)."""
    mask = features["input_mask"].numpy().astype(bool)
    return [_mean_pairwise_cosine(h.numpy(), mask) for h in tagger.encode(features, all_states=True)]


def start_tagger(init: str, seed: int, config, data: NerData, tokenizer: JapaneseTokenizer) -> TokenTagger:
    """The tagger a fine-tuning trial of `seed` would start from `init` (`random` draws the weights it would), or,
    when `init` is a fine-tuned dir, the tagger fine-tuning made there."""
    if gfile.exists(storage.join(init, "results.json")):
        tagger, _, _ = load_finetuned(init, "--init")
        return tagger
    resolved = Initialization.resolve(init, config, data, tokenizer)
    keras.utils.set_random_seed(seed)
    tagger = TokenTagger(resolved.model, len(data.labels))
    tagger.build_variables()
    resolved.load_into(tagger)
    return tagger


def _mean_pairwise_cosine(hidden: np.ndarray, mask: np.ndarray) -> float:
    means = []
    for row, real in zip(hidden, mask):
        tokens = row[real]
        unit = tokens / np.linalg.norm(tokens, axis=-1, keepdims=True)
        similarity = unit @ unit.T
        n = len(tokens)
        means.append((similarity.sum() - n) / (n * (n - 1)))
    return float(np.mean(means))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="an ner-data dir (its dev windows are read)")
    parser.add_argument("--config", required=True)
    parser.add_argument("--init", action="append", required=True,
                        help="random, a pretrain dir, encoder/ckpt-N or a fine-tuned dir")
    parser.add_argument("--windows", type=int, default=256)
    parser.add_argument("--out", help="write a section into this file (docs/results.md)")
    args = parser.parse_args()
    config = load_config(args.config)
    data = NerData.load(args.data)
    tokenizer = JapaneseTokenizer.load(data.tokenizer_dir)
    features, _ = next(iter(data.dataset("dev", args.windows)))
    rows = {}
    for init in args.init:
        tagger = start_tagger(init, config.finetune.seed, config, data, tokenizer)  # as fine-tuning's first trial
        rows[init] = layer_similarities(tagger, features)
        print(f"{init}: " + "  ".join(f"{s:.3f}" for s in rows[init]), flush=True)
    if args.out:
        layers = len(next(iter(rows.values())))
        header = "| init | " + " | ".join(["embeddings", *(f"layer {i}" for i in range(1, layers))]) + " |"
        table = "\n".join(f"| `{init}` | " + " | ".join(f"{s:.3f}" for s in sims) + " |" for init, sims in rows.items())
        command = " ".join(["python benchmarks/encoder_collapse.py", "--data", args.data, "--config", args.config,
                            *(f"--init {init}" for init in args.init), "--out", args.out])
        write_section(args.out, "encoder_collapse", f"""## Do pretrained representations collapse? (mean cosine similarity between tokens)

Command: `{command}`. Machine: {machine()}.
Mean cosine similarity between the hidden states of different real tokens of a window, over the first
{args.windows} dev windows, per layer of the encoder that fine-tuning starts from (1.0: every token alike).

{header}
|---|{"---:|" * layers}
{table}
""")


if __name__ == "__main__":
    main()
