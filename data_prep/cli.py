"""data_prep's subcommands: corpus, vocab, pretraining-data, ner-data (see DESIGN.md's CLI contract).

Stage modules are imported inside each `run_*` so that `electra-ja --help` does not load TensorFlow.
A flag given on the command line wins over `--set`, which wins over `--config`.
"""

import argparse

from data_prep.console import Command
from data_prep.errors import InputError


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config (configs/debug.yaml, small.yaml, ...); default: built-in")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value, e.g. --set pretrain.learning_rate=1e-4 (repeatable)")


def load_config_with_flags(args: argparse.Namespace, section: str, flags: dict[str, str]):
    """The config tree with `--set` overrides and then the explicit `flags` (config key -> argparse dest)."""
    from data_prep.config import load_config

    given = {f"{section}.{key}": ("--" + dest.replace("_", "-"), getattr(args, dest)) for key, dest in flags.items()
             if getattr(args, dest) is not None}
    return load_config(args.config, args.set, given)


def _add_corpus_arguments(parser):
    parser.add_argument("--source", nargs="+", required=True, metavar="tfds:NAME[/CONFIG] | FILE",
                        help="tfds:wikipedia/20230601.ja, or text files/directories/globs (blank line = new document)")
    parser.add_argument("--out", required=True, help="output directory (local or gs://)")
    parser.add_argument("--text-field", default="text", help="tfds feature holding the article text")
    parser.add_argument("--split", default="train", help="tfds split")
    parser.add_argument("--tfds-data-dir", help="where tfds finds prepared data, e.g. gs://tfds-data/datasets")
    parser.add_argument("--num-shards", type=int)
    parser.add_argument("--min-sentence-chars", type=int)
    parser.add_argument("--max-sentence-chars", type=int)
    add_config_arguments(parser)


def _run_corpus(args):
    from data_prep.corpus import documents_from_source, write_corpus

    config = load_config_with_flags(args, "corpus", {"num_shards": "num_shards",
                                                     "min_sentence_chars": "min_sentence_chars",
                                                     "max_sentence_chars": "max_sentence_chars"})
    documents = documents_from_source(args.source, args.text_field, args.split, args.tfds_data_dir)
    stats = write_corpus(documents, args.out, config.corpus)
    print(f"corpus: {stats['documents']} documents, {stats['sentences']} sentences in {len(stats['shards'])} "
          f"shards under {args.out} (dropped: {stats.get('paragraphs_markup', 0)} markup paragraphs, "
          f"{stats.get('paragraphs_without_final_period', 0)} paragraphs not ending in 。, "
          f"{stats.get('sentences_out_of_length', 0)} sentences out of length)")


def _add_vocab_arguments(parser):
    parser.add_argument("--corpus", nargs="+", required=True, help="corpus directory or text files")
    parser.add_argument("--vocab-size", type=int)
    parser.add_argument("--out", required=True, help="tokenizer directory to write")
    add_config_arguments(parser)


def _run_vocab(args):
    from data_prep.storage import expand_inputs
    from data_prep.vocab import train_vocab

    config = load_config_with_flags(args, "vocab", {"vocab_size": "vocab_size"})
    tokenizer = train_vocab(expand_inputs(args.corpus, "--corpus"), config.vocab, args.out)
    print(f"vocab: {tokenizer.vocab_size} WordPieces in {args.out}/vocab.txt "
          f"(+ tokenizer_config.json for transformers.AutoTokenizer)")


def _add_pretraining_data_arguments(parser):
    parser.add_argument("--corpus", nargs="+", required=True, help="corpus directory or text files")
    parser.add_argument("--tokenizer", required=True, help="tokenizer directory (vocab.txt + tokenizer_config.json)")
    parser.add_argument("--max-seq-length", type=int)
    parser.add_argument("--num-processes", type=int)
    parser.add_argument("--num-shards", type=int)
    parser.add_argument("--out", required=True, help="output directory (local or gs://)")
    add_config_arguments(parser)


def _run_pretraining_data(args):
    from data_prep.pretraining_data import build_pretraining_data

    config = load_config_with_flags(args, "pretraining_data", {
        "max_seq_length": "max_seq_length", "num_processes": "num_processes", "num_shards": "num_shards"})
    stats = build_pretraining_data(args.corpus, args.tokenizer, args.out, config.pretraining_data)
    print(f"pretraining-data: {stats['examples']} examples of {stats['max_seq_length']} tokens in "
          f"{len(stats['shards'])} shards under {args.out} (dataset.json beside them)")


