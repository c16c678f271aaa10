"""Where the exported graph's time goes, op by op, as tensorflow_model_server runs it (TF1's SavedModel loader and a
Session with intra 1 / inter 1 threads and oneDNN off: benchmarks/latency.py's fastest one-sentence row); then a
transformer layer's six weight products alone, in TensorFlow's kernels against PyTorch's, at the same shapes.

The issue asked where the fixed cost goes before choosing a remedy: this shows whether it is per-op dispatch (many
small ops) or the products with the weights (a few large ones), and how TensorFlow's CPU kernels for those compare
with the ones transformers' pipeline runs on.

    python benchmarks/op_profile.py --out docs/benchmarks.md          (needs `pip install torch==2.13.0`)
"""

import argparse
import collections
import os
import pathlib
import statistics
import sys
import time

os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"  # read when TensorFlow loads
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.report import machine, write_section  # noqa: E402
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.latency import median_ms, request_batches  # noqa: E402
from benchmarks.serving import small_tagger_exports  # noqa: E402
from export.contract import SERVING_SIGNATURE  # noqa: E402
from serving.features import text_windows  # noqa: E402

TRACED_CALLS = 20
TOP_OPS = 12


class SessionSignature:
    """The export's serving signature in a TF1 Session, the loader tensorflow_model_server's C++ mirrors."""

    def __init__(self, export_dir: str):
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
        self.session = tf.compat.v1.Session(graph=tf.Graph(), config=config)
        meta = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], export_dir)
        signature = meta.signature_def[SERVING_SIGNATURE]
        self.inputs = {name: tensor.name for name, tensor in signature.inputs.items()}
        self.outputs = [tensor.name for tensor in signature.outputs.values()]

    def __call__(self, batch, **run_kwargs):
        return self.session.run(self.outputs, {self.inputs[name]: value for name, value in batch.items()},
                                **run_kwargs)

    def op_times(self, batch) -> tuple[collections.Counter, collections.Counter]:
        """(µs, executions) per op type and call, averaged over TRACED_CALLS traced calls."""
        micros, counts = collections.Counter(), collections.Counter()
        for _ in range(TRACED_CALLS):
            metadata = tf.compat.v1.RunMetadata()
            self(batch, options=tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE),
                 run_metadata=metadata)
            for device in metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    op = node.timeline_label.split(" = ")[-1].split("(")[0] if " = " in node.timeline_label else "?"
                    micros[op] += node.op_end_rel_micros / TRACED_CALLS
                    counts[op] += 1 / TRACED_CALLS
        return micros, counts


def op_table(signature: SessionSignature, shapes: dict[str, dict]) -> str:
    """Top op types by time at each request shape, the rest, their sum, and the Session's untraced p50 per call."""
    profiles = [signature.op_times(batch) for batch in shapes.values()]
    ranked = sorted({op for micros, _ in profiles for op in micros},
                    key=lambda op: -sum(micros[op] for micros, _ in profiles))
    groups = [(op, [op]) for op in ranked[:TOP_OPS]]
    groups += [(f"{len(ranked) - TOP_OPS} other op types", ranked[TOP_OPS:]), ("sum of op times", ranked)]

    def cells(ops):
        return " | ".join(f"{sum(counts[op] for op in ops):.0f} | {sum(micros[op] for op in ops) / 1000:.2f} | "
                          f"{sum(micros[op] for op in ops) / sum(micros.values()):.0%}" for micros, counts in profiles)

    walls = " | ".join(f" | {median_ms(signature, [batch] * 50):.2f} | " for batch in shapes.values())
    header = " | ".join(f"{name}: ops | ms | share" for name in shapes)
    return "\n".join([f"| op | {header} |", "|---|" + "---:|---:|---:|" * len(shapes),
                      *(f"| {label} | {cells(ops)} |" for label, ops in groups),
                      f"| Session.run p50, untraced | {walls} |"])


