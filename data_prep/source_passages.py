"""A Japanese sentence-classification dataset built from the shipped text, for the demo and the tests (none can be
downloaded here): which source a sentence comes from, 吾輩は猫である (label 小説: Sōseki's 1905 novel, a cat's
first-person narration in Meiji-era literary style) or UD_Japanese-GSD (label 百科・報道: modern encyclopedic and
news sentences).

It measures whether a model tells literary prose of a century ago from modern expository prose by vocabulary,
spelling (生れた, 恐しい) and register; a bag of characters gets far, so it is a check that the classifier learns,
not a benchmark. Sentences, not paragraphs, so length alone gives little away; a long novel sentence still spans
several windows.

Split by document: the novel by chapter (一 … 九 train, 十 dev, 十一 test), GSD by its own train/dev/test. The
labels are balanced in each split (the larger source sampled down, seeded). The novel's dev and test chapters are
in the demo's pretraining corpus as unlabeled text (GSD dev/test never are).

Example:
    paths = write_source_passages("data", "build/demo/source_passages")     # {"train": ".../train.tsv", ...}

The whole set: 5,674 sentences of each label in train, 507 in dev and 543 in test (GSD's dev and test sizes); a
sentence occurs once, and one that also occurs in train (「かしこまりました。」) is left out of dev and test.
"""

import random
import re

from data_prep import storage
from data_prep.errors import InputError
from data_prep.gsd import load_split
from data_prep.splits import SPLITS

NOVEL, GSD = "小説", "百科・報道"
CHAPTER = re.compile(r"^[一二三四五六七八九十]+$")
# The novel's chapters in each split (11 chapters in all).
CHAPTER_SPLITS = {"train": range(1, 10), "dev": range(10, 11), "test": range(11, 12)}
SENTENCE = re.compile(r"[^。！？]*[。！？]+[」』）]*")


def novel_sentences_by_chapter(path: str) -> dict[int, list[str]]:
    chapters, chapter = {}, 0
    for number, line in storage.read_lines(path):
        line = line.strip()
        if CHAPTER.fullmatch(line):
            chapter += 1
            continue
        if line and chapter:
            chapters.setdefault(chapter, []).extend(s.strip() for s in SENTENCE.findall(line) if len(s.strip()) >= 5)
    if sorted(chapters) != list(range(1, 12)):
        raise InputError(f"{path}: expected 11 chapters headed 一 … 十一, found {len(chapters)}")
    return chapters


def write_source_passages(data_dir: str, out_dir: str, seed: int = 0, per_label: int | None = None) -> dict[str, str]:
    """train/dev/test TSVs (`text<TAB>label`) under `out_dir`, at most `per_label` sentences of each label per split;
    returns their paths."""
    chapters = novel_sentences_by_chapter(storage.join(data_dir, "corpus", "wagahaiwa_nekodearu.txt"))
    gsd_dir = storage.join(data_dir, "ud_japanese_gsd_ne", "r2.8-NE")
    rng = random.Random(seed)
    storage.make_output_dir(out_dir, "--work-dir")
    paths, seen = {}, set()
    for split in SPLITS:  # train first: a sentence that also occurs in train (「かしこまりました。」) is left out of dev/test
        novel = _unseen([s for chapter in CHAPTER_SPLITS[split] for s in chapters[chapter]], seen)
        gsd = _unseen([s.text for s in load_split(gsd_dir, split)], seen)
        if split == "train":
            seen = set(novel) | set(gsd)
        size = min(len(novel), len(gsd), per_label or len(novel))
        rows = [(text, NOVEL) for text in rng.sample(novel, size)] + [(text, GSD) for text in rng.sample(gsd, size)]
        rng.shuffle(rows)
        paths[split] = storage.join(out_dir, f"{split}.tsv")
        storage.write_text(paths[split], "text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows))
    return paths


def _unseen(sentences: list[str], seen: set[str]) -> list[str]:
    """`sentences` without those in `seen`, each once, in their first order."""
    return [s for s in dict.fromkeys(sentences) if s not in seen]
