import json
import os
import unicodedata

import pytest
from transformers import AutoTokenizer, BertJapaneseTokenizer

from data_prep.errors import InputError
from data_prep.tokenizer import JapaneseTokenizer
from tests.conftest import shipped_sentences


def _unidic_installed() -> bool:
    try:
        import unidic
    except ModuleNotFoundError:
        return False
    return os.path.isdir(unidic.DICDIR)


def test_directory_loads_as_bert_japanese_tokenizer(tokenizer_dir):
    assert isinstance(AutoTokenizer.from_pretrained(tokenizer_dir), BertJapaneseTokenizer)


def test_ids_equal_bert_japanese_tokenizer_on_every_shipped_sentence(tokenizer_dir, tokenizer):
    reference = AutoTokenizer.from_pretrained(tokenizer_dir)
    sentences = shipped_sentences()
    assert len(sentences) > 10_000
    ours = tokenizer.encode_ids(sentences)
    mismatches = [s for s, ids in zip(sentences, ours)
                  if ids != reference.convert_tokens_to_ids(reference.tokenize(s))]
    assert mismatches == []


def test_texts_encoded_together_keep_their_own_ids(tokenizer_dir, tokenizer):
    # Empty texts, texts MeCab reads only up to a NUL, a run of 120 katakana, other whitespace.
    texts = ["吾輩は猫である。", "", "猫\x00犬は鼠。", "\x00", "ア" * 120 + "。", "\u3000全角 空白と\tタブ。", "吾輩"]
    reference = AutoTokenizer.from_pretrained(tokenizer_dir)
    expected = [reference.convert_tokens_to_ids(reference.tokenize(t)) for t in texts]
    assert tokenizer.encode_ids(texts) == expected
    assert [tokenizer.encode_ids([t])[0] for t in texts] == expected
    assert tokenizer.encode_ids([]) == []


def test_wordpiece_edge_cases_equal_bert_japanese_tokenizer(tmp_path):
    # MeCab groups at most 24 unknown characters into a word unless told otherwise; here words reach and pass
    # WordPiece's 100-character limit, one of them needing a continuation piece longer than the limit.
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "b", "a", "##a", "##" + "a" * 99, "ア", "##ア",
             "x", "##yz", "##y", "x", "c", "##cc", "##c"]  # the second "x": a later duplicate wins
    JapaneseTokenizer(vocab, mecab_option="--max-grouping-size=200").save(str(tmp_path))
    tokenizer = JapaneseTokenizer.load(str(tmp_path))
    reference = AutoTokenizer.from_pretrained(str(tmp_path))
    texts = ["b" + "a" * 99, "b" + "a" * 100, "a" * 99, "a" * 100, "ア" * 120, "xyz", "xyy", "xq", "ccccc", "q"]
    expected = [reference.convert_tokens_to_ids(reference.tokenize(t)) for t in texts]
    assert [len(tokenizer.splitter.split(t)) for t in texts] == [1] * len(texts)
    assert expected[0] == [5, 8] and expected[1] == [1] and expected[5] == [14, 12]
    assert tokenizer.encode_ids(texts) == expected
    assert [e.token_ids for e in tokenizer.encode_many(texts)] == expected


@pytest.mark.parametrize("normalize_text", [True, False])
def test_whitespace_inside_mecab_words_splits_as_in_python(tmp_path, tokenizer, normalize_text):
    # MeCab keeps some of Python's whitespace inside its words; BertJapaneseTokenizer then splits them there.
    JapaneseTokenizer(tokenizer.vocab, normalize_text=normalize_text).save(str(tmp_path))
    ours = JapaneseTokenizer.load(str(tmp_path))
    reference = AutoTokenizer.from_pretrained(str(tmp_path))
    texts = ["猫\x1c犬\x1d鼠\x1e馬\x1f。", "猫\x85犬\u2028鼠\u2029馬\u1680。", "猫\u3000犬\xa0鼠\u2003馬\u202f。", "\x1c"]
    expected = [reference.convert_tokens_to_ids(reference.tokenize(t)) for t in texts]
    assert ours.encode_ids(texts) == expected
    assert [e.token_ids for e in ours.encode_many(texts)] == expected


def test_vocabulary_tokens_no_word_can_match_keep_their_ids(tmp_path):
    # The empty token, tokens holding whitespace or NUL, and an earlier duplicate ("x" at 8; the one at 10 wins).
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "", "x y", "x\x00", "x", "##yz", "x", "z"]
    JapaneseTokenizer(vocab).save(str(tmp_path))
    reference = AutoTokenizer.from_pretrained(str(tmp_path))
    texts = ["xyz", "z", "x"]
    expected = [reference.convert_tokens_to_ids(reference.tokenize(t)) for t in texts]
    assert expected == [[10, 9], [11], [10]]
    assert JapaneseTokenizer.load(str(tmp_path)).encode_ids(texts) == expected


def test_offset_path_gives_the_same_ids(tokenizer):
    sentences = shipped_sentences()[:2000]
    assert [e.token_ids for e in tokenizer.encode_many(sentences)] == tokenizer.encode_ids(sentences)


