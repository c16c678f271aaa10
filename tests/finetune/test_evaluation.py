"""Char-span scores against seqeval on the same predictions, where GSD's entities sit on MeCab word edges."""

import re
import shutil

import numpy as np
import pytest
from seqeval.metrics import classification_report

from data_prep.bio import decode_bio
from data_prep.errors import InputError
from finetune.data import NerData
from finetune.evaluation import evaluate, predict_word_labels, seqeval_scores, span_scores, word_probabilities
from finetune.model import TokenTagger
from tests.data_prep.test_bio import valid_bio


def aligned_sentences(data, split):
    """Sentences whose gold entities are exactly what their gold word labels decode to."""
    return [s for s in data.sentences(split)
            if {(e.start, e.end, e.type) for e in s.entities}
            == {(p.start, p.end, p.type) for p in decode_bio(s.word_labels, s.words)}]


def perturbed(labels, names, rng, rate):
    """Gold labels with a fraction replaced at random: dangling I-, wrong types, missed and extra words."""
    return [names[rng.integers(len(names))] if rng.random() < rate else label for label in labels]


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3])
def test_char_span_scores_equal_seqeval_on_aligned_sentences(ner_dir, rate):
    data = NerData.load(ner_dir[0])
    sentences = aligned_sentences(data, "dev")
    assert len(sentences) > 450  # 10 of dev's 795 entities are unaligned
    rng = np.random.default_rng(int(rate * 10))
    predicted = [perturbed(s.word_labels, data.labels, rng, rate) for s in sentences]
    assert any(p[i].startswith("I-") and (i == 0 or p[i - 1] == "O") for p in predicted for i in range(len(p))) \
        or rate == 0.0

    ours = span_scores([s.entities for s in sentences], [decode_bio(p, s.words) for s, p in zip(sentences, predicted)])
    theirs = seqeval_scores([s.word_labels for s in sentences], predicted)
    for name in ("precision", "recall", "f1"):
        assert ours[name] == pytest.approx(theirs[name], abs=1e-12)
    report = classification_report([s.word_labels for s in sentences], predicted, output_dict=True, zero_division=0)
    for kind, row in ours["per_type"].items():
        if row["gold"]:
            assert row["f1"] == pytest.approx(report[kind]["f1-score"], abs=1e-12), kind
            assert row["gold"] == report[kind]["support"]


def test_unaligned_gold_entities_count_as_misses_even_for_perfect_word_labels(ner_dir):
    data = NerData.load(ner_dir[0])
    sentences = data.sentences("test")
    scores = span_scores([s.entities for s in sentences], [decode_bio(s.word_labels, s.words) for s in sentences])
    assert scores["gold"] == 609
    assert scores["correct"] == 609 - 4  # the 4 unaligned test entities of stats.json
    assert seqeval_scores([s.word_labels for s in sentences], [s.word_labels for s in sentences])["f1"] == 1.0


def test_tfrecord_and_jsonl_of_different_runs_are_a_clear_error(ner_dir, debug_config, tmp_path):
    data_dir = shutil.copytree(ner_dir[0], tmp_path / "ner")
    jsonl = data_dir / "dev.jsonl"
    jsonl.write_text("".join(jsonl.read_text(encoding="utf-8").splitlines(keepends=True)[:-1]), encoding="utf-8")
    data = NerData.load(str(data_dir))
    with pytest.raises(InputError, match=f"^--data: {re.escape(str(data_dir / 'dev.tfrecord'))} has \\d+ examples, "
                                         f"{re.escape(str(jsonl))} \\d+ windows"):
        evaluate(TokenTagger(debug_config.model, len(data.labels)), data, "dev")


def test_dataset_json_without_its_keys_is_a_clear_error(ner_dir, tmp_path):
    damaged = tmp_path / "ner"
    shutil.copytree(ner_dir[0], damaged)
    (damaged / "dataset.json").write_text('{"splits": {}}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"dataset.json: lacks max_seq_length, vocab_sha256"):
        NerData.load(str(damaged))


def test_evaluation_decodes_valid_bio_where_the_argmax_is_not(ner_dir, debug_config):
    data = NerData.load(ner_dir[0])
    sentences = data.sentences("dev")
    tagger = TokenTagger(debug_config.model, len(data.labels))  # untrained: its argmax labels are all over the place
    argmax = [[data.labels[i] for i in probs.argmax(-1)] for probs in word_probabilities(tagger, data, "dev", sentences)]
    assert not all(map(valid_bio, argmax))
    assert all(valid_bio(labels) for labels, _ in predict_word_labels(tagger, data, "dev", sentences))
