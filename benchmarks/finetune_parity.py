"""Fine-tuning parity with the reference implementation: our NER tagger against transformers' PyTorch
ElectraForTokenClassification starting from the same encoder and classifier weights, fed the same windows and labels
in the same order, with google-research/electra's loss (summed over a sentence's words, averaged over sentences) on
the first WordPiece of each word, and torch's AdamW given the same layer-wise learning rates, weight-decay
exclusions, warm-up, linear decay and global-norm clipping.

- dropout off: the per-step losses of the first --steps steps (goal: every one within 1%);
- dropout on: --trials seeds each, the whole fine-tuning with the best epoch chosen on dev, scored by this package's
  evaluation (exact character spans): the test F1 means (goal: within 1 point).

    python benchmarks/finetune_parity.py --data build/recipe/ner --init-checkpoint build/recipe/pretrain \
        --config configs/cpu.yaml --out docs/results.md            (needs `pip install torch==2.13.0`)
"""

import argparse
import dataclasses
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from data_prep.config import Config  # noqa: E402
from finetune.data import NerData  # noqa: E402
from finetune.evaluation import evaluate  # noqa: E402
from finetune.model import TokenTagger  # noqa: E402
from finetune.trainer import CLIP_NORM, compiled_tagger, steps_per_epoch, train_trial  # noqa: E402
from pretrain.hf_checkpoint import hf_config, hf_key, hf_tensors  # noqa: E402
from pretrain.model import EncoderSize  # noqa: E402
from pretrain.tf1_checkpoint import dense_tf1_names, discriminator_tf1_names  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def tagger_names(tagger: TokenTagger) -> dict:
    return {**discriminator_tf1_names(tagger.embeddings, tagger.encoder),
            **dense_tf1_names("classifier", tagger.classifier)}


def reference_tagger(tagger: TokenTagger, dropout: float):
    """transformers' ElectraForTokenClassification holding `tagger`'s weights."""
    import torch
    from transformers import ElectraConfig, ElectraForTokenClassification

    config = ElectraConfig(**{**hf_config(tagger.config, EncoderSize.discriminator(tagger.config)),
                              "hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout},
                           classifier_dropout=dropout, num_labels=tagger.num_labels)
    reference = ElectraForTokenClassification(config)
    tensors = {key: torch.from_numpy(value) for key, value in hf_tensors(tagger_names(tagger)).items()}
    missing, unexpected = reference.load_state_dict(tensors, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    return reference


def reference_optimizer(reference, tagger: TokenTagger, config: Config, total_steps: int):
    """torch's AdamW with our per-variable learning rates: decay ** (deepest - depth), no weight decay on LayerNorm
    and biases; a LambdaLR of our warm-up and linear decay."""
    import torch

    settings = config.finetune
    depths = tagger.layer_depths()
    deepest = max(depths.values())
    groups = {}
    for name, variable in tagger_names(tagger).items():
        decays = not any(k in name for k in ("LayerNorm", "bias"))
        scale = settings.layerwise_lr_decay ** (deepest - depths[variable.path])
        groups.setdefault((scale, decays), []).append(reference.get_parameter(hf_key(name)))
    optimizer = torch.optim.AdamW(
        [{"params": params, "lr": settings.learning_rate * scale,
          "weight_decay": settings.weight_decay if decays else 0.0} for (scale, decays), params in groups.items()],
        lr=settings.learning_rate, betas=(0.9, 0.999), eps=settings.adam_epsilon)
    warmup = int(settings.warmup_proportion * total_steps)

    def rate(step):
        return step / max(1, warmup) if step < warmup else max(0.0, 1.0 - step / max(1, total_steps))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, rate)


def reference_logits(reference, features: dict):
    """Logits at the labeled positions, [batch, positions, labels]."""
    import torch

    logits = reference(input_ids=torch.tensor(np.asarray(features["input_ids"]), dtype=torch.long),
                       attention_mask=torch.tensor(np.asarray(features["input_mask"]), dtype=torch.long),
                       token_type_ids=torch.tensor(np.asarray(features["segment_ids"]), dtype=torch.long)).logits
    positions = torch.tensor(np.asarray(features["labeled_positions"]), dtype=torch.long)
    return logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))


