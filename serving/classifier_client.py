"""Text in, label out: the client of a sentence classifier's export (`electra-ja predict` picks it when the export's
labels.json says "task": "classification").

A text is encoded whole (no sentence split: the classifier was trained on whole texts); one longer than a window is
split into windows at word boundaries, never truncated, and its label is the argmax of the mean of its windows'
probabilities, as evaluation computes it (finetune/cls_evaluation.py). Windows of many texts are sorted by length
into requests, as for the tagger.

Example:
    with TextClassifierClient.from_export("build/demo/cls-export") as client:   # or .for_server(...)
        client.answers(["吾輩は猫である。"])
    # [{"label": "小説", "score": 0.97, "scores": {"小説": 0.97, "百科事典": 0.03}}]
"""

import numpy as np

from data_prep.ner_data import window_token_ids, windows
from data_prep.tokenizer import CLS, SEP
from export.contract import CLASSIFIER_OUTPUTS
from serving.client import EntityClient
from serving.features import Window, cap_word_pieces, pad_batch


class TextClassifierClient(EntityClient):
    outputs = CLASSIFIER_OUTPUTS

    def answers(self, texts: list[str]) -> list[dict]:
        return [{"label": self.labels[int(p.argmax())], "score": round(float(p.max()), 4),
                 "scores": {name: round(float(value), 4) for name, value in zip(self.labels, p)}}
                for p in self.probabilities(texts)]

    def _request(self, windows: list[Window]) -> dict[str, np.ndarray]:
        inputs = pad_batch(windows)
        del inputs["labeled_positions"]  # the classifier reads [CLS]
        return inputs

    def predict(self, texts: list[str]) -> list[str]:
        return [answer["label"] for answer in self.answers(texts)]

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """[texts, labels]: the mean of each text's windows' probabilities."""
        cls_id, sep_id = self.tokenizer.id_of(CLS), self.tokenizer.id_of(SEP)
        owners, rows = [], []
        for index, text in enumerate(texts):
            encoding = cap_word_pieces(self.tokenizer.encode(text), self.max_seq_length - 2)
            for window in windows(encoding, self.max_seq_length - 2):
                owners.append(index)
                rows.append(Window([cls_id] + window_token_ids(encoding, window) + [sep_id], [], [], 0))
        window_probabilities = np.zeros([len(rows), len(self.labels)], np.float32)
        for batch, (_, probabilities) in self._answered_requests(rows):
            window_probabilities[batch] = probabilities
        owners = np.asarray(owners)
        return np.stack([window_probabilities[owners == index].mean(0) for index in range(len(texts))])
