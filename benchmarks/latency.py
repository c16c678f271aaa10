"""Where one sentence's latency goes, and whether it meets the goal (one-sentence latency ≤ 0.8× the Hugging Face
pipeline's, throughput ≥ 2× its): our client's stages, our exported graph (weights frozen into constants, products in
column blocks) at 4 tokens and at a sentence's length, the same graph with products whole, with its weights kept as
variables and compiled by XLA, and transformers' pipeline split into tokenizer and model, in one process; then rounds
in which the pipeline and each export under TensorFlow's thread settings (`serve`'s and tensorflow_model_server's
intra-/inter-op flags) and with oneDNN off run each in a fresh process (both are fixed when TensorFlow starts).

configs/small.yaml sizes (as benchmarks/serving.py), random weights, the first --sentences GSD test sentences one
per call; each figure is the median over them.

    python benchmarks/latency.py --out docs/benchmarks.md          (needs `pip install torch==2.13.0`)
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.report import machine, write_section  # noqa: E402
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads

import numpy as np  # noqa: E402
import tqdm  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.serving import huggingface_pipeline, measure, small_tagger_exports, test_texts  # noqa: E402
from serving.backends import SavedModelBackend  # noqa: E402
from serving.client import REQUESTS_IN_FLIGHT, EntityClient  # noqa: E402
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


# (label, environment, intra-op threads, inter-op threads); 0 lets TensorFlow pick, as in tensorflow_model_server.
THREADINGS = [
    ("TensorFlow's defaults", {}, 0, 0),
    ("one thread per op and per call (intra 1, inter 1)", {}, 1, 1),
    ("one thread per op, two calls side by side (intra 1, inter 2)", {}, 1, 2),
    ("oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)", {"TF_ENABLE_ONEDNN_OPTS": "0"}, 0, 0),
    ("oneDNN off, intra 1, inter 1", {"TF_ENABLE_ONEDNN_OPTS": "0"}, 1, 1),
    ("oneDNN off, intra 1, inter 2", {"TF_ENABLE_ONEDNN_OPTS": "0"}, 1, 2),
]
# weights column -> small_tagger_exports' export of that kind
WEIGHTS = {"frozen, products in 2 blocks (export's default)": "ours",
           "frozen, products whole (`--product-blocks 1`)": "whole products",
           "variables (`--keep-variables`)": "variables"}
HUGGING_FACE = "Hugging Face pipeline (PyTorch)"
BATCH_SIZE = 64


def request_batches(windows):
    """Each sentence's request tensors (from its windows), and the fixed cost's request: [CLS], two word pieces,
    [SEP]."""
    batches = [pad_batch(w) for w in windows]
    four_tokens = {**{name: value[:1, :4] for name, value in batches[0].items()},
                   "labeled_positions": np.array([[1, 2]], np.int32)}
    return batches, four_tokens


def threading_figures(base: str, texts: list[str]) -> dict[str, float]:
    """The export as `serve` runs it, in this process's thread settings: one-sentence latency of the whole call and
    of the signature, and throughput with BATCH_SIZE sentences per call."""
    client = EntityClient.from_export(base, BATCH_SIZE)
    batches, four_tokens = request_batches([text_windows(client.tokenizer, t, client.max_seq_length) for t in texts])
    throughput, p50, _ = measure(lambda t: client.predict([t]), client.predict, texts, BATCH_SIZE)
    return {"whole call p50 ms": p50, "signature, the sentence": median_ms(client.backend.predict, batches),
            "signature, 4 tokens": median_ms(client.backend.predict, [four_tokens] * len(texts)),
            "sentences/s": throughput}


def model_forward_ms(hf, texts: list[str]) -> dict[str, float]:
    """The pipeline's model alone, no tokenizer or decoding: on each sentence, and on 4 tokens."""
    encoded = [hf.tokenizer(t, return_tensors="pt") for t in texts]
    return {"the sentence": median_ms(lambda e: hf.model(**e), encoded),
            "4 tokens": median_ms(lambda e: hf.model(**{k: v[:, :4] for k, v in e.items()}), [encoded[0]] * len(texts))}


def huggingface_figures(pipeline_dir: str, texts: list[str]) -> dict[str, float]:
    """threading_figures' columns for transformers' pipeline saved at `pipeline_dir`; its model forward stands where
    our signature does."""
    import torch
    from transformers import pipeline

    torch.set_num_threads(os.cpu_count())
    hf = pipeline("token-classification", model=pipeline_dir, device=-1)
    with torch.no_grad():
        throughput, p50, _ = measure(hf, lambda batch: hf(batch, batch_size=BATCH_SIZE), texts, BATCH_SIZE)
        forward = model_forward_ms(hf, texts)
    return {"whole call p50 ms": p50, "signature, the sentence": forward["the sentence"],
            "signature, 4 tokens": forward["4 tokens"], "sentences/s": throughput}


