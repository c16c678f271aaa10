"""What valid-BIO decoding is worth: fine-tuned taggers scored with each word's argmax label and with the most
probable valid BIO sequence (data_prep.bio.best_labels, what evaluate and predict use), on the same probabilities.

Each `--model GROUP=DIR` is a fine-tuned dir (its kept checkpoint, scored on the ner-data dir its results.json names);
taggers of one GROUP (seeds of one recipe) are summarised as mean ± sample std, as every results table. The best epoch
of each was picked by the decoding its finetune run used (valid BIO since this script's commit), so the argmax column
is what the same checkpoint scores when decoded the old way.

    python benchmarks/decoding.py --model random=build/recipe/ft-random-12345 \
        --model random=build/recipe/ft-random-12346 [--out docs/results.md]
"""

import argparse
import collections
import pathlib
import shlex
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.report import group_and_dir, machine, write_section  # noqa: E402
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads

import numpy as np  # noqa: E402

from benchmarks.cpu_recipe import mean_std  # noqa: E402
from data_prep import storage  # noqa: E402
from data_prep.bio import best_labels, decode_bio  # noqa: E402
from finetune.data import NerData  # noqa: E402
from finetune.evaluation import span_scores, word_probabilities  # noqa: E402
from finetune.model import EncoderWithHead  # noqa: E402
from finetune.trainer import load_finetuned  # noqa: E402

SPLITS = ("dev", "test")
DECODINGS = ("argmax", "valid BIO")


def argmax_labels(probabilities: np.ndarray, names: list[str]) -> tuple[list[str], list[float]]:
    """Each word's likeliest label on its own (what transformers' token-classification pipeline does)."""
    return [names[i] for i in probabilities.argmax(-1)], probabilities.max(-1).tolist()


def tagger_and_its_data(model_dir: str, flag: str) -> tuple[EncoderWithHead, NerData]:
    """A fine-tuned tagger and the ner-data dir its results.json says it was fine-tuned on."""
    tagger, _, _ = load_finetuned(model_dir, flag)
    return tagger, NerData.load(storage.read_json(storage.join(model_dir, "results.json"), flag)["data"])


def scores_by_decoding(model_dir: str) -> tuple[dict, float]:
    """{(split, decoding): span scores} for one tagger, and best_labels' mean milliseconds per sentence."""
    tagger, data = tagger_and_its_data(model_dir, "--model")
    results, seconds, sentences_decoded = {}, 0.0, 0
    for split in SPLITS:
        sentences = data.sentences(split)
        probabilities = word_probabilities(tagger, data, split, sentences)
        for decoding, decode in zip(DECODINGS, (argmax_labels, best_labels)):
            started = time.perf_counter()
            labels = [decode(p, data.labels)[0] for p in probabilities]
            if decode is best_labels:
                seconds += time.perf_counter() - started
                sentences_decoded += len(sentences)
            spans = [decode_bio(sentence_labels, s.words) for sentence_labels, s in zip(labels, sentences)]
            results[split, decoding] = span_scores([s.entities for s in sentences], spans)
    return results, 1000 * seconds / sentences_decoded


def report(command: str, models: list[tuple[str, str]], results: dict, milliseconds: list[float]) -> str:
    lines = ["## Decoding: each word's argmax against the most probable valid BIO sequence", "",
             f"Command: `{command}`.", f"Machine: {machine()}.", "",
             "Entity-level scores (exact character spans) of each tagger's kept checkpoint on the ner-data it was "
             "fine-tuned on, decoded both ways from the same word probabilities.", "",
             "| group | fine-tuned dir | split | argmax P | argmax R | argmax F1 | valid-BIO P | valid-BIO R | "
             "valid-BIO F1 | gain |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    gains = collections.defaultdict(lambda: collections.defaultdict(list))
    for group, directory in models:
        for split in SPLITS:
            old, new = results[directory][split, "argmax"], results[directory][split, "valid BIO"]
            gains[group][split].append((old["f1"], new["f1"]))
            lines.append(f"| {group} | `{directory}` | {split} | {old['precision']:.4f} | {old['recall']:.4f} | "
                         f"{old['f1']:.4f} | {new['precision']:.4f} | {new['recall']:.4f} | {new['f1']:.4f} | "
                         f"{100 * (new['f1'] - old['f1']):+.2f} |")
    lines += ["", "| group | taggers | split | argmax F1 | valid-BIO F1 | gain (points) |",
              "|---|---:|---|---:|---:|---:|"]
    for group, by_split in gains.items():
        for split, pairs in by_split.items():
            old, new = [p[0] for p in pairs], [p[1] for p in pairs]
            lines.append(f"| {group} | {len(pairs)} | {split} | {mean_std(old)} | {mean_std(new)} | "
                         f"{mean_std([100 * (b - a) for a, b in pairs])} |")
    lines += ["", f"Valid-BIO decoding took {np.mean(milliseconds):.3f} ms per sentence on average (NumPy, one "
              "thread; dev and test sentences)."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, type=group_and_dir, metavar="GROUP=DIR",
                        help="a fine-tuned dir and the group (recipe) it belongs to; repeatable")
    parser.add_argument("--out", help="write a section into this file (docs/results.md)")
    args = parser.parse_args()
    models = args.model
    results, milliseconds = {}, []
    for _, directory in models:
        results[directory], ms = scores_by_decoding(directory)
        milliseconds.append(ms)
    body = report("python benchmarks/decoding.py " + shlex.join(sys.argv[1:]), models, results, milliseconds)
    print(body)
    if args.out:
        write_section(args.out, "decoding", body)


if __name__ == "__main__":
    main()
