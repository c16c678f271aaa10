import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from data_prep.config import CorpusConfig, PretrainingDataConfig
from data_prep.corpus import documents_from_source, write_corpus
from data_prep.errors import InputError
from data_prep.pretraining_data import ExampleBuilder, build_pretraining_data, pack_documents
from tests.conftest import GSD_DIR, NOVEL, REPO

CLS, SEP = 2, 3


def fake_encode(sentences):
    return [[10 + len(s)] * len(s) for s in sentences]


def test_examples_have_electra_layout():
    rng = random.Random(0)
    documents = [[("あ" * rng.randint(1, 30)) for _ in range(rng.randint(1, 40))] for _ in range(200)]
    examples = list(pack_documents(iter(documents), fake_encode, ExampleBuilder(CLS, SEP, 32, random.Random(1))))
    assert len(examples) > 100
    single = 0
    for e in examples:
        length = sum(e.input_mask)
        assert len(e.input_ids) == len(e.input_mask) == len(e.segment_ids) == 32
        assert list(e.input_mask) == [1] * length + [0] * (32 - length)
        assert e.input_ids[0] == CLS and e.input_ids[length - 1] == SEP
        assert set(e.input_ids[length:]) <= {0} and set(e.segment_ids[length:]) <= {0}
        segment_b = e.segment_ids[:length].count(1)
        assert list(e.segment_ids[:length]) == [0] * (length - segment_b) + [1] * segment_b
        separators = [i for i in range(length) if e.input_ids[i] == SEP]
        assert separators == ([length - segment_b - 1, length - 1] if segment_b else [length - 1])
        single += segment_b == 0
    # 10% are forced to one segment; documents that end early add more.
    assert 0.1 <= single / len(examples) < 0.6


def test_document_ends_flush_and_nothing_is_lost_when_it_fits():
    builder = ExampleBuilder(CLS, SEP, 64, random.Random(0))
    examples = list(pack_documents(iter([["あい", "うえお"], ["か"]]), fake_encode, builder))
    bodies = [[t for t in e.input_ids if t not in (CLS, SEP, 0)] for e in examples]
    assert bodies == [[12, 12, 13, 13, 13], [11]]  # one example per document, every token kept


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    write_corpus(documents_from_source([str(NOVEL), str(GSD_DIR / "text" / "train.txt")]), str(out),
                 CorpusConfig(min_sentence_chars=5, max_document_sentences=200, num_shards=2))
    return str(out)


def shard_bytes(directory):
    return {name: open(os.path.join(directory, name), "rb").read()
            for name in sorted(os.listdir(directory)) if name.endswith(".tfrecord")}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, corpus_dir, tokenizer_dir):
    out = str(tmp_path_factory.mktemp("pretrain_data"))
    config = PretrainingDataConfig(max_seq_length=64, num_shards=8, num_processes=1)
    return out, build_pretraining_data([corpus_dir], tokenizer_dir, out, config)


def test_tfrecords_read_back_with_design_shapes(reference_run):
    out, description = reference_run
    assert description["complete"] and description["examples"] > 1000
    spec = {name: tf.io.FixedLenFeature([64], tf.int64) for name in ("input_ids", "input_mask", "segment_ids")}
    files = tf.io.gfile.glob(os.path.join(out, "*.tfrecord"))
    dataset = tf.data.TFRecordDataset(files).map(lambda r: tf.io.parse_single_example(r, spec)).batch(8)
    batch = next(iter(dataset))
    assert {k: (v.shape.as_list(), v.dtype) for k, v in batch.items()} == \
        {k: ([8, 64], tf.int64) for k in spec}
    assert sum(1 for _ in tf.data.TFRecordDataset(files)) == description["examples"]
    for shard in description["shards"]:
        assert sum(1 for _ in tf.data.TFRecordDataset(os.path.join(out, shard["path"]))) == shard["examples"]
    on_disk = json.load(open(os.path.join(out, "dataset.json")))
    assert on_disk["vocab_size"] == 4000 and len(on_disk["shards"]) == 8


def test_two_processes_write_the_same_bytes(reference_run, corpus_dir, tokenizer_dir, tmp_path):
    config = PretrainingDataConfig(max_seq_length=64, num_shards=8, num_processes=2)
    build_pretraining_data([corpus_dir], tokenizer_dir, str(tmp_path), config)
    assert shard_bytes(str(tmp_path)) == shard_bytes(reference_run[0])


def test_killed_run_resumes_without_partial_or_duplicate_shards(reference_run, corpus_dir, tokenizer_dir, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "data_prep", "pretraining-data", "--corpus", corpus_dir, "--tokenizer",
               tokenizer_dir, "--out", str(out), "--max-seq-length", "64", "--num-shards", "8",
               "--num-processes", "1"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("*.tfrecord")) and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_at_kill = len(list(out.glob("*.tfrecord")))
    assert 1 <= finished_at_kill < 8, "the kill must land mid-way"
    assert not json.load(open(out / "dataset.json"))["complete"]

    rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{finished_at_kill} of 8 shards already complete" in rerun.stdout
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    assert shard_bytes(str(out)) == shard_bytes(reference_run[0])
    resumed = json.load(open(out / "dataset.json"))
    assert resumed["complete"] and resumed["shards"] == reference_run[1]["shards"]


def test_rerun_with_another_vocabulary_is_refused(reference_run, corpus_dir, tmp_path, tokenizer):
    other = tmp_path / "other_tokenizer"
    type(tokenizer)(tokenizer.vocab[:-1]).save(str(other))
    with pytest.raises(InputError, match="another vocab_sha256"):
        build_pretraining_data([corpus_dir], str(other), reference_run[0],
                               PretrainingDataConfig(max_seq_length=64, num_shards=8))
