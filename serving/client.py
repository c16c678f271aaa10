"""Text in, entities out: the client library behind `electra-ja predict`.

Texts are cut into sentence windows (serving.features), windows of many texts are sorted by length and batched
into requests of at most `batch_size` rows and `batch_tokens` padded positions, sent `requests_in_flight` at a
time (a server, or TensorFlow in this process, runs them side by side on its cores), the backend scores each word's
labels, and the most probable valid BIO sequence (data_prep.bio.best_labels) gives entities with offsets into each
original text. Decoding runs per sentence, as the tagger was trained: no entity continues across a sentence
boundary.

Example:
    with EntityClient.from_export("build/demo/export") as client:    # or EntityClient.for_server(...)
        client.predict(["三代目 J SOUL BROTHERSが出演した。"])
    # [[{"text": "三代目 J SOUL BROTHERS", "type": "ORG", "start": 0, "end": 20, "score": 0.93}]]
"""

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tensorflow.io import gfile

from data_prep import storage
from data_prep.bio import best_labels
from data_prep.errors import InputError
from data_prep.tokenizer import JapaneseTokenizer
from export.contract import ASSETS_DIR, CLASSIFICATION, TAGGER_OUTPUTS
from serving.backends import GrpcBackend, RestBackend, SavedModelBackend
from serving.features import Window, entities, length_batches, pad_batch, text_windows
from serving.limits import check_range

PROTOCOLS = ("grpc", "rest", "rest-columnar")
# Padded positions per request. GSD test sentences through the small model on 2 CPU cores, 64 per call: 512 ->
# 120 sentences/s (per-call cost dominates), 1,024 -> 136, 2,048 -> 124, no budget -> 73 (padding dominates).
# Accelerators want larger batches: --batch-tokens.
BATCH_TOKENS = 1024
# Requests sent at once. One request keeps one core busy when TensorFlow runs each op on one thread (the fastest
# setting for one sentence); a second in flight doubled windows/s on 2 cores (a probe, oneDNN off: 140 -> 294 with
# intra-op 1, inter-op 2; 121 -> 185 at TensorFlow's defaults). A server with more cores wants more.
REQUESTS_IN_FLIGHT = 2
# A window holds [CLS], at least one WordPiece and [SEP].
MIN_SEQ_LENGTH = 3