def in_fresh_process(flags: list[str], sentences: int, environment: dict | None = None) -> dict[str, float]:
    """One child's figures: a THREADINGS row of one export, or the Hugging Face pipeline."""
    command = [sys.executable, __file__, *flags, "--sentences", str(sentences)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(environment or {})},
                            check=True)
    return json.loads(result.stdout.splitlines()[-1])


def one_round(paths: dict[str, str], pipeline_dir: str, sentences: int) -> dict:
    """The pipeline's figures, then each THREADINGS row of each export, each in a fresh process."""
    figures = {HUGGING_FACE: in_fresh_process(["--child-huggingface", pipeline_dir], sentences)}
    for label, environment, intra, inter in THREADINGS:
        for weights, export in WEIGHTS.items():
            figures[label, weights] = in_fresh_process(
                ["--child", paths[export], "--intra", str(intra), "--inter", str(inter)], sentences, environment)
    return figures


def child(args) -> None:
    texts = test_texts()[:args.sentences]
    if args.child_huggingface:
        figures = huggingface_figures(args.child_huggingface, texts)
    else:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra)
        tf.config.threading.set_inter_op_parallelism_threads(args.inter)
        figures = threading_figures(args.child, texts)
    print(json.dumps(figures))


def medians(rounds: list[dict]) -> dict:
    """Each row's figures as medians over the rounds, with p50 and throughput as ratios to the pipeline's in the
    same round (so a round that ran slower for everyone moves no ratio), and those ratios' range over the rounds."""
    result = {}
    for row in rounds[0]:
        figures = {name: statistics.median(r[row][name] for r in rounds) for name in rounds[0][row]}
        for ratio, name in (("p50 / HF", "whole call p50 ms"), ("throughput / HF", "sentences/s")):
            per_round = [r[row][name] / r[HUGGING_FACE][name] for r in rounds]
            figures[ratio], figures[f"{ratio} range"] = statistics.median(per_round), (min(per_round), max(per_round))
        result[row] = figures
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="fresh-process rounds, each the pipeline then every row")
    parser.add_argument("--child", metavar="BASE_PATH", help=argparse.SUPPRESS)  # one THREADINGS row, as JSON
    parser.add_argument("--child-huggingface", metavar="DIR", help=argparse.SUPPRESS)  # the pipeline, as JSON
    parser.add_argument("--intra", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--inter", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child or args.child_huggingface:
        return child(args)
    bench = small_tagger_exports("latency-bench-")
    texts, labels, tokenizer, length = bench.texts[:args.sentences], bench.labels, bench.tokenizer, bench.length

    client = EntityClient.from_export(bench.paths["ours"])
    frozen: SavedModelBackend = client.backend
    whole = SavedModelBackend(bench.paths["whole products"])
    variables = SavedModelBackend(bench.paths["variables"])
    windows = [text_windows(tokenizer, text, length) for text in texts]
    batches, four_tokens = request_batches(windows)
    # XLA over the variables export: over the frozen one it folds 50 MB of constants and takes minutes per length.
    call_xla = called_on_tensors(tf.function(lambda **inputs: variables._serve(**inputs), jit_compile=True))

    for batch in batches:  # XLA compiles once per shape: every length first, so only steady calls are timed
        call_xla(batch)

    def signature_rows(name: str, call) -> dict[str, float]:
        return {f"{name}, the sentence": median_ms(call, batches),
                f"{name}, 4 tokens": median_ms(call, [four_tokens] * len(texts))}

    ours = {
        "whole call: text in, entities out (`EntityClient.predict`)": median_ms(lambda t: client.predict([t]), texts),
        "client: MeCab + WordPiece, windows (`text_windows`)": median_ms(
            lambda t: text_windows(tokenizer, t, length), texts),
        "client: request tensors (`pad_batch`)": median_ms(pad_batch, windows),
        **signature_rows("SavedModel signature (products in 2 blocks)", frozen.predict),
        **signature_rows("same graph, products whole (`--product-blocks 1`)", whole.predict),
        **signature_rows("same graph, weights kept as variables (`--keep-variables`)", variables.predict),
        **signature_rows("variables' graph compiled by XLA (`jit_compile`)", call_xla),
    }
    hf = huggingface_pipeline(bench.model, bench.tokenizer_dir, len(labels))
    import torch

    with torch.no_grad():
        theirs = {
            "whole call: text in, entities out (pipeline)": median_ms(hf, texts),
            "tokenizer (BertJapaneseTokenizer)": median_ms(lambda t: hf.tokenizer(t, return_tensors="pt"), texts),
            **{f"model forward, {name}": ms for name, ms in model_forward_ms(hf, texts).items()},
        }
    pipeline_dir = str(pathlib.Path(bench.tokenizer_dir).parent / "huggingface")
    hf.save_pretrained(pipeline_dir)
    rounds = [one_round(bench.paths, pipeline_dir, len(texts))
              for _ in tqdm.trange(args.rounds, desc="rounds", unit="round")]
    print(json.dumps([{" / ".join(row) if isinstance(row, tuple) else row: f for row, f in r.items()} for r in rounds]))
    threadings = medians(rounds)
    hf_figures = threadings.pop(HUGGING_FACE)
    hf_rounds = "; ".join(f"{r[HUGGING_FACE]['whole call p50 ms']:.2f} ms, {r[HUGGING_FACE]['sentences/s']:.1f}/s"
                          for r in rounds)
    tokens = statistics.median(b["input_ids"].shape[1] for b in batches)

    def ratio(f: dict, name: str) -> str:
        low, high = f[f"{name} range"]
        return f"{f[name]:.2f}× ({low:.2f}–{high:.2f})"

    def thread_row(label: str, weights: str, f: dict) -> str:
        return (f"| {label} | {weights} | {f['whole call p50 ms']:.2f} | {f['signature, the sentence']:.2f} | "
                f"{f['signature, 4 tokens']:.2f} | {f['sentences/s']:.1f} | {ratio(f, 'p50 / HF')} | "
                f"{ratio(f, 'throughput / HF')} |")

    thread_rows = "\n".join([thread_row(HUGGING_FACE, "(model forward in the signature columns)", hf_figures),
                             *(thread_row(label, weights, f) for (label, weights), f in threadings.items())])
    met = [f"{label}, {weights}" for (label, weights), f in threadings.items()
           if f["p50 / HF"] <= 0.8 and f["throughput / HF"] >= 2]
    rows = "\n".join([*(f"| ours | {name} | {ms:.2f} |" for name, ms in ours.items()),
                      *(f"| Hugging Face | {name} | {ms:.2f} |" for name, ms in theirs.items())])
    body = f"""## latency: where one sentence's time goes

Command: `python benchmarks/latency.py --out docs/benchmarks.md`. Machine: {machine()}.
configs/small.yaml sizes (256 hidden × 12 layers), random weights, {len(labels)} labels; the first {len(texts)} GSD
r2.8-NE test sentences one per call (median {tokens:.0f} positions with [CLS] and [SEP]); each figure is the median
over them, in ms. `electra-ja export` freezes the weights into the graph and computes each of the transformer
layers' weight products as 2 column blocks: its `serving_default` has {graph_nodes(frozen._serve):,} nodes with its
nested functions, {graph_nodes(whole._serve):,} with `--product-blocks 1`, {graph_nodes(variables._serve):,} with
`--keep-variables`. torch {torch.__version__}, {torch.get_num_threads()} threads. All in one process:

| path | stage | p50 ms |
|---|---|---:|
{rows}

Then {args.rounds} rounds, each running the Hugging Face pipeline and every export under every thread setting, each
in a fresh process (thread settings and oneDNN are fixed when a process starts), as `electra-ja serve
--tensorflow-intra-op-parallelism N --tensorflow-inter-op-parallelism M` (tensorflow_model_server's flags of those
names) runs it; throughput with {BATCH_SIZE} sentences per call over the same sentences, our client sending
{REQUESTS_IN_FLIGHT} requests at once. Each figure is the median over the rounds; the ratios are medians of each
round's ratio to that round's pipeline, with their lowest and highest in brackets (pipeline per round: {hf_rounds}).

| TensorFlow threads | weights | whole call p50 ms | signature, the sentence | signature, 4 tokens | sentences/s | p50 / HF (rounds) | throughput / HF (rounds) |
|---|---|---:|---:|---:|---:|---:|---:|
{thread_rows}

Goal: p50 ≤ 0.8× the pipeline's with throughput ≥ 2× its:
{"met by " + "; ".join(met) if met else "met by no row"}.
"""
    write_section(args.out, "latency", body)
    print(body)


if __name__ == "__main__":
    main()
