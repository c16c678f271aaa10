"""Text in, entities out: the client library behind `electra-ja predict`.

Texts are cut into sentence windows (serving.features), windows of many texts are sorted by length and batched
into requests of at most `batch_size` rows and `batch_tokens` padded positions, the backend labels each word,
and BIO decoding (data_prep.bio) gives entities with offsets into each original text.

Example:
    client = EntityClient.from_export("build/demo/export")          # or EntityClient.for_server(...)
    client.predict(["三代目 J SOUL BROTHERSが出演した。"])
    # [[{"text": "三代目 J SOUL BROTHERS", "type": "ORG", "start": 0, "end": 20, "score": 0.93}]]
"""

import numpy as np

from tensorflow.io import gfile

from data_prep import storage
from data_prep.errors import InputError
from data_prep.tokenizer import JapaneseTokenizer
from export.contract import ASSETS_DIR
from serving.backends import GrpcBackend, RestBackend, SavedModelBackend
from serving.features import entities, length_batches, pad_batch, text_windows

PROTOCOLS = ("grpc", "rest", "rest-columnar")
# Padded positions per request. GSD test sentences through the small model on 2 CPU cores, 64 per call: 512 ->
# 120 sentences/s (per-call cost dominates), 1,024 -> 136, 2,048 -> 124, no budget -> 73 (padding dominates).
# Accelerators want larger batches: --batch-tokens.
BATCH_TOKENS = 1024


class EntityClient:
    def __init__(self, backend, tokenizer: JapaneseTokenizer, max_seq_length: int, batch_size: int = 64,
                 batch_tokens: int = BATCH_TOKENS):
        for flag, value in (("--max-seq-length", max_seq_length), ("--batch-size", batch_size),
                            ("--batch-tokens", batch_tokens)):
            if value < 1:
                raise InputError(f"{flag} {value}: expected a positive number")
        self.backend, self.tokenizer = backend, tokenizer
        self.max_seq_length, self.batch_size, self.batch_tokens = max_seq_length, batch_size, batch_tokens
        self._labels = None

    @classmethod
    def from_export(cls, base_path: str, batch_size: int = 64, batch_tokens: int = BATCH_TOKENS) -> "EntityClient":
        backend = SavedModelBackend(base_path)
        assets = storage.join(backend.path, ASSETS_DIR)
        return cls(backend, JapaneseTokenizer.load(assets, "--model-base-path"), _max_seq_length(assets), batch_size,
                   batch_tokens)

    @classmethod
    def for_server(cls, address: str, protocol: str, model_name: str, tokenizer_dir: str,
                   max_seq_length: int | None = None, batch_size: int = 64,
                   batch_tokens: int = BATCH_TOKENS) -> "EntityClient":
        """`tokenizer_dir`: the export's assets/ (or any copy of the model's tokenizer dir)."""
        if protocol not in PROTOCOLS:
            raise InputError(f"--protocol {protocol}: expected one of {', '.join(PROTOCOLS)}")
        backend = (GrpcBackend(address, model_name) if protocol == "grpc"
                   else RestBackend(address, model_name, columnar=protocol == "rest-columnar"))
        tokenizer = JapaneseTokenizer.load(tokenizer_dir)
        return cls(backend, tokenizer, max_seq_length or _max_seq_length(tokenizer_dir), batch_size, batch_tokens)

    @property
    def labels(self) -> list[str]:
        if self._labels is None:
            self._labels = self.backend.label_names()
        return self._labels

    def predict(self, texts: list[str]) -> list[list[dict]]:
        owners, windows = [], []  # windows of all texts, in text order, and the text each came from
        for index, text in enumerate(texts):
            for window in text_windows(self.tokenizer, text, self.max_seq_length):
                owners.append(index)
                windows.append(window)
        labeled = [None] * len(windows)
        for batch in length_batches(windows, self.batch_size, self.batch_tokens):
            predictions, probabilities = self.backend.predict(pad_batch([windows[w] for w in batch]))
            for row, w in enumerate(batch):
                label_ids = predictions[row, :len(windows[w].positions)]
                labeled[w] = ([self.labels[i] for i in label_ids],
                              probabilities[row, np.arange(len(label_ids)), label_ids].tolist())
        words, labels, scores = ([[] for _ in texts] for _ in range(3))
        for index, window, (window_labels, window_scores) in zip(owners, windows, labeled):
            words[index].extend(window.words)
            labels[index].extend(window_labels)
            scores[index].extend(window_scores)
        return [entities(text, words[i], labels[i], scores[i]) for i, text in enumerate(texts)]


def _max_seq_length(directory: str) -> int:
    """The window length the model was fine-tuned with (model_config.json beside the tokenizer files)."""
    path = storage.join(directory, "model_config.json")
    if not gfile.exists(path):
        raise InputError(f"--tokenizer {directory}: no model_config.json to read max_seq_length from; pass "
                         "--max-seq-length or point --tokenizer at the export's assets/ directory")
    return storage.read_json(path, "--tokenizer")["max_seq_length"]
