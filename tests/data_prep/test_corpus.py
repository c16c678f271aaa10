import collections
import dataclasses
import json

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from data_prep.config import CorpusConfig
from data_prep.corpus import clean_paragraph, documents_from_source, write_corpus
from data_prep.errors import InputError
from tests.conftest import NOVEL

CONFIG = CorpusConfig(min_sentence_chars=3, max_sentence_chars=40, num_shards=2)

WIKIPEDIA_ARTICLES = [
    "吾輩は猫である。名前はまだ無い。\nCategory:日本の小説\nthumb|250px|表紙。\n見出し\n「どこで生れたか。」と聞いた。",
    "ＮＦＫＣで全角の（括弧。）も直る。長すぎる文は" + "あ" * 50 + "。\n短い。",
]


def clean(paragraph, config=CONFIG):
    return clean_paragraph(paragraph, config, collections.Counter())


def test_splits_after_period_and_closing_brackets():
    assert clean("彼は「そうだ。行こう。」と言った。『本。』だった。") == \
        ["彼は「そうだ。", "行こう。」", "と言った。", "『本。』", "だった。"]


def test_drops_markup_and_unfinished_paragraphs():
    counts = collections.Counter()
    assert clean_paragraph("Category:日本の小説。", CONFIG, counts) == []
    assert clean_paragraph("thumb|250px|表紙。", CONFIG, counts) == []
    assert clean_paragraph("見出しだけの行", CONFIG, counts) == []
    assert counts == {"paragraphs_markup": 2, "paragraphs_without_final_period": 1}


def test_lines_without_a_final_period_are_kept_when_asked():
    keep = dataclasses.replace(CONFIG, require_final_period=False)
    counts = collections.Counter()
    assert clean_paragraph("見出しだけの行", keep, counts) == ["見出しだけの行"]
    assert clean_paragraph("今日は晴れ。明日は「雨」", keep, counts) == ["今日は晴れ。", "明日は「雨」"]
    assert clean_paragraph("吾輩は猫である。」", keep, counts) == ["吾輩は猫である。」"]
    assert clean_paragraph("Category:日本の小説", keep, counts) == []
    assert counts == {"paragraphs_markup": 1}


def test_nfkc_and_length_limits():
    counts = collections.Counter()
    assert clean_paragraph("ＡＢＣ（注。）。短。" + "長" * 41 + "。", CONFIG, counts) == ["ABC(注。)"]
    assert counts["sentences_out_of_length"] == 3


def test_wikipedia_through_tfds_load(tmp_path):
    def as_dataset(builder, **kwargs):
        assert builder.info.full_name.startswith("wikipedia/20230601.ja")
        return tf.data.Dataset.from_tensor_slices({"title": ["猫", "括弧"], "text": WIKIPEDIA_ARTICLES})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        stats = write_corpus(documents_from_source(["tfds:wikipedia/20230601.ja"]), str(tmp_path), CONFIG)
    assert stats["documents"] == 2 and stats["paragraphs_markup"] == 2
    text = "".join((tmp_path / f"sentences-0000{i}-of-00002.txt").read_text(encoding="utf-8") for i in range(2))
    assert text == ("吾輩は猫である。\n名前はまだ無い。\n「どこで生れたか。」\nと聞いた。\n\n"
                    "NFKCで全角の(括弧。)\nも直る。\n短い。\n\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["corpus.json", "sentences-00000-of-00002.txt", "sentences-00001-of-00002.txt"]


def test_unknown_tfds_dataset_is_a_clear_error():
    with pytest.raises(InputError, match="--source tfds:no_such_dataset: Dataset no_such_dataset not found"):
        list(documents_from_source(["tfds:no_such_dataset"]))


def test_unprepared_tfds_dataset_is_a_clear_error_not_a_download(tmp_path):
    with pytest.raises(InputError, match=r"--source tfds:wikipedia/20230601.ja: not prepared under --tfds-data-dir"):
        list(documents_from_source(["tfds:wikipedia/20230601.ja"], tfds_data_dir=str(tmp_path)))


def test_text_files_blank_line_separates_documents(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("一つ目の文書です。\n\n二つ目の文書です。\n続きです。\n", encoding="utf-8")
    assert list(documents_from_source([str(source)])) == [["一つ目の文書です。\n"], ["二つ目の文書です。\n", "続きです。\n"]]


def test_empty_corpus_writes_nothing(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("句点のない行\n", encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(InputError, match="no sentence survived cleaning"):
        write_corpus(documents_from_source([str(source)]), str(out), CONFIG)
    assert not out.exists()
    out.mkdir()  # a directory the user made stays
    with pytest.raises(InputError, match="no sentence survived cleaning"):
        write_corpus(documents_from_source([str(source)]), str(out), CONFIG)
    assert list(out.iterdir()) == []


def test_shards_without_documents_exist_and_corpus_json_names_them(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("一つしかない文書です。\n", encoding="utf-8")
    out = tmp_path / "out"
    stats = write_corpus(documents_from_source([str(source)]), str(out), CorpusConfig(num_shards=3))
    names = [f"sentences-0000{i}-of-00003.txt" for i in range(3)]
    assert stats["shards"] == names and json.loads((out / "corpus.json").read_text())["shards"] == names
    assert [(out / name).read_text(encoding="utf-8") for name in names] == ["一つしかない文書です。\n\n", "", ""]


def test_text_that_is_not_utf8_names_file_and_line(tmp_path):
    source = tmp_path / "in.txt"
    source.write_bytes("一行目。\n".encode("utf-8") + "二行目。\n".encode("shift_jis"))
    with pytest.raises(InputError, match=r"in.txt:2: not UTF-8 text"):
        list(documents_from_source([str(source)]))


def test_the_novel_gives_thousands_of_sentences(tmp_path):
    stats = write_corpus(documents_from_source([str(NOVEL)]), str(tmp_path), CorpusConfig(num_shards=1))
    assert stats["sentences"] > 5000
