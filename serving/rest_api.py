"""TF Serving's REST API over a model's versions, on the standard library's threading HTTP server.

    GET  /v1/models/NAME[/versions/N]              version states (every version seen, or the one named)
    GET  /v1/models/NAME[/versions/N]/metadata     signature defs (the gRPC metadata as JSON)
    POST /v1/models/NAME[/versions/N]:predict      {"instances": [...]} (row) or {"inputs": {...}} (columnar)

JSON follows TF Serving's rules: row format lists one object per example (or bare values for a one-input
signature) and answers {"predictions": [...]}; columnar format names whole tensors and answers {"outputs": ...};
an output or input of its own is unwrapped when it is the only one. Errors answer {"error": "..."} with HTTP 400
(bad request), 404 (unknown model, version or path), 408 (body stalled), 413 (body too large) or 500,
and the connection is closed. A request's body is read before any answer, so a client still sending it gets the
answer instead of a connection reset.

Example:
    server = make_rest_server(versions, "127.0.0.1", 8501); server.serve_forever()   # a started ModelVersions
"""

import http.server
import json
import logging
import re
import socket
import time

import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from export.contract import SERVING_SIGNATURE
from serving.limits import MAX_MESSAGE_BYTES
from serving.model_versions import ModelVersions, VersionStatus
from serving.served_model import InputSpec, RequestError, ServedModel

log = logging.getLogger(__name__)

ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<suffix>/metadata|:predict)?/?$")
HTTP_STATUS = {"INVALID_ARGUMENT": 400, "NOT_FOUND": 404, "DEADLINE_EXCEEDED": 408, "RESOURCE_EXHAUSTED": 413}
# Seconds a client may pause while sending a request; without a limit, one that announces more body than it
# sends holds a server thread forever.
SOCKET_TIMEOUT = 30
# Seconds to keep reading (and discarding) a body that was refused unread, so its sender can receive the answer.
LINGER_SECONDS = 5


