"""pretraining-data throughput: our encoder vs the seed's BertJapaneseTokenizer path vs raw MeCab.

All three tokenize the same sentences; the two full paths pack them with the same ExampleBuilder (same seed)
and write the same TFRecords, which this script checks byte for byte. Per-core figures divide by the process's
CPU time, so threads cannot flatter them. A second measurement runs `build_pretraining_data` with 1 and 2
processes on a larger copy of the corpus (wall clock, process start-up included).

    python benchmarks/data_prep.py --out docs/benchmarks.md
"""

import argparse
import atexit
import pathlib
import random
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.report import machine, write_section  # noqa: E402
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads

from transformers import AutoTokenizer  # noqa: E402

from data_prep.config import CorpusConfig, PretrainingDataConfig, VocabConfig  # noqa: E402
from data_prep.corpus import documents_from_source, read_documents, write_corpus  # noqa: E402
from data_prep.pretraining_data import ExampleBuilder, build_pretraining_data, pack_documents  # noqa: E402
from data_prep.records import write_tfrecord  # noqa: E402
from data_prep.storage import expand_inputs  # noqa: E402
from data_prep.tokenizer import CLS, SEP, JapaneseTokenizer  # noqa: E402
from data_prep.vocab import train_vocab  # noqa: E402
from data_prep.words import MecabWordSplitter  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SOURCES = [REPO / "data/corpus/wagahaiwa_nekodearu.txt", REPO / "data/ud_japanese_gsd_ne/r2.8-NE/text/train.txt"]
MAX_SEQ_LENGTH = 128


