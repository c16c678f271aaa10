"""The sentence classifier end to end on debug sizes: cls-data -> finetune (a handful of texts overfit to accuracy
1.0, one of them longer than a window) -> evaluate -> export -> predict in-process and over gRPC and REST; export-hf
-> transformers' ElectraForSequenceClassification and its text-classification pipeline."""

import json

import numpy as np
import pytest
import tensorflow as tf
import torch
from transformers import ElectraForSequenceClassification, pipeline

from data_prep.console import registered_commands, run
from finetune.cls_evaluation import text_probabilities
from finetune.data import ClsData
from finetune.trainer import load_finetuned
from serving.classifier_client import TextClassifierClient
from serving.model_versions import ModelVersions
from serving.server import ModelServer
from tests.data_prep.test_cls_data import TEXTS, write_tsv
from tests.serving.test_server import free_port

LONG = ("吾輩はここで始めて人間というものを見た。しかもあとで聞くとそれは書生という人間中で一番獰悪な種族であったそうだ。"
        "この書生というのは時々我々を捕えて煮て食うという話である。")
HANDFUL = TEXTS + [("京都府は近畿地方にある府である。", "百科事典"), (LONG, "小説"),
                   ("名古屋市は愛知県の県庁所在地である。", "百科事典"), ("吾輩は猫である。名前はまだ無い。どこで生れたか。", "小説")]


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, tokenizer_dir):
    """A debug classifier fine-tuned from random weights on 8 texts (train = dev = test), 24-token windows."""
    tmp = tmp_path_factory.mktemp("classifier")
    texts = write_tsv(tmp / "texts.tsv", HANDFUL)
    data, model = str(tmp / "cls"), str(tmp / "model")
    assert run(["cls-data", "--train", texts, "--dev", texts, "--test", texts, "--tokenizer", tokenizer_dir,
                "--out", data, "--max-seq-length", "24"], registered_commands()) == 0
    assert run(["finetune", "--data", data, "--init-checkpoint", "random", "--out", model, "--config",
                "configs/debug.yaml", "--set", "finetune.batch_size=4", "--set", "finetune.num_epochs=40",
                "--set", "finetune.learning_rate=3e-3", "--set", "finetune.layerwise_lr_decay=1.0"],
               registered_commands()) == 0
    return data, model


def test_a_handful_of_texts_overfit_to_accuracy_one(classifier_dir, capsys):
    data_dir, model_dir = classifier_dir
    results = json.loads(open(f"{model_dir}/results.json").read())
    assert results["task"] == "classification"
    assert results["test"]["accuracy"] == 1.0 and results["test"]["macro_f1"] == 1.0
    assert results["test"]["per_class"]["小説"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "gold": 4,
                                                    "predicted": 4, "correct": 4}
    assert json.loads(open(f"{model_dir}/labels.json").read()) == {"task": "classification",
                                                                    "labels": ["小説", "百科事典"]}
    assert run(["evaluate", "--model", model_dir, "--data", data_dir, "--split", "test"], registered_commands()) == 0
    assert "test: accuracy 1.0000  macro-F1 1.0000  (8 texts)" in capsys.readouterr().out


def test_a_long_text_is_judged_by_the_mean_of_its_windows(classifier_dir):
    data_dir, model_dir = classifier_dir
    data = ClsData.load(data_dir)
    texts = data.texts("test")
    assert [t["windows"] for t in texts][5] > 1 and sum(t["windows"] for t in texts) > len(texts)
    classifier, _, _ = load_finetuned(model_dir)
    probabilities = text_probabilities(classifier, data, "test", texts)
    assert probabilities.shape == (8, 2) and np.allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    assert probabilities.argmax(-1).tolist() == [data.labels.index(t["label"]) for t in texts]


