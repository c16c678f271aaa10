"""Sentence-classification evaluation: a text's label is the argmax of the mean of its windows' probabilities (a text
longer than one window is never judged by its first window alone); accuracy and macro-F1 over texts, and precision,
recall and F1 per class.

Example:
    scores = evaluate_classifier(classifier, ClsData.load("build/demo/cls"), "test")
    scores["accuracy"], scores["macro_f1"], scores["per_class"]["小説"]["f1"]
"""

import numpy as np

from data_prep.errors import InputError
from finetune.data import ClsData
from finetune.evaluation import prf, prf_table, softmax


def text_probabilities(classifier, data: ClsData, split: str, texts: list[dict], batch_size: int = 64,
                       fixed_length: bool = False) -> np.ndarray:
    """[texts, labels]: the mean of each text's windows' probabilities."""
    windows = np.concatenate([softmax(np.asarray(classifier.predict_on_batch(features)))
                              for features, _ in data.dataset(split, batch_size, fixed_length=fixed_length)])
    counts = [text["windows"] for text in texts]
    if len(windows) != sum(counts):
        raise InputError(f"--data: {data.split_file(split, 'tfrecord')} has {len(windows)} examples, "
                         f"{data.split_file(split, 'jsonl')} {sum(counts)} windows (not from the same cls-data run)")
    starts = np.cumsum([0] + counts[:-1])
    return np.stack([windows[start:start + count].mean(0) for start, count in zip(starts, counts)])


def evaluate_classifier(classifier, data: ClsData, split: str, batch_size: int = 64,
                        fixed_length: bool = False) -> dict:
    texts = data.texts(split)
    predicted = text_probabilities(classifier, data, split, texts, batch_size, fixed_length).argmax(-1)
    gold = [data.labels.index(text["label"]) for text in texts]
    per_class = {}
    for index, name in enumerate(data.labels):
        per_class[name] = prf(correct=sum(1 for g, p in zip(gold, predicted) if g == p == index),
                              gold=gold.count(index), predicted=int((predicted == index).sum()))
    present = [row["f1"] for row in per_class.values() if row["gold"] or row["predicted"]]
    return {"accuracy": float(np.mean(np.asarray(gold) == predicted)),
            "macro_f1": float(np.mean(present)) if present else 0.0,
            "texts": len(texts), "per_class": per_class}


def format_classifier_scores(name: str, scores: dict, per_type: bool = False) -> str:
    lines = [f"{name}: accuracy {scores['accuracy']:.4f}  macro-F1 {scores['macro_f1']:.4f}  ({scores['texts']} texts)"]
    if per_type:
        lines += prf_table("class", scores["per_class"])
    return "\n".join(lines)
