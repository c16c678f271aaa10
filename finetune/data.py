"""What fine-tuning reads from an `electra-ja ner-data` directory: its description, labels, tokenizer copy,
the TFRecords as batches, and the sentences (text, gold spans, words, windows) evaluation maps predictions onto.

Example:
    data = NerData.load("build/demo/ner")
    batches = data.dataset("train", batch_size=32, training=True, seed=1)   # (features, labels) pairs
"""

from dataclasses import dataclass

import tensorflow as tf

from data_prep import storage
from data_prep.errors import InputError
from data_prep.ner_data import FEATURES, LabeledSentence, read_labeled_sentences
from finetune.model import INPUTS


@dataclass(frozen=True)
class NerData:
    directory: str
    description: dict
    labels: list[str]

    @classmethod
    def load(cls, directory: str) -> "NerData":
        description = storage.read_json(storage.join(directory, "dataset.json"), "--data")
        labels = storage.read_json(storage.join(directory, "labels.json"), "--data")
        if labels.get("scheme") != "BIO":
            raise InputError(f"--data {directory}/labels.json: scheme {labels.get('scheme')!r}, expected BIO")
        return cls(directory, description, labels["labels"])

    @property
    def tokenizer_dir(self) -> str:
        return storage.join(self.directory, "tokenizer")

    @property
    def max_seq_length(self) -> int:
        return self.description["max_seq_length"]

    def examples(self, split: str) -> int:
        return self.description["splits"][split]["examples"]

    def sentences(self, split: str) -> list[LabeledSentence]:
        return read_labeled_sentences(storage.join(self.directory, f"{split}.jsonl"))

    def dataset(self, split: str, batch_size: int, training: bool = False, seed: int = 0) -> tf.data.Dataset:
        """(features, labels) batches; labels are -1 past each window's words. Training batches are shuffled
        and of one fixed shape (drop_remainder), evaluation batches keep every example in file order."""
        length = self.max_seq_length
        spec = {name: tf.io.FixedLenFeature([length], tf.int64) for name in FEATURES}

        def parse(record):
            example = {k: tf.cast(v, tf.int32) for k, v in tf.io.parse_single_example(record, spec).items()}
            labels = tf.where(example["labels_mask"] > 0, example["labels"], -1)
            return {name: example[name] for name in INPUTS}, labels

        dataset = tf.data.TFRecordDataset(storage.join(self.directory, f"{split}.tfrecord"))
        if training:
            dataset = dataset.shuffle(self.examples(split), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
