"""The project's Japanese tokenizer: MeCab words + WordPiece, ids identical to BertJapaneseTokenizer.

A tokenizer directory holds `vocab.txt` and `tokenizer_config.json`, so
`transformers.AutoTokenizer.from_pretrained(dir)` gives the reference BertJapaneseTokenizer, and cl-tohoku's
ipadic vocabularies load here unchanged. Encoding runs MeCab once per text in C, WordPiece (`tokenizers`, in
Rust) once per distinct word that is not itself a vocabulary entry, and keeps character offsets into the
original text.

Example:
    tokenizer = JapaneseTokenizer.load("build/demo/tokenizer")
    encoding = tokenizer.encode("三代目 J SOUL BROTHERS")
    encoding.token_ids, encoding.words[0].start
"""

import hashlib
from dataclasses import dataclass
from itertools import repeat

from tensorflow.io import gfile
from tokenizers.models import WordPiece

from data_prep import storage
from data_prep.errors import InputError
from data_prep.words import DEFAULT_DICTIONARY, MecabWordSplitter, Word, dictionary_dir

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "tokenizer_config.json"
MAX_INPUT_CHARS_PER_WORD = 100  # BertJapaneseTokenizer's WordpieceTokenizer default
TEXT_BREAK = "\x00"  # between texts in `encode_ids`
NOT_WHOLE = -1  # not an id: a word that is not a whole vocabulary entry


@dataclass(frozen=True)
class Encoding:
    """One text's WordPiece ids (no [CLS]/[SEP]) and, per token, the index of its MeCab word."""

    words: list[Word]
    token_ids: list[int]
    token_words: list[int]

    def first_token_of_each_word(self) -> list[int]:
        firsts, previous = [], -1
        for position, word in enumerate(self.token_words):
            if word != previous:
                firsts.append(position)
                previous = word
        return firsts