def test_offsets_reproduce_each_word_from_the_original_text(tokenizer):
    checked = 0
    for sentence, encoding in zip(sentences := shipped_sentences(), tokenizer.encode_many(sentences)):
        for word in encoding.words:
            original = sentence[word.start:word.end]
            if original == word.text:
                checked += 1
            else:  # NFKC changed these characters; the word must still come from exactly them
                assert word.text in unicodedata.normalize("NFKC", original), (sentence, word)
    assert checked > 100_000


def test_first_token_of_each_word(tokenizer):
    encoding = tokenizer.encode("吾輩は猫である。")
    firsts = encoding.first_token_of_each_word()
    assert len(firsts) == len(encoding.words)
    assert [encoding.token_words[p] for p in firsts] == list(range(len(encoding.words)))


def test_a_config_without_mecab_kwargs_reads_as_transformers_reads_it(tmp_path, tokenizer):
    # cl-tohoku's BERTs ship vocab.txt and a tokenizer config without tokenizer_class (config.json names it) or
    # mecab_kwargs; transformers' MecabTokenizer then uses unidic_lite, and so must we, or our ids would differ.
    (tmp_path / "vocab.txt").write_text("".join(t + "\n" for t in tokenizer.vocab), encoding="utf-8")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "tokenizer_class": "BertJapaneseTokenizer"}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"do_lower_case": False, "word_tokenizer_type": "mecab", "subword_tokenizer_type": "wordpiece"}))
    loaded = JapaneseTokenizer.load(str(tmp_path))
    reference = AutoTokenizer.from_pretrained(str(tmp_path))
    assert loaded.splitter.mecab_dic == "unidic_lite"
    texts = shipped_sentences()[:300]
    assert loaded.encode_ids(texts) == [reference.convert_tokens_to_ids(reference.tokenize(t)) for t in texts]


@pytest.mark.parametrize("mecab_dic", ["ipadic", "unidic_lite",
                                       pytest.param("unidic", marks=pytest.mark.skipif(
                                           not _unidic_installed(), reason="unidic's dictionary is not downloaded"))])
def test_ids_and_offsets_equal_bert_japanese_tokenizer_for_each_dictionary(tmp_path, tokenizer, mecab_dic):
    JapaneseTokenizer(tokenizer.vocab, mecab_dic=mecab_dic).save(str(tmp_path))
    ours = JapaneseTokenizer.load(str(tmp_path))
    reference = AutoTokenizer.from_pretrained(str(tmp_path))
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["mecab_kwargs"]["mecab_dic"] == mecab_dic
    assert reference.word_tokenizer.mecab.dictionary_info[0]["filename"].startswith(
        ours.splitter._tagger.dictionary_info[0]["filename"].rsplit("/", 1)[0])
    sentences = shipped_sentences()[::4]
    expected = [reference.convert_tokens_to_ids(reference.tokenize(s)) for s in sentences]
    assert ours.encode_ids(sentences) == expected
    encodings = ours.encode_many(sentences[:2000])
    assert [e.token_ids for e in encodings] == expected[:2000]
    for sentence, encoding in zip(sentences[:2000], encodings):
        # A character NFKC expands ("…" -> "...") may hold several words, each pointing at all of it.
        assert all(w.text in unicodedata.normalize("NFKC", sentence[w.start:w.end]) for w in encoding.words)


@pytest.mark.parametrize("config, message", [
    ({"word_tokenizer_type": "mecab", "mecab_kwargs": {"mecab_dic": "jumandic"}}, "mecab_dic 'jumandic' is not supp"),
    ({"word_tokenizer_type": "mecab", "mecab_kwargs": {"mecab_dic": None}}, "mecab_kwargs.mecab_dic is null"),
    ({"word_tokenizer_type": "sudachi"}, "word_tokenizer_type is 'sudachi'"),
    ({"subword_tokenizer_type": "wordpiece"}, "word_tokenizer_type is 'basic'"),
    ({"word_tokenizer_type": "mecab", "subword_tokenizer_type": "sentencepiece"},
     "subword_tokenizer_type is 'sentencepiece'"),
    ({"word_tokenizer_type": "mecab", "do_lower_case": True}, "do_lower_case is True"),
    ({"word_tokenizer_type": "mecab", "tokenizer_class": "BertTokenizer"}, "tokenizer_class is 'BertTokenizer'"),
])
def test_unsupported_tokenizer_configs_are_named(tmp_path, tokenizer, config, message):
    (tmp_path / "vocab.txt").write_text("".join(t + "\n" for t in tokenizer.vocab), encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=message):
        JapaneseTokenizer.load(str(tmp_path))


def test_a_vocabulary_without_tokenizer_config_is_refused(tmp_path, tokenizer):
    (tmp_path / "vocab.txt").write_text("".join(t + "\n" for t in tokenizer.vocab), encoding="utf-8")
    with pytest.raises(InputError, match=r"--tokenizer .*: no tokenizer_config.json beside vocab.txt"):
        JapaneseTokenizer.load(str(tmp_path))


def test_vocab_without_special_tokens_is_rejected(tmp_path):
    (tmp_path / "vocab.txt").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"word_tokenizer_type": "mecab"}))
    with pytest.raises(InputError, match=r"lacks special token\(s\) \[PAD\], \[UNK\]"):
        JapaneseTokenizer.load(str(tmp_path))


def test_missing_directory_names_the_flag(tmp_path):
    with pytest.raises(InputError, match=r"--tokenizer .*: no vocab.txt"):
        JapaneseTokenizer.load(str(tmp_path / "nope"))
