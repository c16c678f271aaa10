"""Client-side text handling: text -> sentences -> windows of WordPieces with each word's character offsets ->
padded request tensors; and per-word predictions -> entities with offsets into the caller's original string.

A text is cut after sentence-final punctuation (。！？!? and closing brackets after them) and at line breaks,
because the tagger was trained on single sentences; a sentence with more WordPieces than the model's length is
split into windows at word boundaries (data_prep.ner_data.windows), never truncated. Offsets come from the
tokenizer, which maps NFKC-normalized words back to the original characters, so `text[start:end]` is exactly
what the caller sent, spaces and full-width characters included.

Example:
    windows = text_windows(tokenizer, "三代目 J SOUL BROTHERSが出演した。", max_seq_length=128)
    batches = length_batches(windows, max_rows=64, max_tokens=1024)
    batch = pad_batch([windows[i] for i in batches[0]])  # int32 input_ids, input_mask, segment_ids, labeled_positions
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
    """One request row: [CLS] pieces [SEP], the positions of its words' first pieces, those words' offsets, and
    which sentence of its text it belongs to (a long sentence spans several windows)."""

    token_ids: list[int]
    positions: list[int]
    words: list[tuple[int, int]]
    sentence: int


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence of `text` that holds more than whitespace."""
    return [(m.start(), m.end()) for m in SENTENCE.finditer(text) if m.group().strip()]


def text_windows(tokenizer: JapaneseTokenizer, text: str, max_seq_length: int) -> list[Window]:
    cls_id, sep_id = tokenizer.id_of(CLS), tokenizer.id_of(SEP)
    result = []
    for sentence, (start, end) in enumerate(sentence_spans(text)):
        encoding = cap_word_pieces(tokenizer.encode(text[start:end]), max_seq_length - 2)
        no_labels = [0] * len(encoding.words)
        for first, last in windows(encoding, max_seq_length - 2):
            features = window_features(encoding, (first, last), no_labels, cls_id, sep_id, max_seq_length)
            result.append(Window(features["input_ids"][:sum(features["input_mask"])],
                                 features["labeled_positions"][:sum(features["labels_mask"])],
                                 [(start + w.start, start + w.end) for w in encoding.words[first:last]], sentence))
    return result


def cap_word_pieces(encoding: Encoding, max_tokens: int) -> Encoding:
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


def length_batches(windows: list[Window], max_rows: int, max_tokens: int) -> list[list[int]]:
    """Indices of `windows`, shortest first, cut into batches of at most `max_rows` rows and at most `max_tokens`
    padded positions (rows × the batch's longest window; a longer window still gets a batch of its own).

    A batch is padded to its longest row, so one batch of 64 mixed sentences computes ~3× the positions it needs;
    cutting sorted windows by a position budget keeps the padding small while each request stays large enough
    that the model's fixed per-call cost does not dominate (docs/benchmarks.md, serving)."""
    by_length = sorted(range(len(windows)), key=lambda i: len(windows[i].token_ids))
    batches = []
    for index in by_length:
        rows = len(batches[-1]) + 1 if batches else 0
        if not batches or rows > max_rows or rows * len(windows[index].token_ids) > max_tokens:
            batches.append([])
        batches[-1].append(index)
    return batches


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
    """Entities from one sentence's word labels (offsets into `text`): {text, type, start, end, score},
    text == text[start:end]."""
    return [{"text": text[s.start:s.end], "type": s.type, "start": s.start, "end": s.end, "score": round(s.score, 4)}
            for s in decode_bio(labels, words, scores)]
