"""The classification dataset built from the shipped text: balanced labels, split by document (novel chapters,
GSD's own splits), and the same files on a rerun."""

import collections

from data_prep.cls_data import read_cls_file
from data_prep.gsd import load_split
from data_prep.source_passages import GSD, NOVEL, novel_sentences_by_chapter, write_source_passages
from tests.conftest import GSD_DIR, NOVEL as NOVEL_PATH, REPO


def test_balanced_split_by_document_and_rerun_identically(tmp_path):
    paths = write_source_passages(str(REPO / "data"), str(tmp_path / "a"))
    again = write_source_passages(str(REPO / "data"), str(tmp_path / "b"))
    texts = {split: read_cls_file(path) for split, path in paths.items()}
    assert all(open(paths[s]).read() == open(again[s]).read() for s in paths)
    counts = {split: collections.Counter(t.label for t in rows) for split, rows in texts.items()}
    assert counts == {"train": {NOVEL: 5674, GSD: 5674}, "dev": {NOVEL: 507, GSD: 507}, "test": {NOVEL: 543, GSD: 543}}
    chapters = novel_sentences_by_chapter(str(NOVEL_PATH))
    test_chapter = set(chapters[11])
    assert {t.text for t in texts["test"] if t.label == NOVEL} <= test_chapter
    assert not {t.text for t in texts["train"]} & {t.text for t in texts["test"] + texts["dev"]}
    assert {t.text for t in texts["test"] if t.label == GSD} == {s.text for s in load_split(str(GSD_DIR), "test")}


def test_per_label_caps_every_split(tmp_path):
    paths = write_source_passages(str(REPO / "data"), str(tmp_path / "c"), per_label=100)
    assert [len(read_cls_file(paths[s])) for s in ("train", "dev", "test")] == [200, 200, 200]