class JapaneseTokenizer:
    """MeCab-ipadic + WordPiece tokenizer; see the module docstring for an example."""

    def __init__(self, vocab: list[str], normalize_text: bool = True, mecab_option: str = "",
                 model_max_length: int = 512, mecab_dic: str = "ipadic"):
        missing = [token for token in SPECIAL_TOKENS if token not in vocab]
        if missing:
            raise InputError(f"vocabulary lacks special token(s) {', '.join(missing)}")
        self.vocab = vocab
        # Later duplicates win, as in transformers' load_vocab.
        self.token_to_id = {token: index for index, token in enumerate(vocab)}
        self.splitter = MecabWordSplitter(mecab_dic, extra_option=mecab_option, normalize_text=normalize_text)
        self.mecab_option = mecab_option
        self.model_max_length = model_max_length
        # A word that is itself a vocabulary entry is its own single piece: greedy longest-match-first takes it
        # whole, so `encode_ids` sends only other words to WordPiece, each once (the cache).
        self._whole_word_ids = {token: index for token, index in self.token_to_id.items()
                                if len(token) <= MAX_INPUT_CHARS_PER_WORD}
        self._pieces = _WordPieceCache(WordPiece(self.token_to_id, unk_token=UNK,
                                                 max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def id_of(self, token: str) -> int:
        return self.token_to_id[token]

    def vocab_hash(self) -> str:
        return hashlib.sha256("\n".join(self.vocab).encode("utf-8")).hexdigest()

    def encode_ids(self, texts: list[str]) -> list[list[int]]:
        """WordPiece ids of many texts at once (no offsets): the pretraining-data hot path."""
        if not texts:
            return []
        # One split and one dictionary pass over all the texts' words cost less than one per text: a break
        # word between texts marks where each one's ids end. MeCab's wakati output ends at a text's first NUL,
        # so the breaks are the only NULs in it (read_lines refuses NUL in corpora anyway).
        return self._ids_between_breaks(f" {TEXT_BREAK} ".join(map(self.splitter.wakati, texts)).split())

    def _ids_between_breaks(self, words: list[str]) -> list[list[int]]:
        # Nearly every running word is a whole vocabulary entry, looked up in C; only the rest (other words and
        # the breaks) take a turn of this loop.
        ids = [*map(self._whole_word_ids.get, words, repeat(NOT_WHOLE))]
        texts, current, start = [], [], 0
        for _ in range(ids.count(NOT_WHOLE)):
            position = ids.index(NOT_WHOLE, start)
            current += ids[start:position]
            start = position + 1
            if words[position] == TEXT_BREAK:
                texts.append(current)
                current = []
            else:
                current += self._pieces[words[position]]
        current += ids[start:]
        texts.append(current)
        return texts

    def encode(self, text: str) -> Encoding:
        return self.encode_many([text])[0]

    def encode_many(self, texts: list[str]) -> list[Encoding]:
        """Ids, and per token its word, whose offsets point into each original text."""
        return [self._encode_words(self.splitter.words(text)) for text in texts]

    def _encode_words(self, words: list[Word]) -> Encoding:
        token_ids, token_words = [], []
        for index, word in enumerate(words):
            pieces = self._pieces[word.text]
            token_ids.extend(pieces)
            token_words.extend([index] * len(pieces))
        return Encoding(words, token_ids, token_words)

    @classmethod
    def load(cls, directory: str, flag: str = "--tokenizer") -> "JapaneseTokenizer":
        """Loads our own tokenizer dirs and BertJapaneseTokenizer ones with MeCab and WordPiece (cl-tohoku's BERTs,
        a Hugging Face model dir), with whichever dictionary they name."""
        vocab_path = storage.join(directory, VOCAB_FILE)
        if not gfile.exists(vocab_path):
            raise InputError(f"{flag} {directory}: no {VOCAB_FILE} (expected a tokenizer directory)")
        config_path = storage.join(directory, CONFIG_FILE)
        if not gfile.exists(config_path):
            # transformers would split such a vocabulary's words with its basic (whitespace) tokenizer, not MeCab.
            raise InputError(f"{flag} {directory}: no {CONFIG_FILE} beside {VOCAB_FILE} (BertJapaneseTokenizer reads "
                             "word_tokenizer_type and mecab_kwargs from it)")
        config = storage.read_json(config_path, flag)
        _check_supported(config, f"{flag} {config_path}")
        with gfile.GFile(vocab_path, "r") as f:
            vocab = [line.rstrip("\n") for line in f]
        mecab_kwargs = config.get("mecab_kwargs") or {}
        try:
            return cls(vocab, normalize_text=mecab_kwargs.get("normalize_text", True),
                       mecab_option=mecab_kwargs.get("mecab_option") or "",
                       model_max_length=config.get("model_max_length", 512),
                       mecab_dic=mecab_kwargs.get("mecab_dic", DEFAULT_DICTIONARY))
        except InputError as error:
            raise InputError(f"{vocab_path}: {error}") from None

    def save(self, directory: str) -> None:
        gfile.makedirs(directory)
        storage.write_text(storage.join(directory, VOCAB_FILE), "".join(t + "\n" for t in self.vocab))
        mecab_kwargs = {"mecab_dic": self.splitter.mecab_dic}
        if self.mecab_option:
            mecab_kwargs["mecab_option"] = self.mecab_option
        if not self.splitter.normalize_text:
            mecab_kwargs["normalize_text"] = False
        storage.write_json(storage.join(directory, CONFIG_FILE), {
            "tokenizer_class": "BertJapaneseTokenizer",
            "do_lower_case": False,
            "word_tokenizer_type": "mecab",
            "subword_tokenizer_type": "wordpiece",
            "mecab_kwargs": mecab_kwargs,
            "model_max_length": self.model_max_length,
            "unk_token": UNK, "sep_token": SEP, "pad_token": PAD, "cls_token": CLS, "mask_token": MASK,
        })


class _WordPieceCache(dict):
    """word -> WordPiece ids, each word split by the `tokenizers` WordPiece model on first sight."""

    MAX_ENTRIES = 2_000_000  # a bound on memory for multi-GB corpora; refilling is cheap

    def __init__(self, model: WordPiece):
        super().__init__()
        self._model = model

    def __missing__(self, word: str) -> list[int]:
        if len(self) >= self.MAX_ENTRIES:
            self.clear()
        ids = [token.id for token in self._model.tokenize(word)]
        self[word] = ids
        return ids


def _check_supported(config: dict, path: str) -> None:
    """BertJapaneseTokenizer with MeCab words and WordPiece, as transformers reads the file (its defaults for
    absent keys); anything else is one line naming the field."""
    expected = {"word_tokenizer_type": ("mecab", "basic"), "subword_tokenizer_type": ("wordpiece", "wordpiece"),
                "do_lower_case": (False, False), "do_word_tokenize": (True, True),
                "do_subword_tokenize": (True, True),
                # Hub models may name the class in config.json instead.
                "tokenizer_class": ("BertJapaneseTokenizer", "BertJapaneseTokenizer")}
    for key, (value, default) in expected.items():
        if config.get(key, default) != value:
            raise InputError(f"{path}: {key} is {config.get(key, default)!r}; electra-ja reads BertJapaneseTokenizer "
                             f"with word_tokenizer_type 'mecab' and subword_tokenizer_type 'wordpiece' ({key} "
                             f"{value!r})")
    mecab_dic = (config.get("mecab_kwargs") or {}).get("mecab_dic", DEFAULT_DICTIONARY)
    if mecab_dic is None:
        raise InputError(f"{path}: mecab_kwargs.mecab_dic is null (a system dictionary named in mecab_option); "
                         "electra-ja reads ipadic, unidic_lite or unidic")
    dictionary_dir(mecab_dic, where=f"{path}: ")
