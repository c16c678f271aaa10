"""The export contract: signatures, shapes and dtypes (as saved_model_cli prints them), assets, label names,
numerical equality with the fine-tuned tagger at any length, also when tensorflow_model_server's loader runs it, with
the weights frozen (the default), frozen with every product split in column blocks, or kept as variables, and versions
that never overwrite."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from data_prep.console import registered_commands, run
from data_prep.errors import InputError
from export import saved_model
from export.saved_model import WARMUP_FILE, export_model
from finetune.data import NerData
from finetune.trainer import load_finetuned

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
VARIABLE_OPS = {"VarHandleOp", "ReadVariableOp", "VariableV2"}  # RestoreV2 stays: the saver every SavedModel has


@pytest.fixture(scope="module")
def variables_export_dir(tmp_path_factory, finetuned_dir):
    """`electra-ja export --keep-variables` of finetuned_dir: the base path (version 1 inside)."""
    base = str(tmp_path_factory.mktemp("export-variables"))
    export_model(finetuned_dir, base, freeze=False)
    return base


@pytest.fixture(scope="module")
def every_product_split_export_dir(tmp_path_factory, finetuned_dir):
    """An export whose products are all split in 2 blocks: the debug tagger's weights are all below
    MIN_SPLIT_WEIGHTS, so the default export splits none of them."""
    base = str(tmp_path_factory.mktemp("export-split"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(saved_model, "MIN_SPLIT_WEIGHTS", 1)
        export_model(finetuned_dir, base)
    return base


EXPORTS = {"frozen": "export_dir", "variables": "variables_export_dir", "split": "every_product_split_export_dir"}


@pytest.fixture(params=list(EXPORTS))
def any_export_dir(request):
    return request.getfixturevalue(EXPORTS[request.param])


def test_saved_model_cli_shows_int32_inputs_and_the_seeds_outputs(any_export_dir):
    result = subprocess.run([SAVED_MODEL_CLI, "show", "--dir", f"{any_export_dir}/1", "--tag_set", "serve",
                             "--signature_def", "serving_default"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    tensors = dict((m[0], (m[1], m[2])) for m in re.findall(
        r"\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: \(([-\d, ]+)\)", result.stdout))
    assert tensors == {name: ("DT_INT32", "-1, -1")
                       for name in ("input_ids", "input_mask", "segment_ids", "labeled_positions")} | {
        "chunk_predictions": ("DT_INT64", "-1, -1"), "chunk_probs": ("DT_FLOAT", "-1, -1, 45")}
    assert "Method name is: tensorflow/serving/predict" in result.stdout


def test_assets_labels_signature_and_warmup_request(any_export_dir, finetuned_dir):
    version = f"{any_export_dir}/1"
    assert sorted(os.listdir(f"{version}/assets")) == ["labels.json", "model_config.json", "tokenizer_config.json",
                                                      "vocab.txt"]
    labels = json.load(open(f"{finetuned_dir}/labels.json"))["labels"]
    served = tf.saved_model.load(version).signatures["labels"](label_ids=tf.range(len(labels), dtype=tf.int32))
    assert [name.decode() for name in served["labels"].numpy()] == labels
    # TF Serving replays the warm-up request when it loads the model and refuses the model if it fails: so here.
    records = [record.numpy() for record in tf.data.TFRecordDataset(f"{version}/{WARMUP_FILE}")]
    assert len(records) == 1
    request = prediction_log_pb2.PredictionLog.FromString(records[0]).predict_log.request
    signature = tf.saved_model.load(version).signatures[request.model_spec.signature_name or "serving_default"]
    outputs = signature(**{name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()})
    rows, length = tf.make_ndarray(request.inputs["input_ids"]).shape
    assert outputs["chunk_predictions"].shape == (rows, length)
    assert outputs["chunk_probs"].shape == (rows, length, len(labels))


def tagger_inputs_and_probabilities(finetuned_dir, ner_dir, length) -> tuple[dict, np.ndarray]:
    """Test windows cut to `length` positions, and the fine-tuned tagger's label probabilities for them."""
    tagger, _, _ = load_finetuned(finetuned_dir)
    features, _ = next(iter(NerData.load(ner_dir[0]).dataset("test", 8)))
    inputs = {name: value[:, :length] for name, value in features.items() if name != "labeled_positions"}
    inputs["labeled_positions"] = tf.minimum(features["labeled_positions"][:, :length], length - 1)
    return inputs, tf.nn.softmax(tagger(inputs), axis=-1).numpy()