def reference_loss(reference, features: dict, labels):
    """google-research/electra's tagging loss: cross-entropy summed over a sentence's words, mean over sentences."""
    import torch
    import torch.nn.functional as F

    labels = torch.tensor(np.asarray(labels), dtype=torch.long)
    losses = F.cross_entropy(reference_logits(reference, features).transpose(1, 2), labels.clamp(min=0),
                             reduction="none")
    return (losses * (labels >= 0)).sum(dim=1).mean()


def reference_step(reference, optimizer, schedule, features, labels) -> float:
    import torch

    loss = reference_loss(reference, features, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(reference.parameters(), CLIP_NORM)
    optimizer.step()
    schedule.step()
    return float(loss.detach())


class ReferenceForEvaluation:
    """Lets this package's `evaluate` score the reference: predict_on_batch -> logits at the labeled positions."""

    def __init__(self, reference):
        self.reference = reference

    def predict_on_batch(self, features):
        import torch

        self.reference.eval()
        with torch.no_grad():
            return reference_logits(self.reference, features).numpy()


def without_dropout(config: Config, init):
    """The config and initialisation with dropout off (an encoder's rate comes with it from a pretrain dir)."""
    return (dataclasses.replace(config, finetune=dataclasses.replace(config.finetune, dropout=0.0)),
            dataclasses.replace(init, model=dataclasses.replace(init.model, hidden_dropout=0.0)))


def first_tagger(config: Config, data: NerData, init, seed: int, total_steps: int) -> TokenTagger:
    """The tagger train_trial starts from with this seed (same seeding, same construction)."""
    keras.utils.set_random_seed(seed)
    return compiled_tagger(config, data, init, tf.distribute.get_strategy(), total_steps)


def step_losses(config: Config, data: NerData, init, steps: int, seed: int) -> tuple[list[float], list[float]]:
    """Per-step losses of both implementations, dropout off, on the same first `steps` training batches."""
    config, init = without_dropout(config, init)
    total = steps_per_epoch(config, data) * config.finetune.num_epochs
    tagger = first_tagger(config, data, init, seed, total)
    reference = reference_tagger(tagger, 0.0)
    optimizer, schedule = reference_optimizer(reference, tagger, config, total)
    ours, theirs = [], []
    for features, labels in data.dataset("train", config.finetune.batch_size, training=True, seed=seed).take(steps):
        features = {k: v.numpy() for k, v in features.items()}
        theirs.append(reference_step(reference, optimizer, schedule, features, labels.numpy()))
        ours.append(float(tagger.train_on_batch(features, labels.numpy())))
    return ours, theirs


def reference_trial(config: Config, data: NerData, init, seed: int) -> dict:
    """The whole fine-tuning in the reference, as train_trial runs ours: best epoch on dev, then test."""
    import torch

    settings = config.finetune
    steps = steps_per_epoch(config, data)
    tagger = first_tagger(config, data, init, seed, steps * settings.num_epochs)
    torch.manual_seed(seed)
    reference = reference_tagger(tagger, settings.dropout)
    optimizer, schedule = reference_optimizer(reference, tagger, config, steps * settings.num_epochs)
    batches = iter(data.dataset("train", settings.batch_size, training=True, seed=seed))
    best = None
    for epoch in range(1, settings.num_epochs + 1):
        reference.train()
        for _ in range(steps):
            features, labels = next(batches)
            reference_step(reference, optimizer, schedule, {k: v.numpy() for k, v in features.items()},
                           labels.numpy())
        dev = evaluate(ReferenceForEvaluation(reference), data, "dev", settings.batch_size)
        print(f"reference seed {seed} epoch {epoch}: dev F1 {dev['f1']:.4f}", flush=True)
        if best is None or dev["f1"] > best[1]["f1"]:
            best = (epoch, dev, {k: v.detach().clone() for k, v in reference.state_dict().items()})
    reference.load_state_dict(best[2])
    return {"seed": seed, "best_epoch": best[0], "dev": best[1],
            "test": evaluate(ReferenceForEvaluation(reference), data, "test", settings.batch_size)}


def main():
    from benchmarks.report import machine, write_section
    from data_prep.config import load_config
    from data_prep.tokenizer import JapaneseTokenizer
    from finetune.trainer import Initialization

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="ner-data dir")
    parser.add_argument("--init-checkpoint", default="random")
    parser.add_argument("--config", default=str(REPO / "configs" / "cpu.yaml"))
    parser.add_argument("--set", action="append", default=[], help="config overrides, as the CLI's --set")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--out", default="docs/results.md")
    args = parser.parse_args()
    started = time.time()
    config = load_config(args.config, args.set)
    data = NerData.load(args.data)
    init = Initialization.resolve(args.init_checkpoint, config, data, JapaneseTokenizer.load(data.tokenizer_dir))
    ours, theirs = step_losses(config, data, init, args.steps, config.finetune.seed)
    gaps = [abs(a - b) / abs(b) for a, b in zip(ours, theirs)]
    print(f"dropout off: largest gap {max(gaps):.2e}", flush=True)
    runs = {"electra-ja (TensorFlow)": [], "transformers (PyTorch)": []}
    with tempfile.TemporaryDirectory() as logs:
        for trial in range(args.trials):
            seed = config.finetune.seed + trial
            runs["electra-ja (TensorFlow)"].append(
                train_trial(config, data, init, tf.distribute.get_strategy(), seed, f"{logs}/{trial}")[1])
            runs["transformers (PyTorch)"].append(reference_trial(config, data, init, seed))
    shown = sorted({0, 1, 2, 5, 10, 20, 50, len(ours) - 1} & set(range(len(ours))))
    step_rows = "\n".join(f"| {i + 1} | {ours[i]:.5f} | {theirs[i]:.5f} | {gaps[i]:.2e} |" for i in shown)
    trial_rows = "\n".join(f"| {name} | {r['seed']} | {r['best_epoch']} | {r['dev']['f1']:.4f} | {r['test']['f1']:.4f} |"
                           for name, results in runs.items() for r in results)
    means = {name: statistics.fmean(r["test"]["f1"] for r in results) for name, results in runs.items()}
    stds = {name: statistics.stdev(r["test"]["f1"] for r in results) if len(results) > 1 else 0.0
            for name, results in runs.items()}
    mean_rows = "\n".join(f"| {name} | {means[name]:.4f} ± {stds[name]:.4f} |" for name in runs)
    settings = config.finetune
    overrides = "".join(f" --set {o}" for o in args.set)
    body = f"""## Fine-tuning parity with transformers' PyTorch ELECTRA

Command: `python benchmarks/finetune_parity.py --data {args.data} --init-checkpoint {args.init_checkpoint} --config {os.path.relpath(args.config, REPO)}{overrides} --steps {args.steps} --trials {args.trials}`.
Machine: {machine()}. {time.time() - started:.0f} s in all. Encoder {config.model.hidden_size} × {config.model.num_hidden_layers}
from `{args.init_checkpoint}`; batch {settings.batch_size}, peak rate {settings.learning_rate}, layer-wise decay
{settings.layerwise_lr_decay}, {settings.warmup_proportion:.0%} warm-up then linear decay over {settings.num_epochs} epochs,
clipping {CLIP_NORM}; the same windows in the same order for both. The reference is transformers'
ElectraForTokenClassification with our initial weights, trained by torch's AdamW with the same per-layer rates.

Dropout off, first {args.steps} steps (goal: each step's loss within 1%): largest gap {max(gaps):.2e} (step
{int(np.argmax(gaps)) + 1}), mean {np.mean(gaps):.2e}.

| step | ours | reference | relative gap |
|---:|---:|---:|---:|
{step_rows}

Dropout {settings.dropout} on, {args.trials} seeds each, best epoch on dev (goal: test F1 means within 1 point):

| implementation | seed | best epoch | dev F1 | test F1 |
|---|---:|---:|---:|---:|
{trial_rows}

| implementation | test F1 (mean ± std) |
|---|---:|
{mean_rows}

Difference of the means: {100 * abs(means['electra-ja (TensorFlow)'] - means['transformers (PyTorch)']):.2f} points.
"""
    write_section(args.out, "finetune_parity", body)
    print(body)


if __name__ == "__main__":
    main()
