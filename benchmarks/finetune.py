"""Fine-tuning throughput on CPU: our TokenTagger training step (Keras, layer-wise AdamW) against a Hugging Face
PyTorch ElectraForTokenClassification of identical size and sequence length, in one run on the same machine; and,
given a ner-data dir, real GSD training batches padded to max_seq_length (before) against length-bucketed (after).

    python benchmarks/finetune.py --out docs/benchmarks.md          (needs `pip install torch==2.13.0`)
    python benchmarks/finetune.py --out docs/benchmarks.md --ner-data build/recipe/ner --config configs/cpu.yaml
"""

import argparse
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.report import machine, write_section  # noqa: E402
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads

import numpy as np  # noqa: E402

from benchmarks.pretrain import seconds_per_step  # noqa: E402
from data_prep.config import ModelConfig, load_config  # noqa: E402
from finetune.model import TokenTagger, tagging_loss  # noqa: E402
from finetune.optimizer import LayerwiseAdamW  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
NUM_LABELS = 45  # GSD r2.8-NE: O + B-/I- of 22 types


def gsd_like_batch(batch_size: int, length: int, vocab: int, seed: int = 0):
    """Windows padded to `length` like ner-data writes them: ~40 tokens, ~25 labeled words per sentence."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(20, 60, size=batch_size)
    ids = np.zeros([batch_size, length], np.int32)
    positions = np.zeros([batch_size, length], np.int32)
    labels = np.full([batch_size, length], -1, np.int32)
    for row, count in enumerate(tokens):
        ids[row, :count] = rng.integers(5, vocab, size=count)
        words = np.sort(rng.choice(np.arange(1, count - 1), size=int(count * 0.6), replace=False))
        positions[row, :len(words)] = words
        labels[row, :len(words)] = rng.integers(0, NUM_LABELS, size=len(words))
    return {"input_ids": ids, "input_mask": (ids > 0).astype(np.int32), "segment_ids": np.zeros_like(ids),
            "labeled_positions": positions}, labels


def huggingface_config(model: ModelConfig, num_labels: int):
    """transformers' ElectraConfig of the same discriminator size as `model`."""
    from transformers import ElectraConfig

    return ElectraConfig(vocab_size=model.vocab_size, embedding_size=model.embedding_size,
                         hidden_size=model.hidden_size, num_hidden_layers=model.num_hidden_layers,
                         num_attention_heads=model.num_attention_heads, intermediate_size=model.intermediate_size,
                         max_position_embeddings=model.max_position_embeddings, num_labels=num_labels,
                         hidden_act="gelu")


def ours(model: ModelConfig, features, labels, warmup: int, steps: int) -> float:
    tagger = TokenTagger(model, NUM_LABELS)
    tagger.build_variables()
    tagger.compile(optimizer=LayerwiseAdamW(tagger.layer_depths(), 0.8, learning_rate=3e-4, weight_decay=0.01,
                                            epsilon=1e-6, global_clipnorm=1.0), loss=tagging_loss)
    return seconds_per_step(lambda: tagger.train_on_batch(features, labels), warmup, steps)


def reference(model: ModelConfig, features, labels, warmup: int, steps: int) -> float:
    """transformers' ElectraForTokenClassification: every token labeled (-100 where we have no word start)."""
    import torch
    from transformers import ElectraForTokenClassification

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    tagger = ElectraForTokenClassification(huggingface_config(model, NUM_LABELS))
    optimizer = torch.optim.AdamW(tagger.parameters(), lr=3e-4, weight_decay=0.01, eps=1e-6)
    token_labels = np.full(features["input_ids"].shape, -100, np.int64)
    for row in range(len(token_labels)):
        words = labels[row] >= 0
        token_labels[row, features["labeled_positions"][row][words]] = labels[row][words]
    ids = torch.from_numpy(features["input_ids"]).long()
    attention = torch.from_numpy(features["input_mask"]).long()
    targets = torch.from_numpy(token_labels)

    def step():
        loss = tagger(input_ids=ids, attention_mask=attention, labels=targets).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tagger.parameters(), 1.0)
        optimizer.step()

    return seconds_per_step(step, warmup, steps)