class EntityClient:
    outputs = TAGGER_OUTPUTS  # the serving_default outputs this client reads (export/contract.py)

    def __init__(self, backend, tokenizer: JapaneseTokenizer, max_seq_length: int, batch_size: int = 64,
                 batch_tokens: int = BATCH_TOKENS, requests_in_flight: int = REQUESTS_IN_FLIGHT):
        check_range("--max-seq-length", max_seq_length, MIN_SEQ_LENGTH)
        check_range("--batch-size", batch_size, 1)
        check_range("--batch-tokens", batch_tokens, 1)
        check_range("--requests-in-flight", requests_in_flight, 1)
        self.backend, self.tokenizer = backend, tokenizer
        self.max_seq_length, self.batch_size, self.batch_tokens = max_seq_length, batch_size, batch_tokens
        self.requests_in_flight = requests_in_flight
        self._labels = None

    @classmethod
    def from_export(cls, base_path: str, batch_size: int = 64, batch_tokens: int = BATCH_TOKENS,
                    max_seq_length: int | None = None,
                    requests_in_flight: int = REQUESTS_IN_FLIGHT) -> "EntityClient":
        """`max_seq_length`: the window length; default, the one the model was fine-tuned with."""
        backend = SavedModelBackend(base_path, cls.outputs)
        assets = storage.join(backend.path, ASSETS_DIR)
        if max_seq_length is None:
            max_seq_length = _max_seq_length(assets)
        else:
            _check_within_positions(max_seq_length, assets)
        return cls(backend, JapaneseTokenizer.load(assets, "--model-base-path"), max_seq_length, batch_size,
                   batch_tokens, requests_in_flight)

    @classmethod
    def for_server(cls, address: str, protocol: str, model_name: str, tokenizer_dir: str,
                   max_seq_length: int | None = None, batch_size: int = 64, batch_tokens: int = BATCH_TOKENS,
                   requests_in_flight: int = REQUESTS_IN_FLIGHT) -> "EntityClient":
        """`tokenizer_dir`: the export's assets/ (or any copy of the model's tokenizer dir)."""
        if protocol not in PROTOCOLS:
            raise InputError(f"--protocol {protocol}: expected one of {', '.join(PROTOCOLS)}")
        backend = (GrpcBackend(address, model_name, outputs=cls.outputs) if protocol == "grpc"
                   else RestBackend(address, model_name, columnar=protocol == "rest-columnar", outputs=cls.outputs))
        tokenizer = JapaneseTokenizer.load(tokenizer_dir)
        if max_seq_length is None:
            max_seq_length = _max_seq_length(tokenizer_dir)
        elif gfile.exists(storage.join(tokenizer_dir, "model_config.json")):  # an export's assets/ can tell
            _check_within_positions(max_seq_length, tokenizer_dir, "--tokenizer")
        return cls(backend, tokenizer, max_seq_length, batch_size, batch_tokens, requests_in_flight)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "EntityClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def labels(self) -> list[str]:
        if self._labels is None:
            self._labels = self.backend.label_names()
        return self._labels

    def answers(self, texts: list[str]) -> list[dict]:
        """What `electra-ja predict` prints beside each text."""
        return [{"entities": found} for found in self.predict(texts)]

    def predict(self, texts: list[str]) -> list[list[dict]]:
        owners, windows = [], []  # windows of all texts, in text order, and the text each came from
        for index, text in enumerate(texts):
            for window in text_windows(self.tokenizer, text, self.max_seq_length):
                owners.append(index)
                windows.append(window)
        probabilities = self._word_probabilities(windows)
        found = [[] for _ in texts]
        # A long sentence's windows are consecutive: they are stitched back into one sentence before decoding.
        for (index, _), sentence in itertools.groupby(zip(owners, windows, probabilities),
                                                      key=lambda item: (item[0], item[1].sentence)):
            sentence = list(sentence)
            words = [word for _, window, _ in sentence for word in window.words]
            labels, scores = best_labels(np.concatenate([probs for _, _, probs in sentence]), self.labels)
            found[index].extend(entities(texts[index], words, labels, scores))
        return found

    def _word_probabilities(self, windows: list[Window]) -> list[np.ndarray]:
        """[words, labels] probabilities of each window's words, in `windows` order, from length-sorted requests."""
        result = [None] * len(windows)
        for batch, (_, probabilities) in self._answered_requests(windows):
            for row, w in enumerate(batch):
                result[w] = probabilities[row, :len(windows[w].positions)]
        return result

    def _answered_requests(self, windows: list[Window]):
        """(window indices, the backend's answer) of each length-sorted request over `windows`, up to
        requests_in_flight of them sent at once."""
        batches = list(length_batches(windows, self.batch_size, self.batch_tokens))

        def answer(batch):
            return self.backend.predict(self._request([windows[w] for w in batch]))

        if len(batches) == 1 or self.requests_in_flight == 1:  # no threads for a single sentence's request
            return zip(batches, map(answer, batches))
        with ThreadPoolExecutor(self.requests_in_flight) as pool:
            return zip(batches, list(pool.map(answer, batches)))

    def _request(self, windows: list[Window]) -> dict[str, np.ndarray]:
        return pad_batch(windows)


def _max_seq_length(directory: str) -> int:
    """The window length the model was fine-tuned with (model_config.json beside the tokenizer files)."""
    path = storage.join(directory, "model_config.json")
    if not gfile.exists(path):
        raise InputError(f"--tokenizer {directory}: no model_config.json to read max_seq_length from; pass "
                         "--max-seq-length or point --tokenizer at the export's assets/ directory")
    return storage.read_json(path, "--tokenizer")["max_seq_length"]


def _check_within_positions(max_seq_length: int, assets: str, flag: str = "--model-base-path") -> None:
    """A window longer than the model's position table would fail inside the model, not with a clear line."""
    config = storage.read_json(storage.join(assets, "model_config.json"), flag)
    positions = config.get("model", {}).get("max_position_embeddings")
    if positions is None:
        raise InputError(f"--max-seq-length {max_seq_length}: {assets}/model_config.json has no "
                         "model.max_position_embeddings to check it against")
    if max_seq_length > positions:
        raise InputError(f"--max-seq-length {max_seq_length}: more than the model's {positions} positions")


def is_classifier(assets_dir: str) -> bool:
    """Whether the model of an export's assets/ (or a tokenizer dir beside its labels.json) is a sentence classifier."""
    path = storage.join(assets_dir, "labels.json")
    return gfile.exists(path) and storage.read_json(path, "--tokenizer").get("task") == CLASSIFICATION
