"""Pretraining parity with the reference implementation: our ElectraPretrainer against transformers' PyTorch
ElectraForMaskedLM + ElectraForPreTraining holding the same weights (exported with export-hf's tables, one shared
embedding module), dropout off, float32.

Both get the same batch, the same masked positions (our in-graph masking, a pure function of the example ids) and
the same sampled replacements (ours, given to the reference): the MLM and RTD losses and every gradient are
compared; then both train for N steps from the same weights on the same batches with the same AdamW (decay off for
LayerNorm and biases), schedule (linear warm-up, linear decay) and global-norm clipping, and the loss curves are
compared. tests/pretrain/test_parity.py runs it at debug size; this script at small size writes docs/results.md.

    python benchmarks/pretrain_parity.py --out docs/results.md          (needs `pip install torch==2.13.0`)
"""

import argparse
import dataclasses
import functools
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from data_prep.config import Config  # noqa: E402
from pretrain.hf_checkpoint import hf_config, hf_key, hf_tensors, to_hf  # noqa: E402
from pretrain.model import ElectraPretrainer, EncoderSize, example_uniform, mask_tokens  # noqa: E402
from pretrain.tf1_checkpoint import discriminator_tf1_names, generator_tf1_names, rtd_head_tf1_names  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def without_dropout(config: Config) -> Config:
    return dataclasses.replace(config, model=dataclasses.replace(config.model, hidden_dropout=0.0))


def variable_names(model: ElectraPretrainer) -> tuple[dict, dict]:
    """Our variables by TF1 name: (the discriminator's with the shared embeddings, the generator's own)."""
    return ({**discriminator_tf1_names(model.embeddings, model.discriminator), **rtd_head_tf1_names(model)},
            generator_tf1_names(model))


def reference_pair(model: ElectraPretrainer):
    """transformers' discriminator and generator with `model`'s weights and one embedding module between them."""
    import torch
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    config = model.config
    discriminator_names, generator_names = variable_names(model)
    models = []
    for model_class, size, names in ((ElectraForPreTraining, EncoderSize.discriminator(config), discriminator_names),
                                     (ElectraForMaskedLM, EncoderSize.generator(config), generator_names)):
        reference = model_class(ElectraConfig(**{**hf_config(config, size), "hidden_dropout_prob": 0.0,
                                                 "attention_probs_dropout_prob": 0.0}))
        tensors = {key: torch.from_numpy(value) for key, value in hf_tensors(names).items()}
        missing, unexpected = reference.load_state_dict(tensors, strict=False)
        # The generator's embeddings (and its tied output weights) are the discriminator's, shared below.
        allowed = {key for key in reference.state_dict() if ".embeddings." in key or key == "generator_lm_head.weight"}
        assert not unexpected and set(missing) <= allowed, (missing, unexpected)
        models.append(reference.eval())
    discriminator, generator = models
    generator.electra.embeddings = discriminator.electra.embeddings
    generator.generator_lm_head.weight = discriminator.electra.embeddings.word_embeddings.weight
    return discriminator, generator


def reference_parameters(model: ElectraPretrainer, discriminator, generator) -> dict:
    """TF1 name -> the reference's parameter holding the same weight."""
    discriminator_names, generator_names = variable_names(model)
    return {**{name: discriminator.get_parameter(hf_key(name)) for name in discriminator_names},
            **{name: generator.get_parameter(hf_key(name)) for name in generator_names}}


def masking(model: ElectraPretrainer, batch: dict) -> dict:
    """Our in-graph masking of `batch`, computed outside the model with the same noise it uses."""
    noise = functools.partial(example_uniform, model.seed, batch["example_ids"])
    masked_ids, positions, original, weights = mask_tokens(batch["input_ids"], batch["input_mask"], model.special_ids,
                                                           model.mask_prob, model.max_predictions, noise)
    return {"masked_ids": masked_ids.numpy(), "positions": positions.numpy(), "original": original.numpy(),
            "weights": weights.numpy()}


def reference_losses(discriminator, generator, batch: dict, masked: dict, fake_ids: np.ndarray,
                     disc_weight: float) -> dict:
    """ELECTRA's objective computed by the reference models on our masks and samples."""
    import torch
    import torch.nn.functional as F

    attention = torch.tensor(batch["input_mask"], dtype=torch.long)
    segments = torch.tensor(batch["segment_ids"], dtype=torch.long)
    logits = generator(input_ids=torch.tensor(masked["masked_ids"], dtype=torch.long), attention_mask=attention,
                       token_type_ids=segments).logits
    positions = torch.tensor(masked["positions"], dtype=torch.long)
    at_positions = logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))
    weights = torch.tensor(masked["weights"])
    cross_entropy = F.cross_entropy(at_positions.transpose(1, 2), torch.tensor(masked["original"], dtype=torch.long),
                                    reduction="none")
    mlm = (cross_entropy * weights).sum() / weights.sum().clamp(min=1.0)
    fake = torch.tensor(fake_ids, dtype=torch.long)
    token_weights = attention.float()
    replaced = (fake != torch.tensor(batch["input_ids"], dtype=torch.long)).float() * token_weights
    rtd_logits = discriminator(input_ids=fake, attention_mask=attention, token_type_ids=segments).logits
    rtd = (F.binary_cross_entropy_with_logits(rtd_logits, replaced, reduction="none") * token_weights).sum() \
        / token_weights.sum().clamp(min=1.0)
    return {"loss": mlm + disc_weight * rtd, "mlm_loss": mlm, "rtd_loss": rtd}


