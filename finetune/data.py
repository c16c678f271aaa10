"""What fine-tuning reads from an `electra-ja ner-data` directory (NerData: its description, labels, tokenizer copy,
the TFRecords as batches, and the sentences evaluation maps predictions onto) or a `cls-data` one (ClsData).

Example:
    data = NerData.load("build/demo/ner")
    batches = data.dataset("train", batch_size=32, training=True, seed=1)   # (features, labels) pairs
"""

from dataclasses import dataclass, field

import tensorflow as tf

from data_prep import storage
from data_prep.config import ModelConfig
from data_prep.errors import InputError
from data_prep.cls_data import FEATURES as CLS_FEATURES
from data_prep.cls_data import TASK as CLASSIFICATION
from data_prep.cls_data import read_texts
from data_prep.ner_data import FEATURES, LabeledSentence, read_labeled_sentences
from finetune.model import INPUTS


@dataclass(frozen=True)
class NerData:
    directory: str
    description: dict
    labels: list[str]
    # Evaluation batches by (split, batch size, fixed length), built once: dev is scored after every epoch, and
    # building a pipeline (tracing its parse and padding functions) took longer than scoring a small dev split.
    _evaluation_batches: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    command, task = "ner-data", None  # what writes such a dir, and its dataset.json "task" (class attributes)

    @classmethod
    def load(cls, directory: str) -> "NerData":
        path = storage.join(directory, "dataset.json")
        description = storage.read_json(path, "--data")
        missing = [key for key in ("max_seq_length", "vocab_sha256", "splits") if key not in description]
        if missing:
            raise InputError(f"--data {path}: lacks {', '.join(missing)} (not written by `electra-ja {cls.command}`?)")
        if description.get("task") != cls.task:
            raise InputError(f"--data {path}: not written by `electra-ja {cls.command}`")
        return cls(directory, description, read_labels(storage.join(directory, "labels.json"), "--data"))

    @property
    def tokenizer_dir(self) -> str:
        return storage.join(self.directory, "tokenizer")

    @property
    def max_seq_length(self) -> int:
        return self.description["max_seq_length"]

    def examples(self, split: str, max_examples: int = 0) -> int:
        """How many examples a split has, or how many of them a budget of `max_examples` (0 = all) keeps."""
        count = self.description["splits"][split]["examples"]
        return min(count, max_examples) if max_examples else count

    def split_file(self, split: str, extension: str) -> str:
        return storage.join(self.directory, f"{split}.{extension}")

    def sentences(self, split: str) -> list[LabeledSentence]:
        return read_labeled_sentences(self.split_file(split, "jsonl"))

    def check_fits(self, model_where: str, model: ModelConfig, vocab_hash: str | None = None,
                   labels: list[str] | None = None) -> None:
        """Raises InputError unless the model `model_where` names can read these examples: their labels (for a
        model with a classifier), their vocabulary (for a model with a tokenizer of its own) and their length."""
        if labels is not None and labels != self.labels:
            raise InputError(f"--data {self.directory}: its labels.json differs from {model_where}'s "
                             f"({len(self.labels)} vs {len(labels)} labels)")
        if vocab_hash is not None and vocab_hash != self.description["vocab_sha256"]:
            raise InputError(f"--data {self.directory}: built with another vocabulary than {model_where}'s "
                             "tokenizer/ (rebuild ner-data with that tokenizer)")
        if self.max_seq_length > model.max_position_embeddings:
            raise InputError(f"--data {self.directory}: built with max_seq_length {self.max_seq_length}, but "
                             f"{model_where} has only {model.max_position_embeddings} positions")

    def dataset(self, split: str, batch_size: int, training: bool = False, seed: int = 0,
                fixed_length: bool = False, max_examples: int = 0) -> tf.data.Dataset:
        """(features, labels) batches (see `batches`); evaluation batches are built once per data dir and shape."""
        if training:
            return self._batches(split, batch_size, True, seed, fixed_length, max_examples)
        key = (split, batch_size, fixed_length)
        if key not in self._evaluation_batches:
            self._evaluation_batches[key] = self._batches(split, batch_size, False, seed, fixed_length, max_examples)
        return self._evaluation_batches[key]

    def _batches(self, split: str, batch_size: int, training: bool, seed: int, fixed_length: bool,
                 max_examples: int) -> tf.data.Dataset:
        """Labels are -1 past each window's words."""
        length = self.max_seq_length
        spec = {name: tf.io.FixedLenFeature([length], tf.int64) for name in FEATURES}

        def parse(record):
            example = {k: tf.cast(v, tf.int32) for k, v in tf.io.parse_single_example(record, spec).items()}
            labels = tf.where(example["labels_mask"] > 0, example["labels"], -1)
            if not fixed_length:  # words never outnumber tokens, so one length cuts every feature
                used = tf.reduce_sum(example["input_mask"])
                example, labels = {k: v[:used] for k, v in example.items()}, labels[:used]
            return {name: example[name] for name in INPUTS}, labels

        return batches(self, split, parse, batch_size, training, seed, fixed_length, label_padding=-1,
                       max_examples=max_examples)


