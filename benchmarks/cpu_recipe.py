"""The CPU recipe's results (docs/results.md, "A CPU recipe"), read from the runs' own logs: the pretraining curve
from its TensorBoard events, each fine-tuning trial from results.json and its dev scores per epoch from its
TensorBoard events, and a PNG of both curves.

The runs are the README's commands (configs/cpu.yaml); this script only reads what they wrote:

    python benchmarks/cpu_recipe.py --pretrain build/recipe/pretrain \
        --finetuned pretrained=build/recipe/finetuned-pretrained --finetuned random=build/recipe/finetuned-random
"""

import argparse
import json
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.report import group_and_dir, machine, write_section  # noqa: E402
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads


CURVE = ("loss", "mlm_accuracy", "rtd_accuracy", "replaced_rate", "rtd_precision", "rtd_recall",
         "examples_per_second")


def scalars(event_dir: pathlib.Path) -> tuple[dict[str, dict[int, float]], float]:
    """Every scalar of a TensorBoard run by tag and step, and the seconds from its first to its last event."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    events = EventAccumulator(str(event_dir), size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    values, times = {}, []
    for tag in events.Tags()["tensors"]:
        for event in events.Tensors(tag):
            values.setdefault(tag, {})[event.step] = float(make_ndarray(event.tensor_proto))
            times.append(event.wall_time)
    return values, (max(times) - min(times)) if times else 0.0


def pretraining_table(curve: dict[str, dict[int, float]]) -> str:
    rows = []
    for step in sorted(curve["loss"]):
        v = {name: curve[name][step] for name in CURVE}
        rows.append(f"| {step} | {v['loss']:.3f} | {v['mlm_accuracy']:.3f} | {v['rtd_accuracy']:.4f} | "
                    f"{1 - v['replaced_rate']:.4f} | {v['rtd_precision']:.3f} | {v['rtd_recall']:.3f} | "
                    f"{v['examples_per_second']:.0f} |")
    every = max(1, len(rows) // 12)
    shown = rows[::every] + ([rows[-1]] if (len(rows) - 1) % every else [])
    return ("| step | loss | MLM acc | RTD acc | all-original baseline | RTD precision | RTD recall | examples/s |\n"
            "|---:|---:|---:|---:|---:|---:|---:|---:|\n" + "\n".join(shown))


def finetuning(directory: pathlib.Path) -> dict:
    results = json.loads((directory / "results.json").read_text())
    dev_curves = [scalars(directory / "tensorboard" / f"trial-{i + 1}" / "dev")[0].get("entity_f1", {})
                  for i in range(len(results["trials"]))]
    return {"results": results, "dev_curves": dev_curves}


def mean_std(values: list[float]) -> str:
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"


def finetuning_tables(runs: dict[str, dict]) -> str:
    trials = ["| init | seed | best epoch | dev F1 | test P | test R | test F1 |", "|---|---:|---:|---:|---:|---:|---:|"]
    summary = ["| init | dev F1 | test F1 | test P | test R |", "|---|---:|---:|---:|---:|"]
    types = sorted({t for run in runs.values() for trial in run["results"]["trials"] for t in trial["test"]["per_type"]})
    per_type = ["| type | test gold | " + " | ".join(runs) + " |", "|---|---:|" + "---:|" * len(runs)]
    for init, run in runs.items():
        for trial in run["results"]["trials"]:
            test = trial["test"]
            trials.append(f"| {init} | {trial['seed']} | {trial['best_epoch']} | {trial['dev']['f1']:.4f} | "
                          f"{test['precision']:.4f} | {test['recall']:.4f} | {test['f1']:.4f} |")
        every = run["results"]["trials"]
        summary.append(f"| {init} | {mean_std([t['dev']['f1'] for t in every])} | "
                       f"{mean_std([t['test']['f1'] for t in every])} | "
                       f"{mean_std([t['test']['precision'] for t in every])} | "
                       f"{mean_std([t['test']['recall'] for t in every])} |")
    for kind in types:
        gold = next(t["test"]["per_type"][kind]["gold"] for run in runs.values() for t in run["results"]["trials"]
                    if kind in t["test"]["per_type"])
        cells = [mean_std([t["test"]["per_type"].get(kind, {"f1": 0.0})["f1"] for t in run["results"]["trials"]])
                 for run in runs.values()]
        per_type.append(f"| {kind} | {gold} | " + " | ".join(cells) + " |")
    return "\n".join(trials), "\n".join(summary), "\n".join(per_type)


def goals(runs: dict[str, dict]) -> str:
    """The issue's goals for each pretrained initialisation, against the mean test F1 of random init fine-tuned alike:
    the group named as it is with `random` for `pretrained` ("pretrained, layer mix" against "random, layer mix"),
    else the one named `random`."""
    means = {init: statistics.fmean(t["test"]["f1"] for t in run["results"]["trials"]) for init, run in runs.items()}
    verdict = {True: "met", False: "**missed**"}
    lines = []
    for init, mean in means.items():
        baseline = next((name for name in (init.replace("pretrained", "random", 1), "random") if name in means), None)
        if not init.startswith("random") and baseline:
            gain = mean - means[baseline]
            lines.append(f"- {init}: test F1 {mean:.4f} (goal ≥ 0.50: {verdict[mean >= 0.50]}); against {baseline} "
                         f"{gain * 100:+.1f} points (goal ≥ +5: {verdict[gain >= 0.05]}); stretch ≥ 0.743 (the CRF on "
                         f"gold words): {verdict[mean >= 0.743]}")
    return "Goals (means over the trials above):\n\n" + "\n".join(lines) if lines else ""


def plot(curve: dict, runs: dict[str, dict], path: pathlib.Path, pretraining: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    steps = sorted(curve["loss"])
    left.plot(steps, [curve["rtd_accuracy"][s] for s in steps], label="RTD accuracy")
    left.plot(steps, [1 - curve["replaced_rate"][s] for s in steps], label="all-original baseline", linestyle="--")
    left.plot(steps, [curve["rtd_precision"][s] for s in steps], label="RTD precision")
    left.plot(steps, [curve["rtd_recall"][s] for s in steps], label="RTD recall")
    left.plot(steps, [curve["mlm_accuracy"][s] for s in steps], label="generator MLM accuracy")
    left.set_xlabel("pretraining step")
    left.set_title(pretraining)
    left.legend(fontsize=8)
    for init, run in runs.items():
        epochs = sorted(set.intersection(*(set(c) for c in run["dev_curves"])))
        means = [statistics.fmean(c[e] for c in run["dev_curves"]) for e in epochs]
        spread = [statistics.pstdev([c[e] for c in run["dev_curves"]]) for e in epochs]
        right.plot(epochs, means, marker="o", label=init)
        right.fill_between(epochs, [m - s for m, s in zip(means, spread)], [m + s for m, s in zip(means, spread)],
                           alpha=0.2)
    right.set_xlabel("fine-tuning epoch")
    right.set_ylabel("dev entity F1 (mean ± std over seeds)")
    right.set_title("NER fine-tuning on GSD")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain", required=True, help="the pretrain --model-dir")
    parser.add_argument("--finetuned", action="append", required=True, type=group_and_dir, metavar="INIT=DIR",
                        help="a fine-tuned dir and the name of its initialisation (repeat; dirs of one name, run with "
                             "other seeds, are merged)")
    parser.add_argument("--commands", required=True, help="a text file with the commands that made the runs")
    parser.add_argument("--conditions", default="nothing else ran beside them",
                        help="what else ran on the machine meanwhile (it changes the times, not the scores)")
    parser.add_argument("--out", default="docs/results.md")
    parser.add_argument("--section", default="cpu_recipe", help="the section of --out to write; also the PNG's name")
    parser.add_argument("--title", default="A CPU recipe: pretraining on the shipped text, then NER (configs/cpu.yaml)")
    parser.add_argument("--pretraining", default="configs/cpu.yaml", help="what the pretraining was, for the plot")
    args = parser.parse_args()
    pretrain = pathlib.Path(args.pretrain)
    curve, seconds = scalars(pretrain / "train")
    runs = {}
    for name, path in args.finetuned:  # dirs of one init (other seeds) are merged
        run = finetuning(pathlib.Path(path))
        if name in runs:
            runs[name]["results"]["trials"] += run["results"]["trials"]
            runs[name]["dev_curves"] += run["dev_curves"]
        else:
            runs[name] = run
    picture = pathlib.Path(args.out).parent / f"{args.section}.png"
    plot(curve, runs, picture, f"pretraining ({args.pretraining})")
    trials, summary, per_type = finetuning_tables(runs)
    commands = pathlib.Path(args.commands).read_text().strip()
    body = f"""## {args.title}

Commands (on a 2-core machine; {args.conditions}):

```
{commands}
```

Machine: {machine()}. Pretraining took {seconds / 60:.0f} minutes (first to last logged step).

### Pretraining curve

Metrics of the logged step's batch; the baseline is the accuracy of calling every token original.

{pretraining_table(curve)}

### Fine-tuning, pretrained against random initialisation, same budget

{trials}

{summary}

{goals(runs)}

Test F1 per entity type (mean ± std over seeds):

{per_type}

![pretraining curve and dev F1 per epoch]({picture.name})
"""
    write_section(args.out, args.section, body)
    print(body)


if __name__ == "__main__":
    main()
