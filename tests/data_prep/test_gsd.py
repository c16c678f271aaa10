import collections

import pytest

from data_prep.errors import InputError
from data_prep.gsd import SPLITS, load_split, read_bio, read_conllu
from tests.conftest import GSD_DIR

# ../shared/data/README.md: sentences and entities per split.
EXPECTED = {"train": (7050, 10924), "dev": (507, 795), "test": (543, 609)}


@pytest.mark.parametrize("split", SPLITS)
def test_split_sizes_and_entity_counts_match_the_release(split):
    sentences = load_split(str(GSD_DIR), split)
    assert (len(sentences), sum(len(s.entities) for s in sentences)) == EXPECTED[split]


def test_types_per_split():
    types = {split: {e.type for s in load_split(str(GSD_DIR), split) for e in s.entities} for split in SPLITS}
    assert len(types["train"]) == 22
    assert types["train"] - types["test"] == {"CARDINAL", "PET_NAME", "PHONE"}


@pytest.mark.parametrize("split", SPLITS)
def test_bio_files_give_the_same_spans_as_conllu(split):
    conllu = read_conllu(str(GSD_DIR / f"ja_gsd-ud-{split}.ne.conllu"))
    bio = read_bio(str(GSD_DIR / f"{split}.bio"), str(GSD_DIR / "text" / f"{split}.txt"))
    assert [(s.text, s.entities) for s in conllu] == [(s.text, s.entities) for s in bio]


def test_spans_keep_spaces():
    sentences = load_split(str(GSD_DIR), "train")
    spaced = [(s.text[e.start:e.end]) for s in sentences for e in s.entities if " " in s.text[e.start:e.end]]
    assert spaced, "GSD has entities with spaces inside (e.g. Latin-script names)"


CONLLU_SENTENCE = "# text = 東京 タワー\n1\t東京\t_\t_\t_\t_\t0\t_\t_\tNE=B-FAC\n2\tタワー\t_\t_\t_\t_\t1\t_\t_\t{misc}\n"


@pytest.mark.parametrize("body, message", [
    (CONLLU_SENTENCE.format(misc="NE=L-FAC").replace("東京 タワー", "東京タワー"), r":1: '# text' does not match"),
    ("# text = 東京\n1\t東京\t_\t_\n", r":2: expected 10 tab-separated CoNLL-U columns, got 4"),
    ("1\t東京\t_\t_\t_\t_\t0\t_\t_\tNE=X-FAC\n", r":1: tag 'X-FAC' is not O or B/I/E/S-TYPE"),
    ("1\t東京\t_\t_\t_\t_\t0\t_\t_\tNE=I-FAC|SpaceAfter=No\n", r":1: I-FAC does not continue an open FAC entity"),
    ("1\t東京\t_\t_\t_\t_\t0\t_\t_\tNE=B-FAC\n2\t\t_\t_\t_\t_\t1\t_\t_\t_\n", r":2: empty FORM"),
])
def test_malformed_conllu_names_file_and_line(tmp_path, body, message):
    path = tmp_path / "bad.ne.conllu"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match="bad.ne.conllu" + message):
        read_conllu(str(path))


def test_text_that_is_not_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "bad.ne.conllu"
    path.write_bytes(CONLLU_SENTENCE.format(misc="NE=L-FAC").encode("utf-8") + b"\n# text = \x82\xa0\n")
    with pytest.raises(InputError, match=r"bad.ne.conllu:5: not UTF-8 text"):
        read_conllu(str(path))


def test_conllu_bilu_to_spans(tmp_path):
    path = tmp_path / "ok.ne.conllu"
    path.write_text(CONLLU_SENTENCE.format(misc="NE=L-FAC"), encoding="utf-8")
    sentence, = read_conllu(str(path))
    assert [(sentence.text[e.start:e.end], e.type) for e in sentence.entities] == [("東京 タワー", "FAC")]


def test_malformed_bio_line(tmp_path):
    path = tmp_path / "x.bio"
    path.write_text("東京\tB-GPE\n都\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"x.bio:2: expected token<TAB>tag"):
        read_bio(str(path))


def test_missing_split_names_the_directory(tmp_path):
    with pytest.raises(InputError, match=r"--gsd .*: neither ja_gsd-ud-train.ne.conllu nor train.bio found"):
        load_split(str(tmp_path), "train")


def test_entity_type_counts_are_stable():
    counts = collections.Counter(e.type for s in load_split(str(GSD_DIR), "test") for e in s.entities)
    assert sum(counts.values()) == 609 and len(counts) == 19
