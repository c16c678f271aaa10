"""Entity-level evaluation: predicted character spans against gold character spans (exact start, end and
type), precision/recall/F1 overall and per type; seqeval's word-level scores beside them as a diagnostic.

Gold spans are GSD's own, so an entity whose edges fall inside a MeCab word can never be predicted exactly:
it counts as a miss here (seqeval, which compares labels on our words, cannot see that). The word probabilities of
a sentence split into windows are stitched back in word order, then decoded as one sequence: the most probable
valid BIO labels (data_prep.bio.best_labels), as `predict` decodes them.

Example:
    scores = evaluate(tagger, NerData.load("build/demo/ner"), "test")
    scores["f1"], scores["per_type"]["PERSON"]["f1"], scores["seqeval"]["f1"]
"""

import collections

import numpy as np
from seqeval.metrics import f1_score, precision_score, recall_score

from data_prep.bio import best_labels, decode_bio
from data_prep.errors import InputError
from data_prep.ner_data import LabeledSentence
from finetune.data import NerData


def span_scores(gold: list[list], predicted: list[list]) -> dict:
    """P/R/F1 of exact (start, end, type) matches, per sentence lists of anything with those attributes."""
    counts = collections.defaultdict(collections.Counter)
    for gold_spans, predicted_spans in zip(gold, predicted, strict=True):
        gold_set = {(s.start, s.end, s.type) for s in gold_spans}
        predicted_set = {(s.start, s.end, s.type) for s in predicted_spans}
        for kind in {t for _, _, t in gold_set | predicted_set}:
            counts[kind]["gold"] += sum(1 for s in gold_set if s[2] == kind)
            counts[kind]["predicted"] += sum(1 for s in predicted_set if s[2] == kind)
            counts[kind]["correct"] += sum(1 for s in gold_set & predicted_set if s[2] == kind)
    total = sum(counts.values(), collections.Counter())
    return {**prf(**total), "per_type": {kind: prf(**counts[kind]) for kind in sorted(counts)}}


def prf(correct: int = 0, gold: int = 0, predicted: int = 0) -> dict:
    """Precision, recall and F1 (0 where undefined) with the counts they come from."""
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "gold": gold, "predicted": predicted,
            "correct": correct}


def seqeval_scores(gold_labels: list[list[str]], predicted_labels: list[list[str]]) -> dict:
    return {"precision": precision_score(gold_labels, predicted_labels),
            "recall": recall_score(gold_labels, predicted_labels),
            "f1": f1_score(gold_labels, predicted_labels)}


def predict_word_labels(tagger, data: NerData, split: str, sentences: list[LabeledSentence],
                        batch_size: int = 64, fixed_length: bool = False) -> list[tuple[list[str], list[float]]]:
    """(label, probability) of every word of every sentence: the most probable valid BIO sequence."""
    return [best_labels(probs, data.labels)
            for probs in word_probabilities(tagger, data, split, sentences, batch_size, fixed_length)]


def word_probabilities(tagger, data: NerData, split: str, sentences: list[LabeledSentence],
                       batch_size: int = 64, fixed_length: bool = False) -> list[np.ndarray]:
    """[words, labels] probabilities of each sentence, its windows stitched back together."""
    # predict_on_batch compiles once per model, so scoring dev after every epoch does not retrace.
    window_probs = [row for features, _ in data.dataset(split, batch_size, fixed_length=fixed_length)
                    for row in softmax(np.asarray(tagger.predict_on_batch(features)))]
    return stitch_windows(window_probs, data, split, sentences)


def stitch_windows(window_rows: list[np.ndarray], data: NerData, split: str,
                   sentences: list[LabeledSentence]) -> list[np.ndarray]:
    """Per-sentence [words, ...] arrays from per-window rows in the split's order (each row padded past its words)."""
    expected = sum(len(s.windows) for s in sentences)
    if len(window_rows) != expected:
        raise InputError(f"--data: {data.split_file(split, 'tfrecord')} has {len(window_rows)} examples, "
                         f"{data.split_file(split, 'jsonl')} {expected} windows (not from the same ner-data run)")
    rows = iter(window_rows)
    return [np.concatenate([next(rows)[:end - first] for first, end in sentence.windows])
            for sentence in sentences]


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def evaluate(tagger, data: NerData, split: str, batch_size: int = 64, fixed_length: bool = False) -> dict:
    """Char-span scores (overall, per type) with seqeval's word-level scores under "seqeval"."""
    sentences = data.sentences(split)
    return score_probabilities(sentences, word_probabilities(tagger, data, split, sentences, batch_size, fixed_length),
                               data.labels)


def score_probabilities(sentences: list[LabeledSentence], probabilities: list[np.ndarray],
                        label_names: list[str]) -> dict:
    """`evaluate`'s scores of per-sentence [words, labels] probabilities, each decoded as its likeliest valid BIO."""
    predictions = [best_labels(probs, label_names) for probs in probabilities]
    predicted_spans = [decode_bio(labels, s.words, scores) for s, (labels, scores) in zip(sentences, predictions)]
    scores = span_scores([s.entities for s in sentences], predicted_spans)
    scores["seqeval"] = seqeval_scores([s.word_labels for s in sentences], [labels for labels, _ in predictions])
    scores["sentences"] = len(sentences)
    return scores


def format_scores(name: str, scores: dict, per_type: bool = False) -> str:
    lines = [f"{name}: precision {scores['precision']:.4f}  recall {scores['recall']:.4f}  F1 {scores['f1']:.4f}  "
             f"({scores['correct']} of {scores['gold']} gold entities found, {scores['predicted']} predicted; "
             f"seqeval word-level F1 {scores['seqeval']['f1']:.4f})"]
    if per_type:
        lines += prf_table("type", scores["per_type"])
    return "\n".join(lines)


def prf_table(heading: str, rows: dict[str, dict]) -> list[str]:
    """Lines of a P/R/F1 table, a row per type or class."""
    lines = [f"  {heading:<14}{'P':>8}{'R':>8}{'F1':>8}{'gold':>7}{'pred':>7}"]
    for kind, row in rows.items():
        lines.append(f"  {kind:<14}{row['precision']:>8.4f}{row['recall']:>8.4f}{row['f1']:>8.4f}"
                     f"{row['gold']:>7}{row['predicted']:>7}")
    return lines
