"""TF Serving's gRPC API over a model's versions: PredictionService.Predict and GetModelMetadata,
ModelService.GetModelStatus, with TF Serving's request and response messages (tensorflow-serving-api).

Every handler turns a RequestError into its status code (INVALID_ARGUMENT, NOT_FOUND) with the message, and
anything unexpected into INTERNAL, so one bad request never takes the server down.

Example:
    server = grpc.server(futures.ThreadPoolExecutor(8))
    add_services(server, versions)      # a started ModelVersions
"""

import logging

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc, status_pb2)

from export.contract import SERVING_SIGNATURE
from serving.model_versions import ModelVersions
from serving.served_model import RequestError, ServedModel

log = logging.getLogger(__name__)

# No request may make the server allocate more than this many elements for one input tensor.
MAX_INPUT_ELEMENTS = 16 * 1024 * 1024


def add_services(server: grpc.Server, versions: ModelVersions) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(versions), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(versions), server)


def _answer(context, handler, request):
    """Runs `handler(request)`; errors become gRPC statuses (abort raises, so it stays outside the try)."""
    try:
        return handler(request)
    except RequestError as error:
        code, message = grpc.StatusCode[error.code], str(error)
    except Exception as error:  # a bug must cost one request, not the server
        log.exception("request failed")
        code, message = grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}: {error}"
    context.abort(code, message)


def _requested_version(spec: model_pb2.ModelSpec) -> int | None:
    if spec.WhichOneof("version_choice") == "version_label":
        raise RequestError("version labels are not supported by this server; give a version number", "NOT_FOUND")
    return spec.version.value if spec.HasField("version") else None


def _model_spec(model: ServedModel, signature_name: str = "") -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=model.name, signature_name=signature_name)
    spec.version.value = model.version
    return spec


def tensor_to_array(alias: str, proto: tensor_pb2.TensorProto) -> np.ndarray:
    """A request TensorProto as an array, refusing shapes that would allocate more than MAX_INPUT_ELEMENTS."""
    dims = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank or any(d < 0 for d in dims):
        raise RequestError(f"input {alias}: tensor_shape must be fully known, got {dims}")
    if int(np.prod(dims, dtype=np.float64)) > MAX_INPUT_ELEMENTS:
        raise RequestError(f"input {alias}: shape {dims} exceeds this server's limit of {MAX_INPUT_ELEMENTS} elements")
    try:
        return tf.make_ndarray(proto)
    except Exception as error:
        raise RequestError(f"input {alias}: not a valid TensorProto ({str(error).splitlines()[0]})") from None


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, versions: ModelVersions):
        self.versions = versions

    def Predict(self, request, context):
        return _answer(context, self._predict, request)

    def GetModelMetadata(self, request, context):
        return _answer(context, self._metadata, request)

    def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        model = self.versions.model(request.model_spec.name, _requested_version(request.model_spec))
        signature = request.model_spec.signature_name or SERVING_SIGNATURE
        inputs = {alias: tensor_to_array(alias, proto) for alias, proto in request.inputs.items()}
        outputs = model.predict(signature, inputs)
        wanted = list(request.output_filter) or list(outputs)
        unknown = sorted(set(wanted) - set(outputs))
        if unknown:
            raise RequestError(f"output_filter: no output {', '.join(unknown)} in signature {signature}")
        response = predict_pb2.PredictResponse(model_spec=_model_spec(model, signature))
        for alias in wanted:
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(outputs[alias]))
        return response

    def _metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest):
        model = self.versions.model(request.model_spec.name, _requested_version(request.model_spec))
        if list(request.metadata_field) != ["signature_def"]:
            raise RequestError(f"metadata_field must be ['signature_def'], got {list(request.metadata_field)}")
        response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=_model_spec(model))
        response.metadata["signature_def"].Pack(
            get_model_metadata_pb2.SignatureDefMap(signature_def=model.signature_defs))
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, versions: ModelVersions):
        self.versions = versions

    def GetModelStatus(self, request, context):
        return _answer(context, self._status, request)

    def _status(self, request: get_model_status_pb2.GetModelStatusRequest):
        statuses = self.versions.statuses(request.model_spec.name, _requested_version(request.model_spec))
        return get_model_status_pb2.GetModelStatusResponse(model_version_status=[
            get_model_status_pb2.ModelVersionStatus(
                version=status.version, state=get_model_status_pb2.ModelVersionStatus.State.Value(status.state),
                status=status_pb2.StatusProto(error_code=error_codes_pb2.UNKNOWN if status.error else error_codes_pb2.OK,
                                              error_message=status.error))
            for status in statuses])
