"""BIO labels back to entity spans, shared by evaluation (finetune) and the client (serving).

Decoding never emits an I- without its B-: an `I-X` that does not continue an entity of type X (it follows
`O`, the sentence start, or a word of another type) opens a new entity of type X, exactly as if it were `B-X`.
This is conlleval's rule and seqeval's default mode, so character-span scores and seqeval's word-level scores
agree wherever words and entity edges coincide.

Example:
    decode_bio(["B-PERSON", "I-PERSON", "O", "I-GPE"], [(0, 3), (3, 5), (5, 6), (6, 8)])
    # [Span(start=0, end=5, type='PERSON', score=1.0), Span(start=6, end=8, type='GPE', score=1.0)]
"""

from dataclasses import dataclass

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
