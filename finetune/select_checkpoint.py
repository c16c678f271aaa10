"""`electra-ja select-checkpoint`: which of a pretraining run's kept encoders fine-tunes best. Each one is
fine-tuned with the same budget and seeds (`--trials`), scored on dev only (test stays unseen), and the one with
the best mean dev score (entity F1, or accuracy for a classifier) is marked in the pretrain dir, so `finetune --init-checkpoint PRETRAIN_DIR` starts from it
(without a mark it starts from the latest). The choice google-research/electra's users make by hand.

Writes into the pretrain dir: `selection.md` (the table), `selection.png` (mean ± std dev F1 per step) and, last,
`selection.json` (every trial's score and the chosen checkpoint; its presence is the mark).

Example:
    selection = select_checkpoint(config, "build/recipe/pretrain", "build/recipe/ner", trials=3)
    selection["selected"]        # {"step": 1800, "checkpoint": "build/recipe/pretrain/encoder/ckpt-1800", ...}
"""

import dataclasses
import io
import statistics
import tempfile

from tensorflow.io import gfile

from data_prep import storage
from data_prep.config import Config
from data_prep.errors import InputError
from finetune.tasks import TASKS
from finetune.trainer import finetune
from pretrain.model_dir import ENCODER_DIR, SELECTION, checkpoint_step, encoder_checkpoints


def select_checkpoint(config: Config, model_dir: str, data_dir: str, trials: int, strategy_name: str = "cpu",
                      tpu: str | None = None) -> dict:
    checkpoints = encoder_checkpoints(model_dir)
    if not checkpoints:
        raise InputError(f"--model-dir {model_dir}: no {ENCODER_DIR}/ checkpoints (not a pretrain dir, or no "
                         "checkpoint saved yet)")
    rows, metric = [], None
    for number, checkpoint in enumerate(checkpoints, start=1):
        step = checkpoint_step(checkpoint)
        print(f"\nselect-checkpoint: {checkpoint} ({number} of {len(checkpoints)}), {trials} trials", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"select-step-{step}-") as scratch:
            results = finetune(config, data_dir, checkpoint, scratch, trials, strategy_name, tpu)
        metric = TASKS[results["task"]].metric
        dev = [trial["dev"][metric] for trial in results["trials"]]
        rows.append({"step": step, "checkpoint": checkpoint, "dev": dev, "mean": statistics.fmean(dev),
                     "std": statistics.stdev(dev) if len(dev) > 1 else 0.0})
    best = max(rows, key=lambda row: row["mean"])  # a tie goes to the earlier step
    selection = {
        "metric": metric,  # of the task's dev scores (entity F1 for NER, accuracy for classification), mean over trials
        "data": data_dir,
        "trials": trials,
        "seeds": [config.finetune.seed + trial for trial in range(trials)],
        "finetune": dataclasses.asdict(config.finetune),
        "checkpoints": rows,
        "selected": {"step": best["step"], "checkpoint": best["checkpoint"], "mean": best["mean"]},
    }
    storage.write_text(storage.join(model_dir, "selection.md"), selection_table(selection))
    _write_plot(storage.join(model_dir, "selection.png"), selection)
    storage.write_json(storage.join(model_dir, SELECTION), selection)
    return selection


def selection_table(selection: dict) -> str:
    lines = [f"Dev {selection['metric']} after fine-tuning each kept encoder ({selection['trials']} trials, seeds "
             f"{selection['seeds']}, data {selection['data']}); finetune starts from the marked one.", "",
             f"| step | dev {selection['metric']} mean | std | trials | |", "|---:|---:|---:|---|---|"]
    for row in selection["checkpoints"]:
        mark = "selected" if row["checkpoint"] == selection["selected"]["checkpoint"] else ""
        lines.append(f"| {row['step']} | {row['mean']:.4f} | {row['std']:.4f} | "
                     f"{', '.join(f'{score:.4f}' for score in row['dev'])} | {mark} |")
    return "\n".join(lines) + "\n"


def _write_plot(path: str, selection: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = selection["checkpoints"]
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.errorbar([r["step"] for r in rows], [r["mean"] for r in rows], yerr=[r["std"] for r in rows], marker="o",
                  capsize=3, label=f"dev {selection['metric']}, mean ± std of {selection['trials']}")
    axes.scatter([selection["selected"]["step"]], [selection["selected"]["mean"]], s=120, facecolors="none",
                 edgecolors="red", label="selected", zorder=3)
    axes.set_xlabel("pretraining step")
    axes.set_ylabel(f"dev {selection['metric']}")
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    with storage.atomic_output(path) as tmp, gfile.GFile(tmp, "wb") as f:
        f.write(buffer.getvalue())