def cpu_seconds_per_round(paths: dict, rounds: int) -> tuple[dict, dict]:
    """Per path: (last result, CPU seconds of this process, all threads, in each of `rounds` interleaved rounds).

    Interleaving matters on a shared machine: a slow spell then hits every path instead of whichever happened
    to run during it."""
    results, seconds = {}, {name: [] for name in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            start = time.process_time()
            results[name] = fn()
            seconds[name].append(time.process_time() - start)
    return results, seconds


def pack_to_tfrecord(documents, encode, path):
    builder = ExampleBuilder(2, 3, MAX_SEQ_LENGTH, random.Random(0))
    write_tfrecord(path, (e.features() for e in pack_documents(iter(documents), encode, builder)))
    return pathlib.Path(path).read_bytes()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/benchmarks.md")
    parser.add_argument("--copies", type=int, default=150, help="corpus copies for the 1-vs-2-process run")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds; each path's fastest counts")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench_data_prep_"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)

    write_corpus(documents_from_source([str(p) for p in SOURCES]), str(work / "corpus"),
                 CorpusConfig(num_shards=2, max_document_sentences=200))
    corpus_files = expand_inputs([str(work / "corpus")], "--corpus")
    train_vocab(corpus_files, VocabConfig(vocab_size=32000, limit_alphabet=6000), str(work / "tokenizer"))
    ours = JapaneseTokenizer.load(str(work / "tokenizer"))
    seed = AutoTokenizer.from_pretrained(str(work / "tokenizer"))
    assert ours.id_of(CLS) == 2 and ours.id_of(SEP) == 3
    documents = list(read_documents(corpus_files))
    sentences = [s.rstrip("\n") for d in documents for s in d]
    documents = [[s.rstrip("\n") for s in d] for d in documents]
    wakati = MecabWordSplitter()._tagger

    def seed_encode(batch):
        return [seed.convert_tokens_to_ids(seed.tokenize(s)) for s in batch]

    ours.encode_ids(sentences)  # the warm row's tokenizer has seen every word before its first timed round
    # Cold: a fresh tokenizer (no words seen yet) per run, loaded outside the timer like the seed's.
    fresh = [JapaneseTokenizer.load(str(work / "tokenizer")) for _ in range(args.rounds)]
    outputs, per_round = cpu_seconds_per_round({
        "seed": lambda: pack_to_tfrecord(documents, seed_encode, str(work / "seed.tfrecord")),
        "ours": lambda: pack_to_tfrecord(documents, fresh.pop().encode_ids, str(work / "ours.tfrecord")),
        # Warm: the steady state of a long shard, where nearly every word has been seen before.
        "warm": lambda: pack_to_tfrecord(documents, ours.encode_ids, str(work / "warm.tfrecord")),
        "mecab": lambda: [wakati.parse(s) for s in sentences],
    }, args.rounds)
    assert outputs["seed"] == outputs["ours"], "the two paths must write identical TFRecords"

    big = work / "big_corpus"
    big.mkdir()
    for copy in range(args.copies):
        for f in corpus_files:
            (big / f"{copy:03d}-{pathlib.Path(f).name}").write_text(pathlib.Path(f).read_text(encoding="utf-8"))
    walls = {}
    for processes in (1, 2):
        start = time.time()
        build_pretraining_data([str(big)], str(work / "tokenizer"), str(work / f"out{processes}"),
                               PretrainingDataConfig(max_seq_length=MAX_SEQ_LENGTH, num_shards=8,
                                                     num_processes=processes))
        walls[processes] = time.time() - start
    big_sentences = len(sentences) * args.copies

    n = len(sentences)
    oov = [w for s in sentences for w in ours.splitter.split(s) if w not in ours.token_to_id]
    rate = {name: n / min(seconds) for name, seconds in per_round.items()}
    same_round = sorted(seed / ours for seed, ours in zip(per_round["seed"], per_round["ours"]))
    body = f"""## data_prep: `pretraining-data` throughput

Command: `python benchmarks/data_prep.py --out docs/benchmarks.md` (`make bench`). Machine: {machine()}.
Input: the shipped corpus (吾輩は猫である + GSD train text) after `corpus`, {n:,} sentences, {len(documents)} documents,
a 32k-target WordPiece vocabulary ({ours.vocab_size:,} pieces) trained on it, max_seq_length {MAX_SEQ_LENGTH}.
Per-core rates are sentences per CPU-second of the process, each path's fastest of {args.rounds} rounds that run
the four paths in turn. The seed path and ours wrote byte-identical TFRecords ({len(outputs["ours"]):,} bytes).
Slow spells of this shared machine do not hit the paths alike: MeCab and the dictionary lookups wait on memory,
which neighbours slow down more than the seed's pure-Python work. Within single rounds, ours was
{same_round[0]:.2f}–{same_round[-1]:.2f}× the seed path (median {statistics.median(same_round):.2f}×); the fastest rounds
stand for a machine of one's own.

| path | what it does per sentence | sentences / CPU-s | vs seed path | vs raw MeCab |
|---|---|---:|---:|---:|
| seed | `BertJapaneseTokenizer.tokenize` + `convert_tokens_to_ids`, ExampleBuilder, TFRecord | {rate['seed']:,.0f} | 1.00× | {rate['seed'] / rate['mecab']:.0%} |
| ours, cold cache | `JapaneseTokenizer.encode_ids` (NFKC, MeCab wakati, WordPiece once per distinct out-of-vocabulary word), same packing and writing | {rate['ours']:,.0f} | **{rate['ours'] / rate['seed']:.2f}×** | **{rate['ours'] / rate['mecab']:.0%}** |
| ours, warm cache | the same, every word already seen (an upper bound, see below) | {rate['warm']:,.0f} | {rate['warm'] / rate['seed']:.2f}× | {rate['warm'] / rate['mecab']:.0%} |
| raw MeCab | `fugashi` wakati parse only (no NFKC, no WordPiece, no packing) | {rate['mecab']:,.0f} | {rate['mecab'] / rate['seed']:.2f}× | 100% |

Goal: ≥ 4× the seed path and ≥ 40% of raw MeCab. MeCab itself bounds both paths: no tokenizer that runs MeCab
per sentence can exceed the raw MeCab row, which is {rate['mecab'] / rate['seed']:.1f}× the seed path here.
Only words that are not vocabulary entries need WordPiece: {len(oov) / n:.2f} per sentence here, {len(set(oov)):,} distinct
among {len(oov):,}, because a word frequent enough to matter became a vocabulary entry when the vocabulary was trained
on this corpus. So the cold row is what `pretraining-data` meets here; the warm row, where even these were seen
before, is an upper bound.

`build_pretraining_data` on {args.copies} copies of that corpus ({big_sentences:,} sentences, 8 shards), wall clock
including process start-up (spawned workers import TensorFlow):

| processes | seconds | sentences / s | speed-up |
|---:|---:|---:|---:|
| 1 | {walls[1]:.1f} | {big_sentences / walls[1]:,.0f} | 1.00× |
| 2 | {walls[2]:.1f} | {big_sentences / walls[2]:,.0f} | {walls[1] / walls[2]:.2f}× |
"""
    write_section(args.out, "data_prep", body)
    print(body)


if __name__ == "__main__":
    main()
