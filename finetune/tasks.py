"""What differs between the fine-tuning heads, and nothing else: the data a task reads, its model, loss and scores,
the dev score that picks the best epoch, and the labels file it keeps. The trainer runs any of TASKS the same way.

A data dir says its task in dataset.json ("task"; ner-data's dirs, which predate the key, are NER); a fine-tuned dir
in model_config.json.

Example:
    task = task_of_data("build/demo/cls")          # TASKS["classification"]
    data = task.load_data("build/demo/cls")
    model = task.model(config.model, len(data.labels), dropout=0.1)
"""

from dataclasses import dataclass
from typing import Callable

from data_prep import storage
from data_prep.cls_data import TASK as CLASSIFICATION
from data_prep.errors import InputError
from finetune.cls_evaluation import evaluate_classifier, format_classifier_scores
from finetune.data import ClsData, NerData
from finetune.evaluation import evaluate, format_scores
from finetune.model import SequenceClassifier, TokenTagger, classification_loss, tagging_loss

NER = "ner"
# A sentence's likeliest valid BIO sequence (data_prep.bio.best_labels); results.json without the key predate it and
# took each word's argmax.
VALID_BIO = "valid BIO"


@dataclass(frozen=True)
class Task:
    name: str
    load_data: Callable  # directory -> NerData | ClsData
    model: type  # an EncoderWithHead: (model config, num_labels, dropout)
    loss: Callable
    evaluate: Callable  # (model, data, split, batch_size, fixed_length) -> scores
    format_scores: Callable  # (split name, scores, per_type) -> text
    metric: str  # the dev score that picks the best epoch and trial
    summary_metrics: tuple[str, ...]  # reported as mean ± std over trials
    dev_scalars: Callable  # scores -> {TensorBoard tag: value} logged after every epoch
    labels_file: Callable  # label names -> labels.json content
    decoding: str  # how evaluate turns probabilities into answers, recorded in results.json


TASKS = {
    NER: Task(NER, NerData.load, TokenTagger, tagging_loss, evaluate, format_scores, "f1",
              ("precision", "recall", "f1"),
              lambda s: {"entity_precision": s["precision"], "entity_recall": s["recall"], "entity_f1": s["f1"],
                         "seqeval_f1": s["seqeval"]["f1"]},
              lambda labels: {"scheme": "BIO", "labels": labels}, VALID_BIO),
    CLASSIFICATION: Task(CLASSIFICATION, ClsData.load, SequenceClassifier, classification_loss, evaluate_classifier,
                         format_classifier_scores, "accuracy", ("accuracy", "macro_f1"),
                         lambda s: {"accuracy": s["accuracy"], "macro_f1": s["macro_f1"]},
                         lambda labels: {"task": CLASSIFICATION, "labels": labels}, "mean of windows, argmax"),
}


def task_of(data: NerData) -> Task:
    """The task of loaded data."""
    return TASKS[CLASSIFICATION if isinstance(data, ClsData) else NER]


def task_of_data(directory: str) -> Task:
    description = storage.read_json(storage.join(directory, "dataset.json"), "--data")
    return _task(description.get("task", NER), f"--data {directory}/dataset.json")


def task_of_model(description: dict, where: str) -> Task:
    """The task of a fine-tuned dir's model_config.json (dirs written before tasks existed are NER)."""
    return _task(description.get("task", NER), where)


def _task(name, where: str) -> Task:
    if name not in TASKS:
        raise InputError(f"{where}: task {name!r}, expected one of {', '.join(TASKS)}")
    return TASKS[name]