def test_classifier_and_tagger_data_do_not_mix(classifier_dir, ner_dir, capsys):
    data_dir, model_dir = classifier_dir
    assert run(["evaluate", "--model", model_dir, "--data", ner_dir[0]], registered_commands()) == 2
    assert "ner data, but --model" in capsys.readouterr().err


@pytest.fixture(scope="module")
def classifier_export(classifier_dir, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("classifier_export"))
    assert run(["export", "--model", classifier_dir[1], "--export-dir", base], registered_commands()) == 0
    return base


def test_export_serves_probabilities_and_predictions(classifier_export, capsys):
    signature = tf.saved_model.load(f"{classifier_export}/1").signatures["serving_default"]
    assert sorted(signature.structured_input_signature[1]) == ["input_ids", "input_mask", "segment_ids"]
    outputs = signature.structured_outputs
    assert outputs["probabilities"].shape.as_list() == [None, 2] and outputs["predictions"].shape.as_list() == [None]
    assert run(["predict", "--model-base-path", classifier_export, HANDFUL[1][0], LONG], registered_commands()) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(a["text"], a["label"]) for a in answers] == [(HANDFUL[1][0], "百科事典"), (LONG, "小説")]
    assert sorted(answers[1]["scores"]) == ["小説", "百科事典"] and answers[1]["score"] == max(answers[1]["scores"].values())


def test_served_answers_equal_the_in_process_ones_over_grpc_and_rest(classifier_export):
    texts = [text for text, _ in HANDFUL]
    assets = f"{classifier_export}/1/assets"
    with TextClassifierClient.from_export(classifier_export) as local:
        expected = local.probabilities(texts)
        assert [local.labels[i] for i in expected.argmax(-1)] == [label for _, label in HANDFUL]
    with ModelVersions(classifier_export, "cls") as versions, \
            ModelServer(versions, grpc_port=0, rest_port=free_port()) as server:
        for protocol, port in (("grpc", server.grpc_port), ("rest", server.rest_port),
                               ("rest-columnar", server.rest_port)):
            with TextClassifierClient.for_server(f"127.0.0.1:{port}", protocol, "cls", assets) as remote:
                np.testing.assert_allclose(remote.probabilities(texts), expected, atol=1e-6, err_msg=protocol)


def test_export_hf_writes_a_sequence_classifier_that_computes_our_logits(classifier_dir, classifier_export, tmp_path):
    """transformers' head is dense, GELU, dense where ours is one dense layer; the export makes them equal (see
    classification_head_tensors), so its logits and the text-classification pipeline's scores are ours."""
    data_dir, model_dir = classifier_dir
    out = str(tmp_path / "hf")
    assert run(["export-hf", "--model", model_dir, "--out", out], registered_commands()) == 0
    model, info = ElectraForSequenceClassification.from_pretrained(out, output_loading_info=True)
    assert {key: value for key, value in info.items() if value} == {}
    assert model.config.id2label == {0: "小説", 1: "百科事典"}
    assert "test accuracy, macro-F1 | 1.0000, 1.0000" in open(f"{out}/README.md").read()

    classifier, _, _ = load_finetuned(model_dir)
    features, _ = next(iter(ClsData.load(data_dir).dataset("test", 16)))
    with torch.no_grad():
        reference = model.eval()(input_ids=torch.tensor(features["input_ids"].numpy(), dtype=torch.long),
                                 attention_mask=torch.tensor(features["input_mask"].numpy())).logits.numpy()
    assert np.abs(classifier(features).numpy() - reference).max() <= 1e-4

    single_window = [text for text, _ in HANDFUL if text != LONG]
    classify = pipeline("text-classification", model=out, top_k=None)
    with TextClassifierClient.from_export(classifier_export) as local:
        expected = local.probabilities(single_window)
    theirs = [[{a["label"]: a["score"] for a in answer}[label] for label in ("小説", "百科事典")]
              for answer in classify(single_window)]
    np.testing.assert_allclose(theirs, expected, atol=1e-5)
