"""`electra-ja export`: a fine-tuned dir -> a TF Serving SavedModel at BASE_PATH/<version>/ (export/contract.py).

Any sequence length works (the seed exported a fixed 512, so every request paid for 512 positions). The weights
are frozen into the graph as constants, so a call reads no variables (a ReadVariableOp per weight otherwise), and
each transformer layer's weight products are split into column blocks (export/split_products.py) that TensorFlow's
inter-op threads run side by side, which lets one sentence use both cores of a small server: in docs/benchmarks.md's
"latency" runs (three so far) one sentence took 12.1-12.7 ms so, 14.0-15.3 ms with the products whole and 16.4-19.0
ms with variables (intra-op 1, inter-op 2, oneDNN off). The graph has only stock ops (Const where ReadVariableOp was,
ConcatV2 joining the blocks; tests load it with tensorflow_model_server's loader), and protobuf caps saved_model.pb
at 2 GB, which ELECTRA-Large's 1.3 GB of float32 weights fits; `freeze=False` (`--keep-variables`) keeps variables/
for anything larger.

The version is written under a hidden temporary name and renamed into place, because tensorflow_model_server polls
the base path and would try to load a half-written version. assets.extra/ holds one warm-up request, which
tensorflow_model_server replays at load so the first real request does not pay for graph compilation.

Example:
    path = export_model("build/demo/finetuned", "build/demo/export")      # build/demo/export/1
"""

import os

import keras
import numpy as np
import tensorflow as tf
from tensorflow.io import gfile
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from data_prep import storage
from data_prep.errors import InputError
from export.contract import (ASSETS_DIR, CLASSIFIER_OUTPUTS, LABEL_IDS, LABEL_NAMES, LABELS_SIGNATURE,
                             SERVING_SIGNATURE, TAGGER_OUTPUTS, version_names)
from export.split_products import graph_function, split_products
from finetune.model import EncoderWithHead, SequenceClassifier
from finetune.trainer import load_finetuned

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
# Weights of ≥ 2^16 values: every transformer layer's products (256 × 256 and up at ELECTRA-Small's width). Splitting
# the smaller ones too (the embedding projection, the head) made one sentence slower where it was measured (small
# sizes, intra 1 / inter 2, oneDNN off: p50 8.6 ms against 6.9-7.5 ms).
MIN_SPLIT_WEIGHTS = 2**16
# One block per inter-op thread of a 2-core server, where it was measured.
PRODUCT_BLOCKS = 2


def serving_functions(model: EncoderWithHead, labels: list[str],
                      length: int | None = None) -> dict[str, tf.types.experimental.PolymorphicFunction]:
    """The two signatures of the contract over a tagger's or classifier's weights; `length` fixes the sequence
    dimension (the seed's 512-position export, kept for benchmarks and static-shape hardware), None leaves it open."""
    names = model.feature_names
    predictions, probabilities = CLASSIFIER_OUTPUTS if isinstance(model, SequenceClassifier) else TAGGER_OUTPUTS

    def serve(*tensors):
        logits = model(dict(zip(names, tensors)), training=False)
        scores = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        return {predictions: tf.argmax(scores, axis=-1, output_type=tf.int64), probabilities: scores}

    def label_names(label_ids):
        return {LABEL_NAMES: tf.gather(tf.constant(labels), label_ids)}

    return {SERVING_SIGNATURE: tf.function(serve, input_signature=[tf.TensorSpec([None, length], tf.int32, name=name)
                                                                   for name in names]),
            LABELS_SIGNATURE: tf.function(label_names,
                                          input_signature=[tf.TensorSpec([None], tf.int32, name=LABEL_IDS)])}


def write_saved_model(model: EncoderWithHead, labels: list[str], path: str, length: int | None = None,
                      freeze: bool = True, product_blocks: int = PRODUCT_BLOCKS) -> None:
    """The contract's signatures as a SavedModel at `path`, the weights frozen into constants (each large product
    in `product_blocks` column blocks) or kept as variables."""
    functions = serving_functions(model, labels, length)
    if freeze:
        tf.saved_model.save(tf.Module(), path, signatures={name: _frozen(f, product_blocks)
                                                           for name, f in functions.items()})
        return
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, function in functions.items():
        function.get_concrete_function()  # Keras takes a tf.function as an endpoint once it has been traced
        archive.add_endpoint(name, function)
    archive.write_out(path, verbose=False)