@pytest.mark.parametrize("length", [7, 64])
def test_export_computes_what_the_finetuned_tagger_computes_at_any_length(any_export_dir, finetuned_dir, ner_dir,
                                                                         length):
    inputs, expected = tagger_inputs_and_probabilities(finetuned_dir, ner_dir, length)
    outputs = tf.saved_model.load(f"{any_export_dir}/1").signatures["serving_default"](**inputs)
    np.testing.assert_allclose(outputs["chunk_probs"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(outputs["chunk_predictions"].numpy(), expected.argmax(-1))


def test_tensorflow_model_servers_loader_runs_the_export_as_the_tagger(any_export_dir, finetuned_dir, ner_dir):
    # tensorflow_model_server loads a version as TF1's loader does: the MetaGraph into a Session, variables (if any)
    # restored, then Session.run on the signature's tensor names. No binary here, so the same loader in Python.
    inputs, expected = tagger_inputs_and_probabilities(finetuned_dir, ner_dir, 16)
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], f"{any_export_dir}/1")
        signature = meta_graph.signature_def["serving_default"]
        outputs = session.run({name: tensor.name for name, tensor in signature.outputs.items()},
                              {signature.inputs[name].name: value.numpy() for name, value in inputs.items()})
    np.testing.assert_allclose(outputs["chunk_probs"], expected, atol=1e-5)


def graph_nodes(version_dir: str) -> list:
    """The nodes of a SavedModel's graph and of every function it calls."""
    with open(f"{version_dir}/saved_model.pb", "rb") as f:
        graph = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0].graph_def
    return [*graph.node, *(node for function in graph.library.function for node in function.node_def)]


def operations(version_dir: str) -> set[str]:
    return {node.op for node in graph_nodes(version_dir)}


def test_frozen_export_reads_no_variables(export_dir, variables_export_dir):
    assert operations(f"{variables_export_dir}/1") & VARIABLE_OPS
    assert not operations(f"{export_dir}/1") & VARIABLE_OPS  # the weights are Const ops in saved_model.pb


def product_names(version_dir: str) -> set[str]:
    """The MatMul and Einsum nodes of an export, named without the tagger's numbered prefix."""
    return {node.name.split("/", 1)[1] for node in graph_nodes(version_dir) if node.op in ("MatMul", "Einsum")}


def test_split_export_computes_each_product_in_two_blocks(export_dir, every_product_split_export_dir):
    whole = product_names(f"{export_dir}/1")
    assert len(whole) == 2 * 6 + 2  # six weight products per layer, two layers, the embedding projection, the head
    # B-/I- per type and O: the head's column count is odd, so it cannot split in 2.
    head = {name for name in whole if name.startswith("classifier")}
    assert len(head) == 1
    assert product_names(f"{every_product_split_export_dir}/1") == head | {
        f"{name}/block_{index}" for name in whole - head for index in (0, 1)}


def test_product_blocks_refused_below_one_or_with_variables(finetuned_dir, tmp_path, capsys):
    for flags, message in ((["--product-blocks", "0"], "--product-blocks 0: expected 1 (products whole) or more"),
                           (["--product-blocks", "2", "--keep-variables"],
                            "--product-blocks: splits frozen weights; with --keep-variables there are none to split")):
        code = run(["export", "--model", finetuned_dir, "--export-dir", str(tmp_path / "export"), *flags],
                   registered_commands())
        assert code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == f"electra-ja export: error: {message}"
    assert not (tmp_path / "export").exists()


def test_versions_increase_and_are_never_overwritten(finetuned_dir, tmp_path):
    base = str(tmp_path / "export")
    assert export_model(finetuned_dir, base).endswith("/1")
    assert export_model(finetuned_dir, base).endswith("/2")
    with pytest.raises(InputError, match="--version 2: .* exists"):
        export_model(finetuned_dir, base, version=2)
    assert export_model(finetuned_dir, base, version=10).endswith("/10")
    assert sorted(os.listdir(base)) == ["1", "10", "2"]  # no temporary directories left behind


def test_bad_version_is_one_line_and_creates_no_base_path(finetuned_dir, tmp_path, capsys):
    base = tmp_path / "export"
    code = run(["export", "--model", finetuned_dir, "--export-dir", str(base), "--version", "0"],
               registered_commands())
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        "electra-ja export: error: --version 0: TF Serving versions are positive integers"
    assert not base.exists()


def test_unfinished_finetune_dir_is_refused(tmp_path):
    with pytest.raises(InputError, match="not a finished fine-tuned dir"):
        export_model(str(tmp_path), str(tmp_path / "export"))


def test_finetuned_dir_without_its_tokenizer_is_refused_before_writing(finetuned_dir, tmp_path):
    damaged = tmp_path / "finetuned"
    shutil.copytree(finetuned_dir, damaged)
    shutil.rmtree(damaged / "tokenizer")
    with pytest.raises(InputError, match=r"no .*tokenizer/vocab.txt.*keeps its tokenizer/"):
        export_model(str(damaged), str(tmp_path / "export"))
    assert not (tmp_path / "export").exists()
