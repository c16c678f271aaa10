"""What can pretraining on the shipped text tell a tagger about GSD's dev and test entities that GSD train cannot?

The CPU recipe pretrains on GSD train's text and `--extra` sources (吾輩は猫である); fine-tuning reads GSD train
too, labelled. So the extra text is the only text pretraining adds, and an entity of dev or test that occurs in it
but not in GSD train is the most pretraining could teach the tagger about unseen names. For each gold entity this
counts where its text occurs (NFKC, as the tokenizer normalizes), and for each MeCab word inside an entity
(ipadic, the vocab stage's splitter) where that word occurs as a word.

    python benchmarks/corpus_coverage.py --gsd data/ud_japanese_gsd_ne/r2.8-NE \
        --extra data/corpus/wagahaiwa_nekodearu.txt [--out docs/results.md]
"""

import argparse
import collections
import os
import pathlib
import shlex
import sys
import unicodedata

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks.report import machine, write_section  # noqa: E402
from data_prep.entities import Sentence  # noqa: E402
from data_prep.gsd import load_split  # noqa: E402
from data_prep.words import MecabWordSplitter  # noqa: E402

PLACES = ("GSD train", "extra text only", "neither")


def where(found_in_train: bool, found_in_extra: bool) -> str:
    return PLACES[0] if found_in_train else PLACES[1] if found_in_extra else PLACES[2]


def word_set(text: str, splitter: MecabWordSplitter) -> set[str]:
    return {word for line in text.splitlines() for word in splitter.split(line)}


def entity_words(sentence: Sentence, splitter: MecabWordSplitter) -> list[str]:
    """Each MeCab word of the sentence that overlaps a gold entity (once per entity it overlaps)."""
    words = splitter.words(sentence.text)
    return [word.text for entity in sentence.entities for word in words
            if word.start < entity.end and entity.start < word.end]


def coverage(sentences: list[Sentence], train: str, extra: str, train_words: set[str], extra_words: set[str],
             splitter: MecabWordSplitter) -> dict[str, collections.Counter]:
    counts = {"entities": collections.Counter(), "entity words": collections.Counter()}
    for sentence in sentences:
        for entity in sentence.entities:
            surface = unicodedata.normalize("NFKC", sentence.text[entity.start:entity.end])
            counts["entities"][where(surface in train, surface in extra)] += 1
        for word in entity_words(sentence, splitter):
            counts["entity words"][where(word in train_words, word in extra_words)] += 1
    return counts


def table(results: dict[str, dict[str, collections.Counter]]) -> str:
    rows = ["| split | unit | count | in GSD train | in the extra text only | in neither |", "|---|---|---:|---:|---:|---:|"]
    for split, counts in results.items():
        for unit, counter in counts.items():
            total = sum(counter.values())
            cells = " | ".join(f"{counter[place]} ({counter[place] / total:.1%})" for place in PLACES)
            rows.append(f"| {split} | {unit} | {total} | {cells} |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gsd", required=True, help="UD_Japanese-GSD NE dir (its train text is in the corpus)")
    parser.add_argument("--extra", nargs="+", required=True, help="the corpus's other sources, plain text")
    parser.add_argument("--out", help="write a section into this file (docs/results.md)")
    args = parser.parse_args()

    splitter = MecabWordSplitter()
    normalize = lambda text: unicodedata.normalize("NFKC", text)  # noqa: E731
    train_text = normalize("\n".join(sentence.text for sentence in load_split(args.gsd, "train")))
    extra_text = normalize("\n".join(pathlib.Path(path).read_text(encoding="utf-8") for path in args.extra))
    train_words, extra_words = word_set(train_text, splitter), word_set(extra_text, splitter)
    results = {split: coverage(load_split(args.gsd, split), train_text, extra_text, train_words, extra_words, splitter)
               for split in ("dev", "test")}
    body = table(results)
    print(body)
    if args.out:
        command = "python benchmarks/corpus_coverage.py " + shlex.join(["--gsd", args.gsd, "--extra", *args.extra,
                                                                          "--out", args.out])
        write_section(args.out, "corpus_coverage", f"""## What the extra pretraining text knows about dev and test entities

Command: `{command}`. Machine: {machine()}.

Where each gold entity's text (NFKC) occurs as a substring, and where each MeCab word (ipadic) overlapping a gold
entity occurs as a word: in GSD train's text (which fine-tuning reads labelled and pretraining reads too), only in
the extra text (which only pretraining reads), or in neither.

{body}
""")


if __name__ == "__main__":
    main()