def our_losses_and_gradients(model: ElectraPretrainer, batch: dict) -> tuple[dict, dict]:
    """Our objective on `batch` (dropout is off in the model's config) and every gradient in the reference's layout."""
    names = {**variable_names(model)[0], **variable_names(model)[1]}
    with tf.GradientTape() as tape:
        outputs = model(batch, training=True)
    gradients = tape.gradient(outputs["loss"], list(names.values()))
    return outputs, {name: to_hf(name, tf.convert_to_tensor(g).numpy()) for name, g in zip(names, gradients)}


def compare_step(model: ElectraPretrainer, batch: dict, disc_weight: float) -> dict:
    """Relative differences of the losses and the largest relative gradient difference (with its tensor)."""
    outputs, ours = our_losses_and_gradients(model, batch)
    discriminator, generator = reference_pair(model)
    reference = reference_losses(discriminator, generator, batch, masking(model, batch), outputs["fake_ids"].numpy(),
                                 disc_weight)
    reference["loss"].backward()
    parameters = reference_parameters(model, discriminator, generator)
    gradients = {name: parameters[name].grad.numpy() for name in ours}
    # Attention's key biases have a gradient of exactly 0 (softmax ignores a shift), so both sides return rounding
    # noise there (~1e-12): differences are measured against at least 1e-6 of the whole gradient's norm.
    floor = 1e-6 * float(np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in gradients.values())))
    relative = {name: float(np.linalg.norm(ours[name] - gradients[name]) / max(np.linalg.norm(gradients[name]), floor))
                for name in ours}
    worst = max(relative, key=relative.get)
    reference = {key: float(value.detach()) for key, value in reference.items()}
    return {**{f"{key} relative difference": abs(float(outputs[key]) - reference[key]) / abs(reference[key])
               for key in ("loss", "mlm_loss", "rtd_loss")},
            "ours": {key: float(outputs[key]) for key in ("loss", "mlm_loss", "rtd_loss")},
            "reference": reference,
            "max gradient relative difference": relative[worst], "worst gradient": hf_key(worst),
            "gradients compared": len(relative)}


def reference_optimizer(model: ElectraPretrainer, discriminator, generator, config: Config):
    """torch's AdamW with the same decay exclusions, linear warm-up then decay to 0, as the run's schedule."""
    import torch

    parameters = reference_parameters(model, discriminator, generator)
    unique = {id(p): (name, p) for name, p in parameters.items()}.values()
    decay = [p for name, p in unique if not any(k in name for k in ("LayerNorm", "bias"))]
    no_decay = [p for name, p in unique if any(k in name for k in ("LayerNorm", "bias"))]
    settings = config.pretrain
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=settings.learning_rate, betas=(0.9, 0.999), eps=settings.adam_epsilon)

    def rate(step):
        if step < settings.warmup_steps:
            return step / max(1, settings.warmup_steps)
        return max(0.0, 1.0 - step / max(1, settings.num_train_steps))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, rate), [p for _, p in unique]


def train_both(run, batches: list[dict], config: Config) -> tuple[list[float], list[float]]:
    """Per-step objectives of our training step and the reference's from the same weights on the same batches."""
    import torch
    from tqdm import tqdm

    discriminator, generator = reference_pair(run.model)
    optimizer, schedule, parameters = reference_optimizer(run.model, discriminator, generator, config)
    ours, theirs = [], []
    for batch in tqdm(batches, desc="both implementations", unit="step", mininterval=10):
        fake_ids = run.model(batch, training=True)["fake_ids"].numpy()  # the samples this step will draw
        losses = reference_losses(discriminator, generator, batch, masking(run.model, batch), fake_ids,
                                  config.pretrain.disc_weight)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(parameters, config.pretrain.clip_norm)
        optimizer.step()
        schedule.step()
        theirs.append(float(losses["loss"].detach()))
        ours.append(run.step(batch)["loss"])
    return ours, theirs


