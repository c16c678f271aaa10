"""Client-side text handling: text -> sentences -> windows of WordPieces with each word's character offsets ->
padded request tensors; and per-word predictions -> entities with offsets into the caller's original string.

A text is cut after sentence-final punctuation (。！？!? and closing brackets after them) and at line breaks,
because the tagger was trained on single sentences; a sentence with more WordPieces than the model's length is
split into windows at word boundaries (data_prep.ner_data.windows), never truncated. Offsets come from the
tokenizer, which maps NFKC-normalized words back to the original characters, so `text[start:end]` is exactly
what the caller sent, spaces and full-width characters included.

Example:
    windows = text_windows(tokenizer, "三代目 J SOUL BROTHERSが出演した。", max_seq_length=128)
    batch = pad_batch(windows)          # input_ids, input_mask, segment_ids, labeled_positions (int32)
"""

import collections
import dataclasses
import re
from dataclasses import dataclass

import numpy as np

from data_prep.bio import decode_bio
from data_prep.ner_data import window_features, windows
from data_prep.tokenizer import CLS, SEP, Encoding, JapaneseTokenizer

SENTENCE = re.compile(r"[^\n]*?(?:[。！？!?]+[」』）)]*|\n|$)")


@dataclass(frozen=True)
class Window:
    """One request row: [CLS] pieces [SEP], the positions of its words' first pieces, and those words' offsets."""

    token_ids: list[int]
    positions: list[int]
    words: list[tuple[int, int]]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence of `text` that holds more than whitespace."""
    return [(m.start(), m.end()) for m in SENTENCE.finditer(text) if m.group().strip()]


def text_windows(tokenizer: JapaneseTokenizer, text: str, max_seq_length: int) -> list[Window]:
    cls_id, sep_id = tokenizer.id_of(CLS), tokenizer.id_of(SEP)
    result = []
    for start, end in sentence_spans(text):
        encoding = _cap_word_pieces(tokenizer.encode(text[start:end]), max_seq_length - 2)
        no_labels = [0] * len(encoding.words)
        for first, last in windows(encoding, max_seq_length - 2):
            features = window_features(encoding, (first, last), no_labels, cls_id, sep_id, max_seq_length)
            result.append(Window(features["input_ids"][:sum(features["input_mask"])],
                                 features["labeled_positions"][:sum(features["labels_mask"])],
                                 [(start + w.start, start + w.end) for w in encoding.words[first:last]]))
    return result


def _cap_word_pieces(encoding: Encoding, max_tokens: int) -> Encoding:
    """Keeps at most `max_tokens` pieces of any one word (only its first piece is labeled), so an absurdly long
    word still fits a window instead of failing the whole request."""
    pieces_so_far = collections.Counter()
    kept = []
    for index, word in enumerate(encoding.token_words):
        pieces_so_far[word] += 1
        if pieces_so_far[word] <= max_tokens:
            kept.append(index)
    if len(kept) == len(encoding.token_ids):
        return encoding
    return dataclasses.replace(encoding, token_ids=[encoding.token_ids[i] for i in kept],
                               token_words=[encoding.token_words[i] for i in kept])


def pad_batch(batch: list[Window]) -> dict[str, np.ndarray]:
    """int32 [rows, longest] tensors of the contract's inputs, zero-padded."""
    length = max(len(w.token_ids) for w in batch)
    words = max(len(w.positions) for w in batch)
    arrays = {name: np.zeros([len(batch), size], np.int32) for name, size in
              (("input_ids", length), ("input_mask", length), ("segment_ids", length), ("labeled_positions", words))}
    for row, window in enumerate(batch):
        arrays["input_ids"][row, :len(window.token_ids)] = window.token_ids
        arrays["input_mask"][row, :len(window.token_ids)] = 1
        arrays["labeled_positions"][row, :len(window.positions)] = window.positions
    return arrays


def entities(text: str, words: list[tuple[int, int]], labels: list[str], scores: list[float]) -> list[dict]:
    """Entities of one text from its words' labels: {text, type, start, end, score}, text == text[start:end]."""
    return [{"text": text[s.start:s.end], "type": s.type, "start": s.start, "end": s.end, "score": round(s.score, 4)}
            for s in decode_bio(labels, words, scores)]
