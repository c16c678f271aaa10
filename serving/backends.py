"""Where request tensors go: an in-process SavedModel, a TF Serving gRPC endpoint, or its REST endpoint (row or
columnar JSON). All three answer `predict(inputs) -> (chunk_predictions, chunk_probs)` and `label_names()`,
which over a server comes from the model metadata (num_labels) and the `labels` signature; `close()` releases
the connection, if any.

Example:
    backend = GrpcBackend("127.0.0.1:8500", "ner")
    predictions, probabilities = backend.predict(pad_batch(windows))
"""

import http.client
import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2, predict_pb2, prediction_service_pb2_grpc

from data_prep.errors import InputError
from export.contract import LABEL_IDS, LABEL_NAMES, LABELS_SIGNATURE, SERVING_SIGNATURE, TAGGER_OUTPUTS
from serving.limits import MAX_MESSAGE_BYTES
from serving.versions import find_version


class ServerError(InputError):
    """The server refused or could not be reached; the message says which and why."""


class Backend:
    def close(self) -> None:
        """Holds no connection; GrpcBackend overrides this to close its channel."""


class SavedModelBackend(Backend):
    def __init__(self, base_path: str, outputs: tuple[str, str] = TAGGER_OUTPUTS):
        self.outputs = outputs  # (predictions, probabilities) names: the tagger's or the classifier's
        _, self.path = find_version(base_path)
        self._model = tf.saved_model.load(self.path)
        self._serve = self._model.signatures[SERVING_SIGNATURE]

    def predict(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        outputs = self._serve(**{name: tf.constant(value) for name, value in inputs.items()})
        return outputs[self.outputs[0]].numpy(), outputs[self.outputs[1]].numpy()

    def label_names(self) -> list[str]:
        count = self._serve.structured_outputs[self.outputs[1]].shape[-1]
        names = self._model.signatures[LABELS_SIGNATURE](**{LABEL_IDS: tf.range(count, dtype=tf.int32)})
        return [name.decode("utf-8") for name in names[LABEL_NAMES].numpy()]


class GrpcBackend(Backend):
    def __init__(self, address: str, model_name: str, timeout: float = 60.0,
                 outputs: tuple[str, str] = TAGGER_OUTPUTS):
        self.address, self.model_name, self.timeout, self.outputs = address, model_name, timeout, outputs
        self._channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                                                                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def predict(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        outputs = self._call(SERVING_SIGNATURE, inputs)
        return outputs[self.outputs[0]], outputs[self.outputs[1]]

    def label_names(self) -> list[str]:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model_pb2.ModelSpec(name=self.model_name), metadata_field=["signature_def"])
        signatures = get_model_metadata_pb2.SignatureDefMap()
        self._rpc(self._stub.GetModelMetadata, request).metadata["signature_def"].Unpack(signatures)
        count = signatures.signature_def[SERVING_SIGNATURE].outputs[self.outputs[1]].tensor_shape.dim[-1].size
        names = self._call(LABELS_SIGNATURE, {LABEL_IDS: np.arange(count, dtype=np.int32)})[LABEL_NAMES]
        return [name.decode("utf-8") for name in names]

    def _call(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=self.model_name,
                                                                            signature_name=signature))
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        response = self._rpc(self._stub.Predict, request)
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def _rpc(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            details = _one_line(error.details() or "")
            raise ServerError(f"--server {self.address} (gRPC): {error.code().name}: {details}") from None

    def close(self) -> None:
        self._channel.close()


class RestBackend(Backend):
    def __init__(self, address: str, model_name: str, columnar: bool = False, timeout: float = 60.0,
                 outputs: tuple[str, str] = TAGGER_OUTPUTS):
        self.url = f"http://{address}/v1/models/{model_name}"
        self.address, self.columnar, self.timeout, self.outputs = address, columnar, timeout, outputs

    def predict(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        outputs = self._call(SERVING_SIGNATURE, inputs)
        return np.asarray(outputs[self.outputs[0]], np.int64), np.asarray(outputs[self.outputs[1]], np.float32)

    def label_names(self) -> list[str]:
        metadata = self._request(f"{self.url}/metadata")
        serving = metadata["metadata"]["signature_def"]["signature_def"][SERVING_SIGNATURE]
        count = int(serving["outputs"][self.outputs[1]]["tensor_shape"]["dim"][-1]["size"])
        return list(self._call(LABELS_SIGNATURE, {LABEL_IDS: np.arange(count, dtype=np.int32)})[LABEL_NAMES])

    def _call(self, signature: str, inputs: dict[str, np.ndarray]) -> dict:
        if self.columnar:
            reply = self._request(f"{self.url}:predict", {"signature_name": signature,
                                                          "inputs": {k: v.tolist() for k, v in inputs.items()}})
            outputs = reply["outputs"]
            return outputs if isinstance(outputs, dict) else {_only_output(signature, self.outputs[0]): outputs}
        rows = len(next(iter(inputs.values())))
        instances = [{k: v[i].tolist() for k, v in inputs.items()} for i in range(rows)]
        if len(inputs) == 1:
            instances = [row[next(iter(inputs))] for row in instances]
        predictions = self._request(f"{self.url}:predict", {"signature_name": signature,
                                                            "instances": instances})["predictions"]
        if predictions and isinstance(predictions[0], dict):
            return {name: [row[name] for row in predictions] for name in predictions[0]}
        return {_only_output(signature, self.outputs[0]): predictions}

    def _request(self, url: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = response.read()
        except urllib.error.HTTPError as error:
            raise ServerError(f"--server {self.address} (REST): HTTP {error.code}: {_error_text(error)}") from None
        except (urllib.error.URLError, OSError) as error:
            raise ServerError(f"--server {self.address} (REST): {getattr(error, 'reason', error)}") from None
        except http.client.BadStatusLine:
            raise ServerError(f"--server {self.address} (REST): not an HTTP/1.x reply; is this TF Serving's REST port "
                              "(8501), not its gRPC port?") from None
        except http.client.HTTPException as error:
            raise ServerError(f"--server {self.address} (REST): broken reply ({type(error).__name__})") from None
        try:
            return json.loads(reply)
        except ValueError:
            raise ServerError(f"--server {self.address} (REST): the reply is not JSON: "
                              f"{reply[:100].decode('utf-8', 'replace')!r}") from None


def _only_output(signature: str, predictions: str) -> str:
    return LABEL_NAMES if signature == LABELS_SIGNATURE else predictions


def _error_text(error: urllib.error.HTTPError) -> str:
    body = error.read()
    try:
        return _one_line(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError, AttributeError):  # not TF Serving's {"error": "..."}: an HTML page?
        return _one_line(body.decode("utf-8", "replace"))[:500]


def _one_line(text: str) -> str:
    """Server messages span lines (TF Serving appends "\\n\\t [[{{node ...}}]]", other servers send HTML pages); the
    user gets one line."""
    return " ".join(text.split())
