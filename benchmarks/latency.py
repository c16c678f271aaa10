"""Where one sentence's latency goes, before choosing a remedy (issue: one-sentence latency ≤ 0.8× the Hugging Face
pipeline's): our client's stages, our exported graph at 4 tokens and at a sentence's length, the same graph with its
variables frozen into constants and compiled by XLA, and transformers' pipeline split into tokenizer and model, in one run.

configs/small.yaml sizes (as benchmarks/serving.py), random weights, the first --sentences GSD test sentences one
per call; each figure is the median over them.

    python benchmarks/latency.py --out docs/benchmarks.md          (needs `pip install torch==2.13.0`)
"""

import argparse
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2  # noqa: E402

from benchmarks.report import machine, write_section  # noqa: E402
from benchmarks.serving import huggingface_pipeline, small_tagger_exports  # noqa: E402
from serving.backends import SavedModelBackend  # noqa: E402
from serving.client import EntityClient  # noqa: E402
from serving.features import pad_batch, text_windows  # noqa: E402


def median_ms(call, items) -> float:
    call(items[0])  # warm-up: traces and caches
    times = []
    for item in items:
        started = time.perf_counter()
        call(item)
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def called_on_tensors(function):
    """`function` called with a request's numpy arrays as tensors, as SavedModelBackend.predict calls its signature."""
    return lambda batch: function(**{name: tf.constant(value) for name, value in batch.items()})


def graph_nodes(concrete) -> int:
    """Nodes of a concrete function's graph and of every function it calls (Keras layers are nested functions)."""
    graph_def = concrete.graph.as_graph_def()
    return len(graph_def.node) + sum(len(f.node_def) for f in graph_def.library.function)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument("--sentences", type=int, default=200)
    args = parser.parse_args()
    bench = small_tagger_exports("latency-bench-")
    texts, labels, tokenizer, length = bench.texts[:args.sentences], bench.labels, bench.tokenizer, bench.length
    base = bench.paths["ours"]

    client = EntityClient.from_export(base)
    backend: SavedModelBackend = client.backend
    windows = [text_windows(tokenizer, text, length) for text in texts]
    batches = [pad_batch(w) for w in windows]
    # [CLS], two word pieces, [SEP]: the fixed cost of a call.
    four_tokens = {**{name: value[:1, :4] for name, value in batches[0].items()},
                   "labeled_positions": np.array([[1, 2]], np.int32)}
    signature = backend._serve
    frozen = convert_variables_to_constants_v2(signature)
    call_frozen = called_on_tensors(frozen)
    call_xla = called_on_tensors(tf.function(lambda **inputs: signature(**inputs), jit_compile=True))

    for batch in batches:  # XLA compiles once per shape: every length first, so only steady calls are timed
        call_xla(batch)

    ours = {
        "whole call: text in, entities out (`EntityClient.predict`)": median_ms(lambda t: client.predict([t]), texts),
        "client: MeCab + WordPiece, windows (`text_windows`)": median_ms(
            lambda t: text_windows(tokenizer, t, length), texts),
        "client: request tensors (`pad_batch`)": median_ms(pad_batch, windows),
        "SavedModel signature, the sentence": median_ms(backend.predict, batches),
        "SavedModel signature, 4 tokens": median_ms(backend.predict, [four_tokens] * len(texts)),
        "same graph, variables frozen to constants, the sentence": median_ms(call_frozen, batches),
        "same graph, variables frozen to constants, 4 tokens": median_ms(call_frozen, [four_tokens] * len(texts)),
        "same graph compiled by XLA (`jit_compile`), the sentence": median_ms(call_xla, batches),
        "same graph compiled by XLA (`jit_compile`), 4 tokens": median_ms(call_xla, [four_tokens] * len(texts)),
    }
    hf = huggingface_pipeline(bench.model, bench.tokenizer_dir, len(labels))
    import torch

    encoded = [hf.tokenizer(t, return_tensors="pt") for t in texts]
    with torch.no_grad():
        theirs = {
            "whole call: text in, entities out (pipeline)": median_ms(hf, texts),
            "tokenizer (BertJapaneseTokenizer)": median_ms(lambda t: hf.tokenizer(t, return_tensors="pt"), texts),
            "model forward, the sentence": median_ms(lambda e: hf.model(**e), encoded),
            "model forward, 4 tokens": median_ms(
                lambda e: hf.model(**{k: v[:, :4] for k, v in e.items()}), [encoded[0]] * len(texts)),
        }
    tokens = statistics.median(b["input_ids"].shape[1] for b in batches)
    rows = "\n".join([*(f"| ours | {name} | {ms:.2f} |" for name, ms in ours.items()),
                      *(f"| Hugging Face | {name} | {ms:.2f} |" for name, ms in theirs.items())])
    body = f"""## latency: where one sentence's time goes

Command: `python benchmarks/latency.py --out docs/benchmarks.md`. Machine: {machine()}.
configs/small.yaml sizes (256 hidden × 12 layers), random weights, {len(labels)} labels; the first {len(texts)} GSD
r2.8-NE test sentences one per call (median {tokens:.0f} positions with [CLS] and [SEP]); each figure is the median
over them, in ms. The exported `serving_default` graph has {graph_nodes(signature):,} nodes with its nested functions
(the frozen one {graph_nodes(frozen):,}). torch {torch.__version__}, {torch.get_num_threads()} threads.

| path | stage | p50 ms |
|---|---|---:|
{rows}
"""
    write_section(args.out, "latency", body)
    print(body)


if __name__ == "__main__":
    main()