def _frozen(function, product_blocks: int) -> tf.types.experimental.PolymorphicFunction:
    """`function` (a tf.function with an input signature) with every variable it reads replaced by a constant and
    its large products split into `product_blocks` blocks."""
    concrete = function.get_concrete_function()
    constants = convert_variables_to_constants_v2(concrete)
    graph_def = split_products(constants.graph.as_graph_def(), MIN_SPLIT_WEIGHTS, product_blocks)
    split = graph_function(graph_def, [t.name for t in constants.inputs], [t.name for t in constants.outputs])
    # The pruned function returns its outputs flat; the signature keeps their names.
    return tf.function(lambda *tensors: tf.nest.pack_sequence_as(concrete.structured_outputs,
                                                                  tf.nest.flatten(split(*tensors))),
                       input_signature=function.input_signature)


def export_model(model_dir: str, export_base: str, version: int | None = None, freeze: bool = True,
                 product_blocks: int = PRODUCT_BLOCKS) -> str:
    if version is not None and version < 1:
        raise InputError(f"--version {version}: TF Serving versions are positive integers")
    if product_blocks < 1:
        raise InputError(f"--product-blocks {product_blocks}: expected 1 (products whole) or more")
    tagger, description, labels = load_finetuned(model_dir)
    assets = _asset_sources(model_dir)
    missing = [path for path in assets if not gfile.exists(path)]
    if missing:
        raise InputError(f"--model {model_dir}: no {', '.join(missing)} (a fine-tuned dir keeps its tokenizer/)")
    # A clash found after this leaves nothing new behind: an existing version implies an existing base path,
    # and gs:// is only listed after make_output_dir's preflight has vouched for the bucket.
    storage.make_output_dir(export_base, "--export-dir")
    final = storage.join(export_base, str(_new_version(export_base, version)))
    tmp = storage.temp_name(final)
    try:
        write_saved_model(tagger, labels, tmp, freeze=freeze, product_blocks=product_blocks)
        _copy_assets(assets, storage.join(tmp, ASSETS_DIR))
        _write_warmup_request(storage.join(tmp, WARMUP_FILE), description["max_seq_length"], tagger.feature_names)
        storage.publish_dir(tmp, final, last="saved_model.pb")
    finally:
        if gfile.exists(tmp):
            gfile.rmtree(tmp)
    return final


def _new_version(export_base: str, version: int | None) -> int:
    """`version`, or one more than the highest there; a served version is never overwritten."""
    existing = version_names(gfile.listdir(export_base))
    if version is None:
        return max(existing, default=0) + 1
    if version in existing:
        raise InputError(f"--version {version}: {storage.join(export_base, str(version))} exists (a served version "
                         "is never overwritten; pick a new one or omit --version)")
    return version


def _asset_sources(model_dir: str) -> list[str]:
    tokenizer = storage.join(model_dir, "tokenizer")
    return [storage.join(tokenizer, "vocab.txt"), storage.join(tokenizer, "tokenizer_config.json"),
            storage.join(model_dir, "labels.json"), storage.join(model_dir, "model_config.json")]


def _copy_assets(sources: list[str], assets: str) -> None:
    gfile.makedirs(assets)
    for source in sources:
        gfile.copy(source, storage.join(assets, os.path.basename(source)), overwrite=True)


def _write_warmup_request(path: str, length: int, names: tuple[str, ...]) -> None:
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(signature_name=SERVING_SIGNATURE))
    ones = np.ones([1, length], np.int32)
    values = {"input_ids": ones, "input_mask": ones, "segment_ids": 0 * ones, "labeled_positions": ones}
    for name in names:
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values[name]))
    gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)).SerializeToString())