def make_rest_server(versions: ModelVersions, host: str, port: int) -> http.server.ThreadingHTTPServer:
    handler = type("Handler", (RestHandler,), {"versions": versions})
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def parse_predict_body(body: bytes, model: ServedModel) -> tuple[str, dict[str, np.ndarray], bool]:
    """(signature name, input arrays, row format?) from a :predict body, by TF Serving's JSON rules."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise RequestError(f"JSON Parse error: {error}") from None
    if not isinstance(request, dict):
        raise RequestError("JSON request must be an object with 'instances' or 'inputs'")
    signature = request.get("signature_name", "")
    if signature == "":  # absent or empty means the default, as in TF Serving and its gRPC API
        signature = SERVING_SIGNATURE
    if not isinstance(signature, str) or signature not in model.specs:
        raise RequestError(f"Serving signature name: {signature!r} not found in signature def (have: "
                           f"{', '.join(sorted(model.specs))})")
    specs = model.specs[signature]
    if ("instances" in request) == ("inputs" in request):
        raise RequestError("JSON request must have exactly one of 'instances' (row format) or 'inputs' (columnar)")
    if "instances" in request:
        return signature, _rows_to_arrays(request["instances"], specs), True
    columns = request["inputs"]
    if not isinstance(columns, dict):
        if len(specs) != 1:
            raise RequestError(f"'inputs' must name the signature's inputs: {', '.join(sorted(specs))}")
        columns = {next(iter(specs)): columns}
    return signature, {alias: _to_array(alias, value, specs.get(alias)) for alias, value in columns.items()}, False


def _rows_to_arrays(instances, specs: dict[str, InputSpec]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise RequestError("'instances' must be a non-empty list")
    if not all(isinstance(row, dict) for row in instances):
        if len(specs) != 1:
            raise RequestError(f"each instance must be an object naming the inputs {', '.join(sorted(specs))}")
        instances = [{next(iter(specs)): row} for row in instances]
    names = set(instances[0])
    if any(set(row) != names for row in instances):
        raise RequestError("every instance must name the same inputs")
    return {alias: _to_array(alias, [row[alias] for row in instances], specs.get(alias)) for alias in names}


def _to_array(alias: str, value, spec: InputSpec | None) -> np.ndarray:
    """A JSON value as an array of the input's dtype: numbers must be integers for integer inputs, and nested
    lists rectangular; anything else is a RequestError naming the input."""
    try:
        array = np.asarray(value)
        ragged = array.dtype == object
    except (ValueError, RecursionError):
        ragged = True
    if ragged:
        raise RequestError(f"input {alias}: nested lists must be rectangular numbers (all rows the same length)")
    if spec is None:
        return array
    if array.size == 0:
        return array.astype(spec.dtype)
    if np.issubdtype(spec.dtype, np.integer):
        if array.dtype.kind not in "iu":
            got = "booleans" if array.dtype.kind == "b" else f"{array.dtype.name} values"
            raise RequestError(f"input {alias}: expected integers, got {got}")
        info = np.iinfo(spec.dtype)
        if array.min() < info.min or array.max() > info.max:
            raise RequestError(f"input {alias}: values out of {np.dtype(spec.dtype).name} range")
    elif array.dtype.kind not in "iuf":
        raise RequestError(f"input {alias}: expected numbers, got {array.dtype.name} values")
    return array.astype(spec.dtype)


def _jsonable(value: np.ndarray):
    if value.dtype.kind in "SO":
        return np.vectorize(lambda b: b.decode("utf-8") if isinstance(b, bytes) else b, otypes=[object])(
            value).tolist() if value.size else value.tolist()
    return value.tolist()


def predict_response(outputs: dict[str, np.ndarray], row_format: bool) -> dict:
    if not row_format:
        columns = {alias: _jsonable(v) for alias, v in outputs.items()}
        return {"outputs": next(iter(columns.values())) if len(columns) == 1 else columns}
    columns = {alias: _jsonable(v) for alias, v in outputs.items()}
    rows = len(next(iter(columns.values())))
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    return {"predictions": [{alias: column[i] for alias, column in columns.items()} for i in range(rows)]}


def metadata_response(model: ServedModel) -> dict:
    signature_map = get_model_metadata_pb2.SignatureDefMap(signature_def=model.signature_defs)
    return {"model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
            "metadata": {"signature_def": json_format.MessageToDict(signature_map, preserving_proto_field_name=True,
                                                                    always_print_fields_with_no_presence=True)}}


def status_response(statuses: list[VersionStatus]) -> dict:
    return {"model_version_status": [{"version": str(status.version), "state": status.state,
                                      "status": {"error_code": "UNKNOWN" if status.error else "OK",
                                                 "error_message": status.error}} for status in statuses]}


class RestHandler(http.server.BaseHTTPRequestHandler):
    versions: ModelVersions
    server_version = "electra-ja-serving"
    timeout = SOCKET_TIMEOUT

    def do_GET(self):
        self._answer(self._get, method="GET")

    def do_POST(self):
        self._answer(self._predict, method="POST")

    def _get(self, name: str, version: int | None, suffix: str | None, body: bytes) -> dict:
        if suffix == "/metadata":
            return metadata_response(self.versions.model(name, version))
        return status_response(self.versions.statuses(name, version))

    def _predict(self, name: str, version: int | None, suffix: str | None, body: bytes) -> dict:
        model = self.versions.model(name, version)  # one version answers the whole request
        signature, inputs, row_format = parse_predict_body(body, model)
        return predict_response(model.predict(signature, inputs), row_format)

    def _body(self, method: str) -> bytes:
        """The whole body, bounded by MAX_MESSAGE_BYTES; on refusal `self._unread` says the client may still send."""
        length = self.headers.get("Content-Length")
        if length is None and method == "GET":
            return b""
        self._unread = True
        if length is None or not length.isdigit():
            raise RequestError("a Content-Length header is required")
        if int(length) > MAX_MESSAGE_BYTES:
            raise RequestError(f"request body of {length} bytes exceeds this server's limit of {MAX_MESSAGE_BYTES}",
                               "RESOURCE_EXHAUSTED")
        try:
            body = self.rfile.read(int(length))
        except TimeoutError:
            raise RequestError(f"request body: no data for {self.timeout} s before all {length} bytes arrived",
                               "DEADLINE_EXCEEDED") from None
        self._unread = False
        return body

    def _answer(self, handler, method: str):
        self.close_connection, self._unread = True, False
        try:
            body = self._body(method)
            route = ROUTE.match(self.path)
            if route is None or (method == "GET") == (route["suffix"] == ":predict"):
                raise RequestError(f"{method} {self.path}: no such endpoint (see TF Serving's REST API)", "NOT_FOUND")
            version = int(route["version"]) if route["version"] else None
            status, reply = 200, handler(route["name"], version, route["suffix"], body)
        except RequestError as error:
            status, reply = HTTP_STATUS.get(error.code, 400), {"error": str(error)}
        except Exception as error:  # a bug must cost one request, not the server
            log.exception("request failed")
            status, reply = 500, {"error": f"internal error: {type(error).__name__}: {error}"}
        payload = json.dumps(reply, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        if self._unread:
            self._discard_unread()

    def _discard_unread(self) -> None:
        """Closing a socket with unread data sends a reset, which can destroy the answer before the client reads
        it; so the answer is followed by our FIN and what the client still sends is read and dropped, for a while."""
        deadline = time.monotonic() + LINGER_SECONDS
        try:
            self.connection.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(1 << 16):
                    return
        except OSError:
            return  # the client left or stalled; either way there is nothing more to do for it

    def log_message(self, format, *args):
        log.debug("%s " + format, self.address_string(), *args)