@dataclass(frozen=True)
class ClsData(NerData):
    """What fine-tuning reads from an `electra-ja cls-data` directory; the same layout as NerData's, one label per
    window, and the texts (label, window count) evaluation averages windows over."""

    command, task = "cls-data", CLASSIFICATION

    def texts(self, split: str) -> list[dict]:
        return read_texts(self.split_file(split, "jsonl"))

    def _batches(self, split: str, batch_size: int, training: bool, seed: int, fixed_length: bool,
                 max_examples: int) -> tf.data.Dataset:
        """A label per window."""
        length = self.max_seq_length
        spec = {name: tf.io.FixedLenFeature([length], tf.int64) for name in CLS_FEATURES}
        spec["label_ids"] = tf.io.FixedLenFeature([1], tf.int64)

        def parse(record):
            example = {k: tf.cast(v, tf.int32) for k, v in tf.io.parse_single_example(record, spec).items()}
            used = length if fixed_length else tf.reduce_sum(example["input_mask"])
            return {name: example[name][:used] for name in CLS_FEATURES}, example["label_ids"][0]

        return batches(self, split, parse, batch_size, training, seed, fixed_length, label_padding=None,
                       max_examples=max_examples)


def batches(data: NerData, split: str, parse, batch_size: int, training: bool, seed: int, fixed_length: bool,
            label_padding: int | None, max_examples: int = 0) -> tf.data.Dataset:
    """Batches of a split's TFRecord parsed by `parse` into (features, labels): `label_padding` pads labels that
    run along the sequence; None means one label per example.

    Training batches are shuffled, repeat without end and are all full; with `max_examples` they are drawn from that
    many of the split's examples, drawn at random. Evaluation batches keep every example in file order. Each batch is as
    long as its longest window rounded up to a multiple of BUCKET_WIDTH (a few shapes, so a step computes little
    padding and XLA compiles a few programs), and training draws each batch from windows of similar length.
    `fixed_length` pads every batch to max_seq_length: the one shape TPUs want.
    """
    length = data.max_seq_length
    dataset = tf.data.TFRecordDataset(data.split_file(split, "tfrecord"))
    if training:
        count = data.examples(split, max_examples)
        if count < data.examples(split):  # the same subset on every pass: reshuffling happens below
            dataset = dataset.shuffle(data.examples(split), seed=SUBSET_SEED, reshuffle_each_iteration=False)
            dataset = dataset.take(count)
        dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    names = next(iter(dataset.element_spec[0]))  # any feature: all are as long as the window
    padding = ({name: 0 for name in dataset.element_spec[0]}, label_padding if label_padding is not None else 0)
    if fixed_length:
        result = dataset.batch(batch_size, drop_remainder=training)
    elif training:
        boundaries = sorted({*range(BUCKET_WIDTH + 1, length + 1, BUCKET_WIDTH), length + 1})
        result = dataset.bucket_by_sequence_length(
            lambda features, _: tf.shape(features[names])[0], boundaries, [batch_size] * (len(boundaries) + 1),
            padding_values=padding, pad_to_bucket_boundary=True, drop_remainder=True)
    else:
        result = dataset.padded_batch(batch_size, padding_values=padding).map(
            lambda features, labels: _pad_to_bucket_width(features, labels, label_padding))
    return result.prefetch(tf.data.AUTOTUNE)


# The subset `max_examples` keeps is drawn with this seed, not the trial's: every trial and every initialisation
# trained at one labelled-data budget sees the same examples, so their scores differ by what they start from.
SUBSET_SEED = 20261204


# Windows are padded to a multiple of this many positions: few shapes, little padding.
BUCKET_WIDTH = 16


def _pad_to_bucket_width(features, labels, label_padding: int | None):
    width = tf.shape(next(iter(features.values())))[1]
    extra = (BUCKET_WIDTH - width % BUCKET_WIDTH) % BUCKET_WIDTH
    features = {k: tf.pad(v, [[0, 0], [0, extra]]) for k, v in features.items()}
    if label_padding is not None:
        labels = tf.pad(labels, [[0, 0], [0, extra]], constant_values=label_padding)
    return features, labels


def read_labels(path: str, flag: str) -> list[str]:
    """The label names of a labels.json (ner-data's, cls-data's or a fine-tuned dir's), in label-id order."""
    labels = storage.read_json(path, flag)
    if not isinstance(labels, dict):
        raise InputError(f'{flag} {path}: expected {{"scheme": "BIO", "labels": [...]}} or {{"task": '
                         f'"{CLASSIFICATION}", "labels": [...]}}')
    if labels.get("scheme") != "BIO" and labels.get("task") != CLASSIFICATION:
        raise InputError(f"{flag} {path}: scheme {labels.get('scheme')!r}, expected BIO (or task "
                         f"{CLASSIFICATION!r})")
    names = labels.get("labels")
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise InputError(f'{flag} {path}: expected "labels": a non-empty list of label names')
    return names
