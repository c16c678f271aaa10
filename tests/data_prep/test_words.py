import unicodedata

import pytest

from data_prep.words import MecabWordSplitter, normalize_with_offsets


@pytest.fixture(scope="module")
def splitter():
    return MecabWordSplitter()


def test_spaces_survive_in_offsets(splitter):
    text = "三代目 J SOUL BROTHERS が出演。"
    words = splitter.words(text)
    assert text[words[2].start:words[4].end] == "J SOUL BROTHERS"


@pytest.mark.parametrize("text", [
    "ｶﾞｷ大将が㍿を作った。",         # half-width kana merge, one character becomes four
    "ＡＢＣ　ＤＥＦは全角です。",        # full-width letters and an ideographic space
    "か\u3099ぎ\u309aと①②。",          # combining voiced marks, circled digits
    "  先頭と末尾に空白  ",
    "タブ\tと改行\nを含む。",
])
def test_offsets_point_at_the_original_characters(splitter, text):
    words = splitter.words(text)
    assert words, text
    for word in words:
        original = text[word.start:word.end]
        assert word.text in unicodedata.normalize("NFKC", original), (word, original)
    starts = [w.start for w in words]
    assert starts == sorted(starts)


def test_split_matches_words(splitter):
    text = "吾輩は猫である。名前はまだ無い。"
    assert splitter.split(text) == [w.text for w in splitter.words(text)]


def test_normalization_groups_map_every_normalized_character():
    text = "ｶﾞ㍿Ａ"
    normalized, starts, ends = normalize_with_offsets(text)
    assert normalized == "ガ株式会社A"
    assert list(zip(starts, ends)) == [(0, 2)] + [(2, 3)] * 4 + [(3, 4)]
