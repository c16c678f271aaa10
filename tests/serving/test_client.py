"""EntityClient's decoding and its requests in flight, against a backend whose answers the test chooses (no model
needed)."""

import threading
import time

import numpy as np
import pytest

from serving.backends import Backend
from serving.client import EntityClient

LABELS = ["O", "B-GPE", "I-GPE"]


class EveryWordBackend(Backend):
    """Scores every word I-GPE likeliest (B-GPE next), the label that would continue an entity across a sentence
    boundary: decoded as one sequence, two sentences would make one entity."""

    def predict(self, inputs):
        rows, words = inputs["labeled_positions"].shape
        probabilities = np.zeros([rows, words, len(LABELS)], np.float32)
        probabilities[..., [LABELS.index("O"), LABELS.index("B-GPE"), LABELS.index("I-GPE")]] = 0.1, 0.3, 0.6
        return np.full([rows, words], LABELS.index("I-GPE"), np.int64), probabilities

    def label_names(self):
        return LABELS


@pytest.mark.parametrize("text, expected", [
    ("東京。大阪。", ["東京。", "大阪。"]),
    ("東京\n大阪", ["東京", "大阪"]),
])
def test_entities_never_span_two_sentences(tokenizer, text, expected):
    [found] = EntityClient(EveryWordBackend(), tokenizer, 64).predict([text])
    assert [entity["text"] for entity in found] == expected
    assert all(text[e["start"]:e["end"]] == e["text"] for e in found)


def test_windows_of_one_long_sentence_are_decoded_as_one(tokenizer):
    text = "東京都の人口は千四百万人を超えている" * 20 + "。"
    client = EntityClient(EveryWordBackend(), tokenizer, 8)
    [found] = client.predict([text])
    assert [(e["start"], e["end"]) for e in found] == [(0, len(text))]


class SwitchingTypeBackend(Backend):
    """Every word's argmax I-PERSON except the first's, B-GPE: decoded word by word, a GPE then a PERSON entity."""

    labels = ["O", "B-GPE", "I-GPE", "B-PERSON", "I-PERSON"]

    def predict(self, inputs):
        rows, words = inputs["labeled_positions"].shape
        probabilities = np.tile(np.array([0.05, 0.05, 0.4, 0.05, 0.45], np.float32), [rows, words, 1])
        probabilities[:, 0] = [0.1, 0.8, 0.0, 0.1, 0.0]
        return probabilities.argmax(-1), probabilities

    def label_names(self):
        return self.labels


def test_a_sentence_is_decoded_as_its_likeliest_valid_label_sequence(tokenizer):
    # B-GPE then I-GPE (0.8 x 0.4 per further word) beats every valid sequence with a PERSON in it.
    text = "東京都大阪府"
    [found] = EntityClient(SwitchingTypeBackend(), tokenizer, 64).predict([text])
    assert [(e["text"], e["type"]) for e in found] == [(text, "GPE")]


class SlowParityBackend(Backend):
    """Labels a word B-GPE when its first WordPiece's id is even, taking 20 ms a request, and counts the requests
    under way at once."""

    def __init__(self):
        self.lock, self.under_way, self.most_under_way = threading.Lock(), 0, 0

    def predict(self, inputs):
        with self.lock:
            self.under_way += 1
            self.most_under_way = max(self.most_under_way, self.under_way)
        time.sleep(0.02)  # long enough for the other requests in flight to start
        with self.lock:
            self.under_way -= 1
        ids = np.take_along_axis(inputs["input_ids"], inputs["labeled_positions"], axis=1)
        label_ids = np.where(ids % 2 == 0, LABELS.index("B-GPE"), LABELS.index("O"))
        return label_ids.astype(np.int64), np.eye(len(LABELS), dtype=np.float32)[label_ids]

    def label_names(self):
        return LABELS


@pytest.mark.parametrize("in_flight", [1, 3])
def test_requests_in_flight_change_the_pace_not_the_answers(tokenizer, in_flight):
    places = ["東京", "大阪", "名古屋", "札幌", "福岡", "神戸"] * 3
    texts = [f"{place}の人口は{n}万人だ。" for n, place in enumerate(places)]
    one_at_a_time = EntityClient(SlowParityBackend(), tokenizer, 64, batch_size=2, requests_in_flight=1)
    backend = SlowParityBackend()
    client = EntityClient(backend, tokenizer, 64, batch_size=2, requests_in_flight=in_flight)
    expected = one_at_a_time.predict(texts)
    assert sum(len(found) for found in expected) > 10
    assert client.predict(texts) == expected  # each answer back with its own windows, whatever order requests end in
    assert backend.most_under_way == in_flight
