"""The model a local server serves: BASE_PATH/<latest version> loaded the way tensorflow_model_server picks it,
and every request checked against its signatures before it reaches TensorFlow.

Checks come from the SavedModel's own SignatureDefs (input names, dtypes, ranks, fixed dimensions) plus what
the export contract adds for `serving_default` (one batch and length across inputs, ids within the vocabulary,
positions inside the sequence, lengths within the position table) and the server's limits (batch size). A failed
check is a RequestError with a message naming the tensor and what was expected; it becomes gRPC
INVALID_ARGUMENT or HTTP 400.

Example:
    model = ServedModel.load("build/demo/export", name="ner")
    outputs = model.predict("serving_default", {"input_ids": ids, "input_mask": mask, "segment_ids": segments,
                                                "labeled_positions": positions})
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.io import gfile

from data_prep import storage
from data_prep.errors import InputError
from export.contract import ASSETS_DIR, LABEL_IDS, LABELS_SIGNATURE, SERVING_SIGNATURE
from serving.versions import SAVED_MODEL, find_version

DEFAULT_MAX_BATCH = 256


class RequestError(ValueError):
    """A request the model cannot answer; `code` is the gRPC status name (INVALID_ARGUMENT, NOT_FOUND)."""

    def __init__(self, message: str, code: str = "INVALID_ARGUMENT"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class InputSpec:
    dtype: np.dtype
    shape: tuple  # None for an unknown dimension


class ServedModel:
    def __init__(self, name: str, version: int, path: str, max_batch: int = DEFAULT_MAX_BATCH):
        self.name, self.version, self.path, self.max_batch = name, version, path, max_batch
        self.signature_defs = _signature_defs(path)
        self.specs = {key: {alias: InputSpec(tf.dtypes.as_dtype(info.dtype).as_numpy_dtype,
                                             tuple(None if d.size < 0 else d.size for d in info.tensor_shape.dim))
                            for alias, info in signature.inputs.items()}
                      for key, signature in self.signature_defs.items()}
        self.model_config = storage.read_json(storage.join(path, ASSETS_DIR, "model_config.json"), "--model-base-path")
        self.labels = storage.read_json(storage.join(path, ASSETS_DIR, "labels.json"), "--model-base-path")["labels"]
        self._loaded = tf.saved_model.load(path)

    @classmethod
    def load(cls, base_path: str, name: str, max_batch: int = DEFAULT_MAX_BATCH) -> "ServedModel":
        version, path = find_version(base_path)
        return cls(name, version, path, max_batch)

    def predict(self, signature_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        signature_name = signature_name or SERVING_SIGNATURE
        self.validate(signature_name, inputs)
        function = self._loaded.signatures[signature_name]
        try:
            outputs = function(**{alias: tf.constant(value) for alias, value in inputs.items()})
        except tf.errors.InvalidArgumentError as error:
            raise RequestError(error.message.splitlines()[0]) from None
        return {alias: tensor.numpy() for alias, tensor in outputs.items()}

    def validate(self, signature_name: str, inputs: dict[str, np.ndarray]) -> None:
        if signature_name not in self.specs:
            raise RequestError(f"Serving signature name: {signature_name!r} not found in signature def (have: "
                               f"{', '.join(sorted(self.specs))})")
        specs = self.specs[signature_name]
        missing, extra = sorted(set(specs) - set(inputs)), sorted(set(inputs) - set(specs))
        if missing or extra:
            raise RequestError(f"signature {signature_name} takes inputs {', '.join(sorted(specs))}; "
                               + (f"missing {', '.join(missing)}" if missing else "")
                               + ("; " if missing and extra else "") + (f"unexpected {', '.join(extra)}" if extra else ""))
        for alias, spec in specs.items():
            _check_tensor(alias, inputs[alias], spec)
        if signature_name == SERVING_SIGNATURE:
            self._check_model_inputs(inputs)
        elif signature_name == LABELS_SIGNATURE:
            _check_range(LABEL_IDS, inputs[LABEL_IDS], 0, len(self.labels))

    def _check_model_inputs(self, inputs: dict[str, np.ndarray]) -> None:
        """The tagger's inputs, or the classifier's (the same without labeled_positions)."""
        ids = inputs["input_ids"]
        batch, length = ids.shape
        for alias in ("input_mask", "segment_ids"):
            if inputs[alias].shape != ids.shape:
                raise RequestError(f"{alias} has shape {list(inputs[alias].shape)}, input_ids {list(ids.shape)}; "
                                   "they must match")
        positions = inputs.get("labeled_positions")
        if positions is not None and positions.shape[0] != batch:
            raise RequestError(f"labeled_positions has batch size {positions.shape[0]}, input_ids {batch}")
        if batch == 0 or length == 0:
            raise RequestError(f"empty input: input_ids has shape {list(ids.shape)}")
        if batch > self.max_batch:
            raise RequestError(f"batch of {batch} sequences exceeds this server's limit of {self.max_batch}")
        model = self.model_config["model"]
        if length > model["max_position_embeddings"]:
            raise RequestError(f"sequence length {length} exceeds the model's {model['max_position_embeddings']} "
                               "positions (split long texts into windows, as the client does)")
        _check_range("input_ids", ids, 0, model["vocab_size"])
        _check_range("input_mask", inputs["input_mask"], 0, 2)
        _check_range("segment_ids", inputs["segment_ids"], 0, model["type_vocab_size"])
        if positions is not None:
            _check_range("labeled_positions", positions, 0, length)


def _check_tensor(alias: str, value: np.ndarray, spec: InputSpec) -> None:
    if value.dtype != spec.dtype:
        raise RequestError(f"input {alias}: expected {tf.dtypes.as_dtype(spec.dtype).name}, got "
                           f"{_dtype_name(value.dtype)}")
    if value.ndim != len(spec.shape):
        raise RequestError(f"input {alias}: expected rank {len(spec.shape)} (shape "
                           f"{[-1 if d is None else d for d in spec.shape]}), got shape {list(value.shape)}")
    for got, expected in zip(value.shape, spec.shape):
        if expected is not None and got != expected:
            raise RequestError(f"input {alias}: expected shape {list(spec.shape)}, got {list(value.shape)}")


def _check_range(alias: str, value: np.ndarray, low: int, high: int) -> None:
    if value.size and (value.min() < low or value.max() >= high):
        raise RequestError(f"input {alias}: values must lie in [{low}, {high - 1}], got {value.min()}..{value.max()}")


def _dtype_name(dtype: np.dtype) -> str:
    try:
        return tf.dtypes.as_dtype(dtype).name
    except TypeError:
        return str(dtype)


def _signature_defs(path: str) -> dict:
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString(gfile.GFile(storage.join(path, SAVED_MODEL), "rb").read())
    graph = next((g for g in saved_model.meta_graphs if "serve" in g.meta_info_def.tags), None)
    if graph is None:
        raise InputError(f"{path}: no MetaGraph tagged 'serve'")
    return {key: value for key, value in graph.signature_def.items() if not key.startswith("__")}