def bucketed_against_padded(data_dir: str, config_path: str, steps: int, rounds: int = 3) -> dict[str, float]:
    """Sentences (windows) per second of full training steps on the train split's own batches, padded to
    max_seq_length as before and bucketed by length as now, alternating rounds of `steps` steps each."""
    import time

    import tensorflow as tf

    from data_prep.tokenizer import JapaneseTokenizer
    from finetune.data import NerData
    from finetune.trainer import Initialization, compiled_tagger

    config = load_config(config_path)
    data = NerData.load(data_dir)
    init = Initialization.resolve("random", config, data, JapaneseTokenizer.load(data.tokenizer_dir))
    tagger = compiled_tagger(config, data, init, tf.distribute.get_strategy(), total_steps=10_000)
    batch = config.finetune.batch_size
    batches = {name: iter(data.dataset("train", batch, training=True, seed=1, fixed_length=fixed))
               for name, fixed in (("padded to max_seq_length (before)", True), ("bucketed by length (after)", False))}
    seconds = {name: [] for name in batches}
    for iterator in batches.values():  # warm-up: every bucket shape traced once
        for _ in range(20):
            tagger.train_on_batch(*next(iterator))
    for _ in range(rounds):
        for name, iterator in batches.items():
            started = time.perf_counter()
            for _ in range(steps):
                tagger.train_on_batch(*next(iterator))
            seconds[name].append(time.perf_counter() - started)
    return {name: batch * steps * rounds / sum(times) for name, times in seconds.items()}


def write_bucketing_section(out: str, data_dir: str, config_path: str, steps: int) -> None:
    rates = bucketed_against_padded(data_dir, config_path, steps)
    before = rates["padded to max_seq_length (before)"]
    rows = "\n".join(f"| {name} | {rate:,.1f} | {rate / before:.2f}× |" for name, rate in rates.items())
    body = f"""## finetune: bucketed batches on real GSD windows

Command: `python benchmarks/finetune.py --out docs/benchmarks.md --ner-data {data_dir} --config {config_path}`.
Machine: {machine()}. Full training steps (forward, loss, backward, clipping, layer-wise AdamW) on ner-data's own
shuffled train batches; rounds of {steps} steps alternate between the two batchings (3 rounds each, after 20 warm-up
steps each that trace every shape).

| batches | windows / s | vs before |
|---|---:|---:|
{rows}
"""
    write_section(out, "finetune_bucketing", body)
    print(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--ner-data", help="a ner-data dir: measure padded against bucketed batches on it instead")
    parser.add_argument("--config", default=str(REPO / "configs" / "cpu.yaml"), help="with --ner-data: model sizes")
    args = parser.parse_args()
    if args.ner_data:
        write_bucketing_section(args.out, args.ner_data, args.config, steps=40)
        return
    config = load_config(str(REPO / "configs" / "small.yaml"))
    batch_size, length = config.finetune.batch_size, config.ner_data.max_seq_length
    features, labels = gsd_like_batch(batch_size, length, config.model.vocab_size)
    timings = {"ours (Keras, TF 2.21)": ours(config.model, features, labels, 3, args.steps),
               "Hugging Face PyTorch": reference(config.model, features, labels, 3, args.steps)}
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.3f} s/step", flush=True)
    torch_rate = batch_size / timings["Hugging Face PyTorch"]
    rows = "\n".join(f"| {name} | {seconds:.3f} | {batch_size / seconds:,.1f} | {batch_size / seconds / torch_rate:.2f}× |"
                     for name, seconds in timings.items())
    import torch

    body = f"""## finetune: NER training throughput, small config, CPU

Command: `python benchmarks/finetune.py --out docs/benchmarks.md` (`make bench`). Machine: {machine()}.
configs/small.yaml encoder (256 hidden × 12 layers, embedding 128, vocab {config.model.vocab_size:,}), {NUM_LABELS} labels,
batch {batch_size} windows × {length} positions as ner-data writes them (20–60 real tokens, 60% of them word starts),
median of {args.steps} full training steps (forward, loss, backward, clipping, AdamW) after 3 warm-up steps. The
reference is transformers' `ElectraForTokenClassification` of the same size and length with AdamW and clipping
(torch {torch.__version__}, {torch.get_num_threads()} threads).

| implementation | s / step | sentences / s | vs PyTorch |
|---|---:|---:|---:|
{rows}

Goal: ≥ 1.0× the PyTorch reference.
"""
    write_section(args.out, "finetune", body)
    print(body)


if __name__ == "__main__":
    main()