def _add_ner_data_arguments(parser):
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--gsd", help="UD_Japanese-GSD NE directory (*.ne.conllu or *.bio)")
    source.add_argument("--train", help="your training file: char-span .json/.jsonl, or CoNLL token/tag lines")
    parser.add_argument("--dev", help="dev file (same formats); if missing, cut from --train by --split")
    parser.add_argument("--test", help="test file (same formats); if missing, cut from --train by --split")
    add_split_arguments(parser)
    parser.add_argument("--tag-scheme", default="auto", choices=("auto", "iob2", "iob1", "bioes"),
                        help="tags of CoNLL files (bioes also reads BILOU); auto tells them apart or asks")
    parser.add_argument("--token-separator", default="",
                        help="joins a CoNLL file's tokens into the text: '' for Japanese, ' ' for spaced languages")
    parser.add_argument("--tokenizer", required=True, help="tokenizer directory")
    parser.add_argument("--max-seq-length", type=int)
    parser.add_argument("--out", required=True, help="output directory (local or gs://)")
    add_config_arguments(parser)


def _report_missing_from_train(where: str, kind: str, names: list[str]) -> None:
    if names:
        print(f"{where}: {kind} not in train (no model can learn them): {', '.join(names)}")


def add_split_arguments(parser):
    parser.add_argument("--split", default="80/10/10", metavar="TRAIN/DEV/TEST",
                        help="weights for cutting the splits not given as files from --train (default 80/10/10)")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of that cut (recorded in dataset.json)")


def user_split_paths(args) -> dict[str, str]:
    """--train/--dev/--test as given; --dev or --test without --train is an error."""
    if args.train is None and (args.dev or args.test):
        raise InputError("--dev/--test: give them with --train (GSD brings its own splits)")
    return {split: path for split, path in (("train", args.train), ("dev", args.dev), ("test", args.test)) if path}


def _run_ner_data(args):
    from data_prep.gsd import load_gsd
    from data_prep.ner_data import build_ner_data
    from data_prep.ner_formats import load_ner_files
    from data_prep.splits import parse_ratio

    config = load_config_with_flags(args, "ner_data", {"max_seq_length": "max_seq_length"})
    paths = user_split_paths(args)
    splits = load_gsd(args.gsd) if args.gsd else load_ner_files(paths, parse_ratio(args.split), args.split_seed,
                                                                 args.tag_scheme, args.token_separator)
    stats = build_ner_data(splits, args.tokenizer, args.out, config.ner_data)
    for split, s in stats.items():
        print(f"ner-data {split}: {s['sentences']} sentences -> {s['windows']} windows, {s['entities']} entities "
              f"({s['unaligned_entities']} not on MeCab word boundaries)")
        _report_missing_from_train(f"ner-data {split}", "types", s["types_not_in_train"])
    print(f"ner-data: TFRecords, labels.json, stats.json under {args.out}")


def _add_cls_data_arguments(parser):
    parser.add_argument("--train", required=True, help="labeled texts: TSV text<TAB>label, or .jsonl {text, label}")
    parser.add_argument("--dev", help="dev file (same formats); if missing, cut from --train by --split")
    parser.add_argument("--test", help="test file (same formats); if missing, cut from --train by --split")
    add_split_arguments(parser)
    parser.add_argument("--tokenizer", required=True, help="tokenizer directory")
    parser.add_argument("--max-seq-length", type=int, help="window length; longer texts become several windows")
    parser.add_argument("--out", required=True, help="output directory (local or gs://)")
    add_config_arguments(parser)


def _run_cls_data(args):
    from data_prep.cls_data import build_cls_data, load_cls_files
    from data_prep.splits import parse_ratio

    config = load_config_with_flags(args, "cls_data", {"max_seq_length": "max_seq_length"})
    splits = load_cls_files(user_split_paths(args), parse_ratio(args.split), args.split_seed)
    stats = build_cls_data(splits, args.tokenizer, args.out, config.cls_data)
    for split, s in stats.items():
        print(f"cls-data {split}: {s['texts']} texts -> {s['windows']} windows ({s['texts_split_into_windows']} "
              f"texts longer than one window), labels {s['texts_per_label']}")
        _report_missing_from_train(f"cls-data {split}", "labels", s["labels_not_in_train"])
    print(f"cls-data: TFRecords, labels.json, stats.json under {args.out}")


corpus_command = Command("clean Wikipedia (tfds) or text files into sentence-per-line shards",
                         _add_corpus_arguments, _run_corpus)
vocab_command = Command("train a MeCab + WordPiece vocabulary (BertJapaneseTokenizer-compatible dir)",
                        _add_vocab_arguments, _run_vocab)
pretraining_data_command = Command("pack sentences into ELECTRA pretraining TFRecords",
                                   _add_pretraining_data_arguments, _run_pretraining_data)
cls_data_command = Command("turn labeled texts (TSV or JSONL) into sequence-classification TFRecords",
                           _add_cls_data_arguments, _run_cls_data)
ner_data_command = Command("turn UD_Japanese-GSD NE or your NER files into token-classification TFRecords",
                           _add_ner_data_arguments, _run_ner_data)