def real_batches(data_dir: str, batch_size: int, steps: int, seed: int) -> list[dict]:
    from pretrain.trainer import pretraining_dataset, read_dataset_description

    description = read_dataset_description(data_dir)
    dataset = pretraining_dataset(data_dir, description, batch_size, seed)
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(steps)]


def main():
    from benchmarks.report import machine, write_section
    from data_prep.config import load_config
    from data_prep.tokenizer import JapaneseTokenizer
    from pretrain.trainer import Pretraining, special_ids

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="pretraining-data dir (its tokenizer/ gives the vocabulary)")
    parser.add_argument("--config", default=str(REPO / "configs" / "small.yaml"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--out", default="docs/results.md")
    args = parser.parse_args()
    tokenizer = JapaneseTokenizer.load(f"{args.data}/tokenizer")
    config = without_dropout(load_config(args.config))
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, vocab_size=tokenizer.vocab_size),
        pretrain=dataclasses.replace(config.pretrain, batch_size=args.batch_size, num_train_steps=args.steps,
                                     warmup_steps=args.warmup_steps, jit_compile="false", mixed_precision="float32"))
    batches = real_batches(args.data, args.batch_size, args.steps, config.pretrain.seed)
    run = Pretraining(config, special_ids(tokenizer), tf.distribute.get_strategy())
    run.model.build_variables(batches[0]["input_ids"].shape[1])
    started = time.time()
    step = compare_step(run.model, batches[0], config.pretrain.disc_weight)
    ours, theirs = train_both(run, batches, config)
    gaps = [abs(a - b) / abs(b) for a, b in zip(ours, theirs)]
    plot = plot_curves(ours, theirs, pathlib.Path(args.out).parent / "pretrain_parity.png")
    shown = sorted({0, 1, 2, 5, 10, 20, 50, len(ours) - 1} & set(range(len(ours))))
    rows = "\n".join(f"| {i + 1} | {ours[i]:.5f} | {theirs[i]:.5f} | {gaps[i]:.2e} |" for i in shown)
    model = config.model
    body = f"""## Pretraining parity with transformers' PyTorch ELECTRA ({pathlib.Path(args.config).stem} sizes)

Command: `python benchmarks/pretrain_parity.py --data {args.data} --config {os.path.relpath(args.config, REPO)} --batch-size {args.batch_size} --steps {args.steps}`.
Machine: {machine()}. Discriminator {model.hidden_size} × {model.num_hidden_layers}, generator
{EncoderSize.generator(model).hidden_size} × {EncoderSize.generator(model).num_layers}, embedding {model.embedding_size}, vocabulary
{model.vocab_size:,}; batch {args.batch_size} of real pretraining examples; dropout off, float32. The reference is
transformers' ElectraForMaskedLM + ElectraForPreTraining with our weights (one shared embedding module), given our
masked positions and our sampled replacements; its optimizer is torch's AdamW with the same decay exclusions, peak
rate {config.pretrain.learning_rate}, {args.warmup_steps} warm-up steps then linear decay to step {args.steps}, and
global-norm clipping at {config.pretrain.clip_norm}. {time.time() - started:.0f} s in all.

First step, same weights and inputs (goal: every relative difference ≤ 1e-4):

| | ours | reference | relative difference |
|---|---:|---:|---:|
| objective (MLM + {config.pretrain.disc_weight:g} × RTD) | {step['ours']['loss']:.6f} | {step['reference']['loss']:.6f} | {step['loss relative difference']:.1e} |
| MLM loss | {step['ours']['mlm_loss']:.6f} | {step['reference']['mlm_loss']:.6f} | {step['mlm_loss relative difference']:.1e} |
| RTD loss | {step['ours']['rtd_loss']:.6f} | {step['reference']['rtd_loss']:.6f} | {step['rtd_loss relative difference']:.1e} |
| largest gradient difference, of {step['gradients compared']} tensors | | | {step['max gradient relative difference']:.1e} (`{step['worst gradient']}`) |

{args.steps} training steps from the same weights (goal: every step's objective within 1%): largest gap
{max(gaps):.2e} (step {int(np.argmax(gaps)) + 1}), mean {np.mean(gaps):.2e}.

| step | ours | reference | relative gap |
|---:|---:|---:|---:|
{rows}

![objective per step, ours and the reference]({plot.name})
"""
    write_section(args.out, "pretrain_parity", body)
    print(body)


def plot_curves(ours: list[float], theirs: list[float], path: pathlib.Path) -> pathlib.Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    steps = range(1, len(ours) + 1)
    axis.plot(steps, theirs, label="transformers (PyTorch)", linewidth=3, alpha=0.5)
    axis.plot(steps, ours, label="electra-ja (TensorFlow)", linestyle="--")
    axis.set_xlabel("step")
    axis.set_ylabel("MLM + 50 × RTD loss")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return path


if __name__ == "__main__":
    main()
