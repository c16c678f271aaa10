"""What can pretraining on the shipped text tell a tagger about GSD's dev and test entities that GSD train cannot?

The CPU recipe pretrains on GSD train's text and `--extra` sources (吾輩は猫である); fine-tuning reads GSD train
too, labelled. So the extra text is the only text pretraining adds, and an entity of dev or test that occurs in it
but not in GSD train is the most pretraining could teach the tagger about unseen names. For each gold entity this
counts where its text occurs (NFKC, as the tokenizer normalizes), and for each MeCab word inside an entity
(ipadic, the vocab stage's splitter) where that word occurs as a word. Each `--tagger GROUP=DIR` (a fine-tuned
dir, scored on the ner-data its results.json names) adds its test recall per place, mean ± std over a group.

    python benchmarks/corpus_coverage.py --gsd data/ud_japanese_gsd_ne/r2.8-NE \
        --extra data/corpus/wagahaiwa_nekodearu.txt [--tagger random=build/recipe/ft-random-12345 ...] \
        [--out docs/results.md]
"""

import argparse
import collections
import pathlib
import shlex
import sys
import unicodedata
from dataclasses import dataclass

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks.report import group_and_dir, machine, write_section  # noqa: E402
from data_prep.console import hide_tensorflow_start_up  # noqa: E402
if __name__ == "__main__":
    hide_tensorflow_start_up()  # before TensorFlow loads

from benchmarks.cpu_recipe import mean_std  # noqa: E402
from data_prep.entities import Entity, Sentence  # noqa: E402
from data_prep.gsd import load_split  # noqa: E402
from data_prep.words import MecabWordSplitter  # noqa: E402

PLACES = ("GSD train", "extra text only", "neither")


@dataclass
class Texts:
    """GSD train's text and the extra text, NFKC, as strings and as sets of MeCab words."""

    train: str
    extra: str
    train_words: set[str]
    extra_words: set[str]

    @classmethod
    def load(cls, gsd_dir: str, extra_paths: list[str], splitter: MecabWordSplitter) -> "Texts":
        train = normalize("\n".join(sentence.text for sentence in load_split(gsd_dir, "train")))
        extra = normalize("\n".join(pathlib.Path(path).read_text(encoding="utf-8") for path in extra_paths))
        return cls(train, extra, word_set(train, splitter), word_set(extra, splitter))

    def place_of_entity(self, text: str, entity: Entity) -> str:
        surface = normalize(text[entity.start:entity.end])
        return place(surface in self.train, surface in self.extra)

    def place_of_word(self, word: str) -> str:
        return place(word in self.train_words, word in self.extra_words)


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def place(found_in_train: bool, found_in_extra: bool) -> str:
    return PLACES[0] if found_in_train else PLACES[1] if found_in_extra else PLACES[2]


def word_set(text: str, splitter: MecabWordSplitter) -> set[str]:
    return {word for line in text.splitlines() for word in splitter.split(line)}


def entity_words(sentence: Sentence, splitter: MecabWordSplitter) -> list[str]:
    """Each MeCab word of the sentence that overlaps a gold entity (once per entity it overlaps)."""
    words = splitter.words(sentence.text)
    return [word.text for entity in sentence.entities for word in words
            if word.start < entity.end and entity.start < word.end]


def coverage(sentences: list[Sentence], texts: Texts, splitter: MecabWordSplitter) -> dict[str, collections.Counter]:
    counts = {"entities": collections.Counter(), "entity words": collections.Counter()}
    for sentence in sentences:
        for entity in sentence.entities:
            counts["entities"][texts.place_of_entity(sentence.text, entity)] += 1
        for word in entity_words(sentence, splitter):
            counts["entity words"][texts.place_of_word(word)] += 1
    return counts


def test_recall_by_place(model_dir: str, texts: Texts) -> dict[str, float]:
    """The tagger's recall of test's gold entities (exact span and type, valid-BIO decoding) per place."""
    # Imported here: the coverage tables alone need no model.
    from benchmarks.decoding import tagger_and_its_data
    from data_prep.bio import decode_bio
    from finetune.evaluation import predict_word_labels, span_scores

    tagger, data = tagger_and_its_data(model_dir, "--tagger")
    sentences = data.sentences("test")
    predicted = [decode_bio(labels, sentence.words, scores) for sentence, (labels, scores)
                 in zip(sentences, predict_word_labels(tagger, data, "test", sentences))]
    # Each entity's place once: it searches both texts (megabytes) for the entity's surface.
    places = [[texts.place_of_entity(sentence.text, e) for e in sentence.entities] for sentence in sentences]
    recalls = {}
    for where in PLACES:
        gold = [[e for e, at in zip(sentence.entities, entity_places) if at == where]
                for sentence, entity_places in zip(sentences, places)]
        if any(gold):
            recalls[where] = span_scores(gold, predicted)["recall"]
    return recalls


def coverage_table(results: dict[str, dict[str, collections.Counter]]) -> str:
    rows = ["| split | unit | count | in GSD train | in the extra text only | in neither |",
            "|---|---|---:|---:|---:|---:|"]
    for split, counts in results.items():
        for unit, counter in counts.items():
            total = sum(counter.values())
            cells = " | ".join(f"{counter[where]} ({counter[where] / total:.1%})" for where in PLACES)
            rows.append(f"| {split} | {unit} | {total} | {cells} |")
    return "\n".join(rows)


def recall_table(recalls: dict[str, list[dict[str, float]]]) -> str:
    rows = ["| tagger | taggers | test recall, entity in GSD train | in the extra text only | in neither |",
            "|---|---:|---:|---:|---:|"]
    for group, by_tagger in recalls.items():
        cells = " | ".join(mean_std([r[where] for r in by_tagger]) if where in by_tagger[0] else "–"
                           for where in PLACES)
        rows.append(f"| {group} | {len(by_tagger)} | {cells} |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gsd", required=True, help="UD_Japanese-GSD NE dir (its train text is in the corpus)")
    parser.add_argument("--extra", nargs="+", required=True, help="the corpus's other sources, plain text")
    parser.add_argument("--tagger", action="append", default=[], type=group_and_dir, metavar="GROUP=DIR",
                        help="a fine-tuned dir and its group (init); repeatable")
    parser.add_argument("--out", help="write a section into this file (docs/results.md)")
    args = parser.parse_args()

    splitter = MecabWordSplitter()
    texts = Texts.load(args.gsd, args.extra, splitter)
    body = coverage_table({split: coverage(load_split(args.gsd, split), texts, splitter) for split in ("dev", "test")})
    recalls = collections.defaultdict(list)
    for group, directory in args.tagger:
        recalls[group].append(test_recall_by_place(directory, texts))
    if recalls:
        body += "\n\nThe taggers' recall of test's entities by where their text occurs (valid-BIO decoding, mean ± " \
                "std over a group's seeds):\n\n" + recall_table(recalls)
    print(body)
    if args.out:
        command = "python benchmarks/corpus_coverage.py " + shlex.join(sys.argv[1:])
        write_section(args.out, "corpus_coverage", f"""## What the extra pretraining text knows about dev and test entities

Command: `{command}`. Machine: {machine()}.

Where each gold entity's text (NFKC) occurs as a substring, and where each MeCab word (ipadic) overlapping a gold
entity occurs as a word: in GSD train's text (which fine-tuning reads labelled and pretraining reads too), only in
the extra text (which only pretraining reads), or in neither.

{body}
""")


if __name__ == "__main__":
    main()
