"""Pretraining TFRecords (`electra-ja pretraining-data`) with google-research/electra's example semantics.

`ExampleBuilder` packs consecutive sentences of one document up to a target length and cuts them into
[CLS] A [SEP] B [SEP] (one segment 10% of the time; a random target length 5% of the time), exactly as
electra's build_pretraining_dataset.py, so its data and ours are interchangeable. Shards are written by N
worker processes, each to a temporary name renamed on completion; a rerun skips finished shards. Document
d of corpus file j goes to shard (j + d * num_files) % num_shards and every shard has its own seed, so the
output does not depend on the number of processes or on interruptions.

Example:
    stats = build_pretraining_data(["build/demo/corpus"], "build/demo/tokenizer", "build/demo/pretrain_data",
                                   PretrainingDataConfig(max_seq_length=128, num_shards=4, num_processes=2))
"""

import functools
import math
import multiprocessing
import random
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import tensorflow as tf
from tensorflow.io import gfile
from tqdm import tqdm

from data_prep import storage
from data_prep.config import PretrainingDataConfig
from data_prep.corpus import read_documents
from data_prep.errors import InputError
from data_prep.records import int64_feature_spec, write_tfrecord
from data_prep.tokenizer import CLS, SEP, JapaneseTokenizer

SHARD_PATTERN = "pretrain_data-{index:05d}-of-{count:05d}.tfrecord"
FEATURES = ("input_ids", "input_mask", "segment_ids")
SINGLE_SEGMENT_PROB = 0.1
RANDOM_LENGTH_PROB = 0.05


@dataclass(frozen=True)
class PretrainingExample:
    input_ids: list[int]
    input_mask: tuple[int, ...]
    segment_ids: tuple[int, ...]

    def features(self) -> dict[str, Sequence[int]]:
        return {name: getattr(self, name) for name in FEATURES}


class ExampleBuilder:
    """Packs one document's tokenized sentences into fixed-length examples (electra's ExampleBuilder).

    Example:
        builder = ExampleBuilder(cls_id=2, sep_id=3, max_length=16, rng=random.Random(0))
        examples = [e for ids in sentences_ids if (e := builder.add_sentence(ids))]
        if (last := builder.end_document()): examples.append(last)
    """

    def __init__(self, cls_id: int, sep_id: int, max_length: int, rng: random.Random):
        self._cls_id, self._sep_id = cls_id, sep_id
        self._max_length = max_length
        self._rng = rng
        self._sentences: list[list[int]] = []
        self._length = 0
        self._target_length = max_length

    def add_sentence(self, token_ids: list[int]) -> PretrainingExample | None:
        self._sentences.append(token_ids)
        self._length += len(token_ids)
        return self._create_example() if self._length >= self._target_length else None

    def end_document(self) -> PretrainingExample | None:
        return self._create_example() if self._length else None

    def _create_example(self) -> PretrainingExample:
        # A small chance of one segment only, as in classification tasks; -3 leaves room for [CLS] and [SEP]s.
        if self._rng.random() < SINGLE_SEGMENT_PROB:
            first_target = math.inf
        else:
            first_target = (self._target_length - 3) // 2
        first, second = [], []
        for sentence in self._sentences:
            # First segment if it is empty, if the sentence fits, or (50%) when it overflows with B still empty.
            if (not first or len(first) + len(sentence) < first_target
                    or (not second and len(first) < first_target and self._rng.random() < 0.5)):
                first += sentence
            else:
                second += sentence
        first = first[:self._max_length - 2]
        second = second[:max(0, self._max_length - len(first) - 3)]
        self._sentences, self._length = [], 0
        if self._rng.random() < RANDOM_LENGTH_PROB:
            self._target_length = self._rng.randint(5, self._max_length)
        else:
            self._target_length = self._max_length
        return self._make_example(first, second)

    def _make_example(self, first: list[int], second: list[int]) -> PretrainingExample:
        first_length = len(first) + 2
        length = first_length + len(second) + 1 if second else first_length
        padding = [0] * (self._max_length - length)
        if second:
            input_ids = [self._cls_id, *first, self._sep_id, *second, self._sep_id, *padding]
        else:
            input_ids = [self._cls_id, *first, self._sep_id, *padding]
        return PretrainingExample(input_ids, _input_mask(length, self._max_length),
                                  _segment_ids(first_length, length, self._max_length))


# Masks and segment ids depend on two or three lengths only: every full example has the same mask. Shared
# tuples are built once, and write_tfrecord does not refill a tuple the previous example also had.
@functools.lru_cache(maxsize=None)
def _input_mask(length: int, max_length: int) -> tuple[int, ...]:
    return (1,) * length + (0,) * (max_length - length)


@functools.lru_cache(maxsize=4096)  # up to max_length² / 2 pairs otherwise: 0.5 GB of tuples at 512
def _segment_ids(first_length: int, length: int, max_length: int) -> tuple[int, ...]:
    return (0,) * first_length + (1,) * (length - first_length) + (0,) * (max_length - length)