def layer_products(hidden: int, heads: int, intermediate: int, layers: int, rows: int) -> dict[str, float]:
    """ms per layer of one encoder layer's weight products, each layer with its own weights (a forward pass reads
    all of them, so none sits in cache between products): TensorFlow's ops as the exported graph has them (keras'
    EinsumDense for query/key/value/output, MatMul for the feed-forward), and torch's F.linear (transformers'
    nn.Linear) at the same shapes."""
    import torch

    rng = np.random.default_rng(0)
    normal = lambda *shape: rng.standard_normal(shape, np.float32)
    x_hidden, x_inner = normal(1, rows, hidden), normal(1, rows, intermediate)
    x_heads = x_hidden.reshape(1, rows, heads, hidden // heads)
    projections = [normal(hidden, heads, hidden // heads) for _ in range(3 * layers)]
    outputs = [normal(heads, hidden // heads, hidden) for _ in range(layers)]
    ups = [normal(hidden, intermediate) for _ in range(layers)]
    downs = [normal(intermediate, hidden) for _ in range(layers)]
    # The activations are arguments, not constants: Grappler would fold products of constants away.
    products = tf.function(lambda x_hidden, x_heads, x_inner: (
        [tf.einsum("abc,cde->abde", x_hidden, w) for w in projections]
        + [tf.einsum("abcd,cde->abe", x_heads, w) for w in outputs]
        + [tf.matmul(x_hidden[0], w) for w in ups] + [tf.matmul(x_inner[0], w) for w in downs]))
    activations = [tf.constant(x) for x in (x_hidden, x_heads, x_inner)]
    tf_products = lambda: products(*activations)

    # torch's Linear weights are [out, in]
    square = [torch.from_numpy(normal(hidden, hidden)) for _ in range(4 * layers)]
    up_t = [torch.from_numpy(normal(intermediate, hidden)) for _ in range(layers)]
    down_t = [torch.from_numpy(normal(hidden, intermediate)) for _ in range(layers)]
    t_hidden, t_inner = torch.from_numpy(x_hidden), torch.from_numpy(x_inner)
    linear = torch.nn.functional.linear
    torch_products = lambda: ([linear(t_hidden, w) for w in square + up_t] + [linear(t_inner, w) for w in down_t])

    figures = {"TensorFlow 1 thread, oneDNN off (Einsum ×4, MatMul ×2)": per_layer_ms(tf_products, layers)}
    with torch.no_grad():
        for threads in (1, 2):
            torch.set_num_threads(threads)
            figures[f"PyTorch {torch.__version__}, {threads} thread{'s' * (threads > 1)} (F.linear ×6)"] = \
                per_layer_ms(torch_products, layers)
    return figures


def per_layer_ms(products, layers: int, repeats: int = 30) -> float:
    products()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        products()
        times.append(1000 * (time.perf_counter() - started) / layers)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument("--sentences", type=int, default=200)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    bench = small_tagger_exports("op-profile-")
    texts = bench.texts[:args.sentences]
    batches, four_tokens = request_batches([text_windows(bench.tokenizer, t, bench.length) for t in texts])
    median_length = statistics.median_low(b["input_ids"].shape[1] for b in batches)
    sentence = next(b for b in batches if b["input_ids"].shape[1] == median_length)
    signature = SessionSignature(f"{bench.paths['ours']}/1")
    ops = op_table(signature, {"4 tokens": four_tokens, f"a sentence ({median_length} positions)": sentence})
    model, layers = bench.model, bench.model.num_hidden_layers
    products = {rows: layer_products(model.hidden_size, model.num_attention_heads, model.intermediate_size, layers,
                                     rows) for rows in (4, median_length)}
    product_rows = "\n".join(f"| {kernel} | " + " | ".join(
        f"{products[rows][kernel]:.3f} | {products[rows][kernel] * layers:.2f}" for rows in products) + " |"
        for kernel in products[4])
    body = f"""## op_profile: the exported graph op by op, and its weight products against PyTorch's

Command: `python benchmarks/op_profile.py --out docs/benchmarks.md`. Machine: {machine()}.
The export benchmarks/latency.py times (configs/small.yaml sizes, 256 hidden × {layers} layers,
weights frozen), loaded as tensorflow_model_server loads it (TF1's SavedModel loader, a Session with intra-op 1 and
inter-op 1 threads, oneDNN off); op times from {TRACED_CALLS} calls traced with RunOptions.FULL_TRACE, per call.
The sentence is one of the first {len(texts)} GSD test sentences with their median length.

{ops}

One layer's six weight products — query, key, value, attention output ({model.hidden_size} × {model.hidden_size}
each), feed-forward in and out ({model.hidden_size} × {model.intermediate_size} and back) — with {layers} layers'
distinct weights per run (as a forward pass reads them), ms per layer and per {layers} layers: TensorFlow's ops as
the graph has them (Einsum, MatMul) against torch's F.linear (transformers' nn.Linear); the pipeline runs torch with
2 threads.

| kernels | 4 rows: ms / layer | × {layers} | {median_length} rows: ms / layer | × {layers} |
|---|---:|---:|---:|---:|
{product_rows}
"""
    write_section(args.out, "op_profile", body)
    print(body)


if __name__ == "__main__":
    main()
