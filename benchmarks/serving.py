"""Serving on CPU over the GSD test sentences: sentences/s and p50/p99 latency of our export (any length) against
the same weights exported the seed's way (every request padded to 512 positions) and against a Hugging Face
PyTorch token-classification pipeline of identical size, in one run.

All three go text -> entities in this process, so the figures compare the exported models and their clients,
not a network. Weights are random (speed does not depend on them); sizes are configs/small.yaml's.

    python benchmarks/serving.py --out docs/benchmarks.md          (needs `pip install torch==2.13.0`)
"""

import argparse
import atexit
import dataclasses
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.report import machine, write_section  # noqa: E402
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads

import numpy as np  # noqa: E402

from benchmarks.finetune import huggingface_config  # noqa: E402
from data_prep import storage  # noqa: E402
from data_prep.bio import label_names  # noqa: E402
from data_prep.config import load_config  # noqa: E402
from data_prep.gsd import load_split  # noqa: E402
from data_prep.vocab import train_vocab  # noqa: E402
from export.contract import ASSETS_DIR  # noqa: E402
from export.saved_model import PRODUCT_BLOCKS, write_saved_model  # noqa: E402
from finetune.model import TokenTagger  # noqa: E402
from serving.backends import SavedModelBackend  # noqa: E402
from serving.client import BATCH_TOKENS, EntityClient  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
GSD = REPO / "data" / "ud_japanese_gsd_ne" / "r2.8-NE"
SEED_LENGTH = 512


class FixedLengthBackend(SavedModelBackend):
    """The seed's export: a signature of shape [-1, 512], so the client pads every window to 512 positions."""

    def predict(self, inputs):
        padded = {name: np.pad(value, [(0, 0), (0, SEED_LENGTH - value.shape[1])]) for name, value in inputs.items()}
        predictions, probabilities = super().predict(padded)
        words = inputs["labeled_positions"].shape[1]
        return predictions[:, :words], probabilities[:, :words]


# name -> (sequence length, weights frozen, product blocks): `electra-ja export`'s, the same with --product-blocks 1,
# the same with --keep-variables, the seed's.
EXPORTS = {"ours": (None, True, PRODUCT_BLOCKS), "whole products": (None, True, 1), "variables": (None, False, 1),
           "seed": (SEED_LENGTH, False, 1)}


def write_exports(tagger, labels, tokenizer, max_seq_length, work) -> dict[str, str]:
    paths = {}
    for name, (length, freeze, blocks) in EXPORTS.items():
        version = f"{work}/{name}/1"
        write_saved_model(tagger, labels, version, length, freeze, blocks)
        tokenizer.save(f"{version}/{ASSETS_DIR}")
        storage.write_json(f"{version}/{ASSETS_DIR}/model_config.json", {"max_seq_length": max_seq_length})
        paths[name] = f"{work}/{name}"
    return paths


@dataclasses.dataclass
class SmallTaggerExports:
    texts: list[str]  # the GSD test sentences
    labels: list[str]
    tokenizer: object
    model: object  # its ModelConfig
    length: int  # the window length
    paths: dict[str, str]  # export base path by EXPORTS' name
    tokenizer_dir: str


def test_texts() -> list[str]:
    return [s.text for s in load_split(str(GSD), "test")]


def small_tagger_exports(prefix: str) -> SmallTaggerExports:
    """configs/small.yaml's tagger with random weights (speed does not depend on them) over a vocabulary trained on
    the shipped text, exported each of EXPORTS' ways into a new temporary dir."""
    config = load_config(str(REPO / "configs" / "small.yaml"))
    texts = test_texts()
    labels = label_names({e.type for split in ("train", "dev", "test") for s in load_split(str(GSD), split)
                          for e in s.entities})
    work = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # ~100 MB of exports that would pile up in /tmp
    tokenizer = train_vocab([str(REPO / "data" / "corpus" / "wagahaiwa_nekodearu.txt"), str(GSD / "text" / "train.txt")],
                            config.vocab, f"{work}/tokenizer")
    model = config.model.__class__(**{**config.model.__dict__, "vocab_size": tokenizer.vocab_size})
    tagger = TokenTagger(model, len(labels))
    tagger.build_variables()
    length = config.ner_data.max_seq_length
    return SmallTaggerExports(texts, labels, tokenizer, model, length,
                              write_exports(tagger, labels, tokenizer, length, work), f"{work}/tokenizer")


