"""BIO labels back to entity spans, shared by evaluation (finetune) and the client (serving).

A tagger scores each word's labels independently, so its per-word argmax can end an entity with a stray `I-` of
another type or start one with an `I-`. `best_labels` picks instead the most probable label sequence that is
valid BIO (Viterbi over the words' log-probabilities, I-X only after B-X or I-X), which is what a CRF's decoder
does with transitions fixed at allowed/forbidden: the words' probabilities decide every boundary.

Decoding never emits an I- without its B-: an `I-X` that does not continue an entity of type X (it follows
`O`, the sentence start, or a word of another type) opens a new entity of type X, exactly as if it were `B-X`.
This is conlleval's rule and seqeval's default mode, so character-span scores and seqeval's word-level scores
agree wherever words and entity edges coincide.

Example:
    labels, scores = best_labels(probs, ["O", "B-GPE", "I-GPE"])  # probs: [words, labels] -> a label per word
    decode_bio(["B-PERSON", "I-PERSON", "O", "I-GPE"], [(0, 3), (3, 5), (5, 6), (6, 8)])
    # [Span(start=0, end=5, type='PERSON', score=1.0), Span(start=6, end=8, type='GPE', score=1.0)]
"""

import functools
from dataclasses import dataclass

import numpy as np

OUTSIDE = "O"


@dataclass(frozen=True)
class Span:
    """A decoded entity: characters [start, end) of the text the word offsets point into, and the mean
    probability of its words' predicted labels."""

    start: int
    end: int
    type: str
    score: float = 1.0


def label_names(types: set[str]) -> list[str]:
    """The label set for entity `types`: O, then B-/I- per type in sorted order."""
    return [OUTSIDE] + [f"{prefix}-{kind}" for kind in sorted(types) for prefix in ("B", "I")]


def decode_bio(labels: list[str], words: list[tuple[int, int]], scores: list[float] | None = None) -> list[Span]:
    """Entity spans from one BIO label per word; `words` are the words' [start, end) character offsets."""
    scores = scores if scores is not None else [1.0] * len(labels)
    spans, open_entity = [], None  # open_entity: (type, first word index)

    def close(end_word: int):
        kind, first = open_entity
        word_scores = scores[first:end_word]
        spans.append(Span(words[first][0], words[end_word - 1][1], kind, sum(word_scores) / len(word_scores)))

    for i, label in enumerate(labels):
        prefix, _, kind = label.partition("-")
        continues = prefix == "I" and open_entity is not None and open_entity[0] == kind
        if open_entity is not None and not continues:
            close(i)
            open_entity = None
        if prefix in ("B", "I") and not continues:
            open_entity = (kind, i)
    if open_entity is not None:
        close(len(labels))
    return spans


def best_labels(probabilities: np.ndarray, names: list[str]) -> tuple[list[str], list[float]]:
    """The most probable valid BIO sequence for one sentence's words, and each chosen label's probability.

    `probabilities`: [words, len(names)], each row a distribution over `names`. Valid: no `I-X` first or after
    anything but `B-X`/`I-X`; among valid sequences the one with the highest product of probabilities."""
    if len(probabilities) == 0:
        return [], []
    probabilities = np.asarray(probabilities)
    allowed, may_start = allowed_transitions(tuple(names)), allowed_starts(tuple(names))
    path = probabilities.argmax(axis=-1)
    # Most sentences' argmax is already valid, and then it is the likeliest valid sequence too: no search needed.
    if not (may_start[path[0]] and allowed[path[:-1], path[1:]].all()):
        # Clipped at the smallest normal float64, so no float32 probability, however small, becomes log 0.
        log_probs = np.log(np.maximum(probabilities.astype(np.float64), np.finfo(np.float64).tiny))
        path = viterbi_path(log_probs, np.where(allowed, 0.0, -np.inf), np.where(may_start, 0.0, -np.inf))
    return [names[i] for i in path], probabilities[np.arange(len(path)), path].astype(float).tolist()


def viterbi_path(log_probs: np.ndarray, transition_penalty: np.ndarray, start_penalty: np.ndarray) -> list[int]:
    """The label indices that maximise the summed `log_probs` [words, labels] plus the penalties (0 or -inf) of
    each [from, to] transition and of the first label."""
    best = log_probs[0] + start_penalty
    came_from = []
    for word_log_probs in log_probs[1:]:
        candidates = best[:, None] + transition_penalty
        came_from.append(candidates.argmax(axis=0))
        best = candidates.max(axis=0) + word_log_probs
    path = [int(best.argmax())]
    for previous in reversed(came_from):
        path.append(int(previous[path[-1]]))
    return path[::-1]


@functools.cache
def allowed_transitions(names: tuple[str, ...]) -> np.ndarray:
    """[from, to] booleans: `I-X` may follow only `B-X` or `I-X`; every other label may follow anything. Built once
    per label set (a client decodes every sentence with the same one) and read-only, as every caller shares it."""
    kinds = [name.partition("-")[2] for name in names]
    allowed = np.array([[not to.startswith("I-") or (frm != OUTSIDE and kinds[i] == kinds[j])
                         for j, to in enumerate(names)] for i, frm in enumerate(names)])
    allowed.setflags(write=False)
    return allowed


@functools.cache
def allowed_starts(names: tuple[str, ...]) -> np.ndarray:
    """Booleans: which labels a sentence may start with (any but an `I-`); read-only, shared as above."""
    may_start = np.array([not name.startswith("I-") for name in names])
    may_start.setflags(write=False)
    return may_start