def pack_documents(documents: Iterator[list[str]], encode: Callable[[list[str]], list[list[int]]],
                   builder: ExampleBuilder) -> Iterator[PretrainingExample]:
    """Tokenizes each document's sentences with `encode` and yields the packed examples."""
    for sentences in documents:
        for token_ids in encode(sentences):
            if (example := builder.add_sentence(token_ids)) is not None:
                yield example
        if (example := builder.end_document()) is not None:
            yield example


def build_pretraining_data(corpus: list[str], tokenizer_dir: str, out_dir: str,
                           config: PretrainingDataConfig) -> dict:
    """Writes every unfinished shard, then `dataset.json`; returns the dataset description."""
    files = storage.expand_inputs(corpus, "--corpus")
    if next(read_documents(files), None) is None:
        raise InputError(f"--corpus {' '.join(corpus)}: no sentences to build examples from")
    tokenizer = JapaneseTokenizer.load(tokenizer_dir)
    run = {
        "max_seq_length": config.max_seq_length,
        "vocab_size": tokenizer.vocab_size,
        "vocab_sha256": tokenizer.vocab_hash(),
        "num_shards": config.num_shards,
        "seed": config.seed,
        "corpus": files,
        "corpus_bytes": [gfile.stat(f).length for f in files],  # a changed corpus must not resume old shards
    }
    storage.make_output_dir(out_dir, "--out")
    description_path = storage.join(out_dir, "dataset.json")
    _check_resumable(description_path, run)
    storage.write_json(description_path, {**run, "complete": False})
    tokenizer.save(storage.join(out_dir, "tokenizer"))  # the data describes itself: pretrain reads ids from it
    storage.remove_stale_temps(out_dir)
    paths = [storage.join(out_dir, SHARD_PATTERN.format(index=i, count=config.num_shards))
             for i in range(config.num_shards)]
    # Shards an interrupted run finished are only counted; the others are written and report their counts.
    counts = {i: _count_examples(p) for i, p in enumerate(paths) if gfile.exists(p)}
    if counts:
        print(f"pretraining-data: {len(counts)} of {len(paths)} shards already complete, skipping them")
    todo = [_ShardTask(i, p, files, tokenizer_dir, config) for i, p in enumerate(paths) if i not in counts]
    for index, count in tqdm(_run(todo, config.num_processes), total=len(todo), desc="pretraining-data", unit="shard"):
        counts[index] = count
    counts = [counts[i] for i in range(len(paths))]
    if sum(counts) == 0:
        raise InputError(f"--corpus {' '.join(corpus)}: no sentences to build examples from")
    description = {
        **run,
        "complete": True,
        "examples": sum(counts),
        "features": int64_feature_spec(FEATURES, config.max_seq_length),
        "shards": [{"path": p.rsplit("/", 1)[-1], "examples": n} for p, n in zip(paths, counts)],
    }
    storage.write_json(description_path, description)
    return description


def _check_resumable(description_path: str, run: dict) -> None:
    """A rerun may only finish what an identical run started: mixed vocabularies would be silent garbage."""
    if not gfile.exists(description_path):
        return
    previous = storage.read_json(description_path)
    changed = [key for key in ("vocab_sha256", "max_seq_length", "num_shards", "seed", "corpus", "corpus_bytes")
               if previous.get(key) != run[key]]
    if changed:
        raise InputError(f"--out {description_path.rsplit('/', 1)[0]}: holds shards of a run with another "
                         f"{', '.join(changed)} (tokenizer, corpus or settings differ); use a new --out or delete it")


@dataclass(frozen=True)
class _ShardTask:
    index: int
    path: str
    files: list[str]
    tokenizer_dir: str
    config: PretrainingDataConfig


def _count_examples(path: str) -> int:
    return sum(1 for _ in tf.data.TFRecordDataset(path))


def _run(tasks: list[_ShardTask], num_processes: int) -> Iterator[tuple[int, int]]:
    if num_processes <= 1 or len(tasks) <= 1:
        yield from map(_write_shard, tasks)
        return
    # spawn, not fork: the parent has TensorFlow's thread pools running.
    with multiprocessing.get_context("spawn").Pool(min(num_processes, len(tasks))) as pool:
        yield from pool.imap_unordered(_write_shard, tasks)


_TOKENIZERS: dict[str, JapaneseTokenizer] = {}


def _write_shard(task: _ShardTask) -> tuple[int, int]:
    """Writes one shard; returns its index and number of examples."""
    if task.tokenizer_dir not in _TOKENIZERS:
        _TOKENIZERS[task.tokenizer_dir] = JapaneseTokenizer.load(task.tokenizer_dir)
    tokenizer = _TOKENIZERS[task.tokenizer_dir]
    builder = ExampleBuilder(tokenizer.id_of(CLS), tokenizer.id_of(SEP), task.config.max_seq_length,
                             random.Random(task.config.seed + task.index))
    documents = _shard_documents(task.files, task.index, task.config.num_shards)
    examples = pack_documents(documents, tokenizer.encode_ids, builder)
    return task.index, write_tfrecord(task.path, (e.features() for e in examples))


def _shard_documents(files: list[str], shard: int, num_shards: int) -> Iterator[list[str]]:
    num_files = len(files)
    step = math.gcd(num_files, num_shards)
    for j in range(shard % step, num_files, step):
        for d, document in enumerate(read_documents([files[j]])):
            if (j + d * num_files) % num_shards == shard:
                yield document