def measure(predict_one, predict_many, texts, batch_size):
    """(sentences/s over all texts in batches, p50 ms, p99 ms of one sentence per call)."""
    predict_many(texts[:batch_size])  # warm-up: graphs traced, caches filled
    started = time.perf_counter()
    for first in range(0, len(texts), batch_size):
        predict_many(texts[first:first + batch_size])
    throughput = len(texts) / (time.perf_counter() - started)
    latencies = []
    for text in texts:
        started = time.perf_counter()
        predict_one(text)
        latencies.append(1000 * (time.perf_counter() - started))
    quantiles = statistics.quantiles(latencies, n=100)
    return throughput, quantiles[49], quantiles[98]


def huggingface_pipeline(model_config, tokenizer_dir, num_labels):
    import torch
    from transformers import AutoTokenizer, ElectraForTokenClassification, pipeline

    torch.set_num_threads(os.cpu_count())
    model = ElectraForTokenClassification(huggingface_config(model_config, num_labels)).eval()
    return pipeline("token-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(tokenizer_dir),
                    device=-1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    bench = small_tagger_exports("serving-bench-")
    texts, length, paths = bench.texts, bench.length, bench.paths

    clients = {"ours (export at any length)": EntityClient.from_export(paths["ours"], args.batch_size),
               "ours, one batch per call (no position budget)": EntityClient.from_export(
                   paths["ours"], args.batch_size, batch_tokens=args.batch_size * length),
               # Every seed request is padded to 512 anyway, so a position budget would only add calls.
               "seed's way (fixed 512 positions)": EntityClient(FixedLengthBackend(paths["seed"]), bench.tokenizer,
                                                                length, args.batch_size, args.batch_size * SEED_LENGTH)}
    results = {name: measure(lambda t, c=client: c.predict([t]), client.predict, texts, args.batch_size)
               for name, client in clients.items()}
    hf = huggingface_pipeline(bench.model, bench.tokenizer_dir, len(bench.labels))
    results["Hugging Face pipeline (PyTorch)"] = measure(
        lambda t: hf(t), lambda batch: hf(batch, batch_size=args.batch_size), texts, args.batch_size)
    for name, (rate, p50, p99) in results.items():
        print(f"{name}: {rate:.1f} sentences/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)
    ours = results["ours (export at any length)"][0]
    rows = "\n".join(f"| {name} | {rate:,.1f} | {p50:.1f} | {p99:.1f} | {ours / rate:.2f}× |"
                     for name, (rate, p50, p99) in results.items())
    import torch

    body = f"""## serving: GSD test sentences, CPU

Command: `python benchmarks/serving.py --out docs/benchmarks.md` (`make bench`). Machine: {machine()}.
configs/small.yaml sizes (256 hidden × 12 layers, vocab {bench.tokenizer.vocab_size:,} trained on the shipped corpus),
{len(bench.labels)} labels, random weights. All {len(texts)} GSD r2.8-NE test sentences, text in and entities out in this
process: throughput with {args.batch_size} sentences per call, latency of one sentence per call. The client sorts a
call's windows by length into requests of ≤ {args.batch_size} rows and ≤ {BATCH_TOKENS:,} padded positions (the
second row lifts the position budget: one request per call, padded to its longest sentence). "Seed's way" is
the same weights behind a `[-1, 512]` signature, the client padding every window to 512 positions as the seed's
export required, one request per call. The Hugging Face row is transformers' token-classification pipeline over
`ElectraForTokenClassification` of the same size with the same vocabulary (BertJapaneseTokenizer; torch
{torch.__version__}, {torch.get_num_threads()} threads).

| path | sentences / s | p50 ms | p99 ms | ours is faster by |
|---|---:|---:|---:|---:|
{rows}

Goals: ≥ 10× the seed's fixed-512 export, ≥ 1× the Hugging Face pipeline (throughput).
"""
    write_section(args.out, "serving", body)
    print(body)


if __name__ == "__main__":
    main()
