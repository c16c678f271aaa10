"""MeCab (fugashi + ipadic, unidic-lite or unidic) word splitting the way transformers' BertJapaneseTokenizer does it, plus the
character offsets of every word in the caller's original string.

BertJapaneseTokenizer NFKC-normalizes, lets MeCab split, then splits each MeCab surface again on Python
whitespace. We do the same with MeCab's wakati output (one C call, no per-node Python objects) and recover
offsets by walking the normalized text, then map them back through NFKC to the original characters.

Example:
    splitter = MecabWordSplitter()
    [(w.text, w.start, w.end) for w in splitter.words("三代目 J SOUL BROTHERS")]
    # [('三', 0, 1), ('代目', 1, 3), ('J', 4, 5), ('SOUL', 6, 10), ('BROTHERS', 11, 19)]
"""

import importlib
import os
import unicodedata
from dataclasses import dataclass

import fugashi

from data_prep.errors import InputError

# The dictionaries BertJapaneseTokenizer's MecabTokenizer names: module to import, and the PyPI package to install.
DICTIONARIES = {"ipadic": "ipadic", "unidic_lite": "unidic-lite", "unidic": "unidic"}
# MecabTokenizer's default when a tokenizer_config.json names none (cl-tohoku's v2/v3 BERTs rely on it).
DEFAULT_DICTIONARY = "unidic_lite"


@dataclass(frozen=True)
class Word:
    """One word: its text as WordPiece sees it (normalized) and its [start, end) in the original string."""

    text: str
    start: int
    end: int


def dictionary_dir(mecab_dic: str, where: str = "") -> str:
    """The installed directory of `mecab_dic`, found as transformers' MecabTokenizer finds it; an InputError
    saying what to install otherwise."""
    if mecab_dic not in DICTIONARIES:
        raise InputError(f"{where}mecab_dic {mecab_dic!r} is not supported (supported: {', '.join(DICTIONARIES)})")
    try:
        module = importlib.import_module(mecab_dic)
    except ModuleNotFoundError:
        raise InputError(f"{where}mecab_dic {mecab_dic!r} is not installed: pip install "
                         f"{DICTIONARIES[mecab_dic]}") from None
    if not os.path.isdir(module.DICDIR):
        # unidic's pip package holds only a downloader until `python -m unidic download` has run.
        raise InputError(f"{where}mecab_dic {mecab_dic!r}: the dictionary itself is missing from {module.DICDIR} "
                         f"(run `python -m {mecab_dic} download`)")
    return module.DICDIR


def mecab_option(mecab_dic: str = "ipadic", extra_option: str = "") -> str:
    """The exact option string BertJapaneseTokenizer's MecabTokenizer builds, so both taggers agree."""
    dic_dir = dictionary_dir(mecab_dic)
    mecabrc = os.path.join(dic_dir, "mecabrc")
    return f'-d "{dic_dir}" -r "{mecabrc}" ' + extra_option


class MecabWordSplitter:
    """NFKC + MeCab + whitespace split, as BertJapaneseTokenizer's word tokenizer.

    Example:
        MecabWordSplitter().split("吾輩は猫である。")   # ['吾輩', 'は', '猫', 'で', 'ある', '。']
    """

    def __init__(self, mecab_dic: str = "ipadic", extra_option: str = "", normalize_text: bool = True):
        self._tagger = fugashi.GenericTagger(mecab_option(mecab_dic, extra_option) + " -Owakati")
        self.mecab_dic, self.normalize_text = mecab_dic, normalize_text

    def normalize(self, text: str) -> str:
        return unicodedata.normalize("NFKC", text) if self.normalize_text else text

    def split_normalized(self, normalized: str) -> list[str]:
        """Words of already-normalized text (MeCab surfaces split on whitespace, empty ones dropped)."""
        return self._tagger.parse(normalized).split()

    def wakati(self, text: str) -> str:
        """MeCab's whitespace-separated surfaces of the normalized text: `split` before splitting."""
        return self._tagger.parse(self.normalize(text))

    def split(self, text: str) -> list[str]:
        return self.wakati(text).split()

    def words(self, text: str) -> list[Word]:
        """Words with [start, end) offsets into `text` itself, whatever NFKC changed."""
        normalized, starts, ends = normalize_with_offsets(text) if self.normalize_text else _identity(text)
        words, position = [], 0
        for surface in self.split_normalized(normalized):
            # MeCab only skips whitespace between words, so the next occurrence is this word.
            begin = normalized.index(surface, position)
            position = begin + len(surface)
            words.append(Word(surface, starts[begin], ends[position - 1]))
        return words


def normalize_with_offsets(text: str) -> tuple[str, list[int], list[int]]:
    """NFKC(text) and, per normalized character, the [start, end) of the original characters it came from.

    Characters are normalized in groups that NFKC cannot combine with their neighbours (a base and its
    combining marks, ｶﾞ's two half-width halves, ...); every character a group produces points at the whole
    group, so "㍿" -> "株式会社" gives four characters that all map to the one original character.
    """
    normalized = unicodedata.normalize("NFKC", text)
    groups = _normalization_groups(text)
    pieces = [unicodedata.normalize("NFKC", text[a:b]) for a, b in groups]
    if "".join(pieces) != normalized:
        # Reordering across groups (exotic mark sequences): keep offsets correct, if coarse.
        groups, pieces = [(0, len(text))], [normalized]
    starts, ends = [], []
    for (a, b), piece in zip(groups, pieces):
        starts.extend([a] * len(piece))
        ends.extend([b] * len(piece))
    return normalized, starts, ends


def _normalization_groups(text: str) -> list[tuple[int, int]]:
    groups: list[tuple[int, int]] = []
    for i, char in enumerate(text):
        if groups and _joins_previous(text[groups[-1][0]:i], char):
            groups[-1] = (groups[-1][0], i + 1)
        else:
            groups.append((i, i + 1))
    return groups


def _joins_previous(previous: str, char: str) -> bool:
    if unicodedata.combining(char):
        return True
    nfkc = unicodedata.normalize
    return nfkc("NFKC", previous + char) != nfkc("NFKC", previous) + nfkc("NFKC", char)


def _identity(text: str) -> tuple[str, list[int], list[int]]:
    return text, list(range(len(text))), list(range(1, len(text) + 1))
