"""The local TF-Serving-compatible server against the in-process SavedModel: same answers over gRPC and REST,
offsets that round-trip on all of GSD test, concurrent clients, and a flood of bad requests that each get a
clear error while the server keeps serving."""

import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import unicodedata
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format, text_format
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)
from tensorflow_serving.config import model_server_config_pb2

from data_prep.console import registered_commands, run
from data_prep.errors import InputError
from data_prep.gsd import load_split
from serving.backends import Backend, SavedModelBackend
from serving.client import EntityClient
from serving.features import pad_batch, sentence_spans, text_windows
from serving.limits import MAX_MESSAGE_BYTES
from serving.model_versions import ModelVersions
from serving.rest_api import make_rest_server
from serving.served_model import ServedModel
from serving.server import ModelServer
from tests.conftest import GSD_DIR, REPO

SEED_SENTENCE = "ノルウェーの劇作家ヘンリック・イプセンの劇詩『ペール・ギュント』の登場人物に因んで命名された。"
SPACED_SENTENCE = "三代目 J SOUL BROTHERSが　東京ドームで 公演した。"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, JSON reply) of one real HTTP request to 127.0.0.1:port."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.putrequest(method, path)
        for key, value in {"Content-Length": str(len(body or b"")), **(headers or {})}.items():
            connection.putheader(key, value)
        connection.endheaders()
        connection.send(body or b"")
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def server(export_dir):
    with ModelVersions(export_dir, "ner") as versions, \
            ModelServer(versions, grpc_port=0, rest_port=free_port()) as running:
        yield running


@pytest.fixture(scope="module")
def clients(server, export_dir):
    assets = f"{export_dir}/1/assets"
    return {"in-process": EntityClient.from_export(export_dir),
            **{protocol: EntityClient.for_server(f"127.0.0.1:{server.rest_port if 'rest' in protocol else server.grpc_port}",
                                                 protocol, "ner", assets)
               for protocol in ("grpc", "rest", "rest-columnar")}}


@pytest.fixture(scope="module")
def test_texts():
    return [s.text for s in load_split(str(GSD_DIR), "test")]


def test_grpc_and_rest_answer_what_the_in_process_model_answers(clients, test_texts):
    texts = test_texts[:60] + [SEED_SENTENCE, SPACED_SENTENCE]
    expected = clients["in-process"].predict(texts)
    assert sum(len(found) for found in expected) > 10
    for protocol in ("grpc", "rest", "rest-columnar"):
        assert clients[protocol].predict(texts) == expected, protocol
    batch = pad_batch([w for text in texts[:8] for w in text_windows(clients["grpc"].tokenizer, text, 64)])
    reference = clients["in-process"].backend.predict(batch)
    for protocol in ("grpc", "rest", "rest-columnar"):
        answer = clients[protocol].backend.predict(batch)
        np.testing.assert_array_equal(answer[0], reference[0])
        np.testing.assert_array_equal(answer[1], reference[1])
    assert clients["rest"].labels == clients["grpc"].labels == clients["in-process"].labels


def test_entity_offsets_round_trip_on_every_gsd_test_sentence(clients, test_texts):
    results = clients["grpc"].predict(test_texts)
    assert len(results) == 543 and sum(len(found) for found in results) > 100
    for text, found in zip(test_texts, results):
        for entity in found:
            assert text[entity["start"]:entity["end"]] == entity["text"] and entity["text"].strip() == entity["text"]


# MeCab, here as in BertJapaneseTokenizer, reads a text only up to its first NUL.
ODD_TEXTS = ["", "   ", "😀🎌🍣は美味しい。", "東京\x00\x07\x1b[31m大阪\u200b\ufeff", "東京\x07\x1b[31m大阪\u200b\ufeff",
             "ｶﾞｷﾞｸﾞ㍿ｹﾞ①", "東京都" * 3400, "a" * 10_000, "\n".join(["京都。"] * 500), "全角\u3000空白　と 半角 。\t京都"]


class EveryWordAnEntity(Backend):
    """Labels every word B-<first type>: each word becomes an entity, whatever a trained model would find."""

    def __init__(self, labels):
        self.labels = labels
        self.begin = next(i for i, label in enumerate(labels) if label.startswith("B-"))

    def predict(self, inputs):
        shape = inputs["labeled_positions"].shape
        begin = np.full(shape, self.begin, np.int64)
        return begin, np.eye(len(self.labels), dtype=np.float32)[begin]

    def label_names(self):
        return self.labels


@pytest.mark.parametrize("text", ODD_TEXTS)
def test_every_word_of_odd_texts_comes_back_once_with_offsets_to_its_characters(clients, text):
    tokenizer = clients["in-process"].tokenizer
    client = EntityClient(EveryWordAnEntity(clients["in-process"].labels), tokenizer, max_seq_length=16)
    [found] = client.predict([text])
    words = [(start + w.start, start + w.end, w.text)
             for start, end in sentence_spans(text) for w in tokenizer.encode(text[start:end]).words]
    assert [(e["start"], e["end"]) for e in found] == [(start, end) for start, end, _ in words]
    for start, end, normalized in words:
        assert normalized in unicodedata.normalize("NFKC", text[start:end]), (text[start:end], normalized)


@pytest.mark.parametrize("text", ODD_TEXTS)
def test_odd_texts_are_tagged_with_offsets_into_themselves(clients, text):
    for protocol in ("grpc", "rest"):
        [found] = clients[protocol].predict([text])
        assert all(text[e["start"]:e["end"]] == e["text"] for e in found)
    assert clients["grpc"].predict([text]) == clients["in-process"].predict([text])


def test_eight_concurrent_clients_send_200_requests_each(server, clients, test_texts):
    expected = dict(zip(test_texts[:50], clients["in-process"].predict(test_texts[:50])))
    failures = []

    def client_thread(index):
        client = clients["grpc" if index % 2 else "rest"]
        for i in range(200):
            text = test_texts[(index * 200 + i) % 50]
            try:
                if client.predict([text]) != [expected[text]]:
                    failures.append((index, i, "different answer"))
            except Exception as error:  # noqa: BLE001 - every failure is collected and reported
                failures.append((index, i, repr(error)))

    threads = [threading.Thread(target=client_thread, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def good_inputs(rows=2, length=12):
    ids = np.full([rows, length], 7, np.int32)
    return {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids),
            "labeled_positions": np.tile(np.arange(1, 5, dtype=np.int32), [rows, 1])}


def bad_tensor_inputs(rng):
    """(what, signature, inputs) triples: every way the tensors of a request can be wrong."""
    cases = []
    for name in ("input_ids", "input_mask", "segment_ids", "labeled_positions"):
        for dtype in (np.float32, np.float64, np.int64, np.int16, np.uint8, np.bool_, np.str_):
            inputs = good_inputs()
            inputs[name] = inputs[name].astype(dtype)
            cases.append((f"{name} as {np.dtype(dtype).name}", "serving_default", inputs))
        for shape in ([24], [2, 3, 4], [1, 1, 1, 24]):
            inputs = good_inputs()
            inputs[name] = np.resize(inputs[name], shape)
            cases.append((f"{name} of shape {shape}", "serving_default", inputs))
        inputs = good_inputs()
        del inputs[name]
        cases.append((f"missing {name}", "serving_default", inputs))
    for _ in range(60):
        inputs, rows, length = good_inputs(), int(rng.integers(1, 4)), int(rng.integers(2, 40))
        kind = rng.integers(9)
        if kind == 0:
            inputs = good_inputs(rows=int(rng.integers(257, 400)))
        elif kind == 1:
            inputs = good_inputs(rows, length=int(rng.integers(65, 3000)))
        elif kind == 2:
            inputs["input_ids"][0, 0] = int(rng.choice([-1, 4000, 2**31 - 1]))
        elif kind == 3:
            inputs["labeled_positions"][0, -1] = int(rng.choice([-5, 12, 1000]))
        elif kind == 4:
            inputs["segment_ids"][:] = int(rng.integers(2, 100))
        elif kind == 5:
            inputs["input_mask"] = np.ones([rows + 1, length], np.int32)
        elif kind == 6:
            inputs = {k: v[:0] for k, v in good_inputs().items()}
        elif kind == 7:
            inputs["bogus"] = np.zeros([2, 2], np.int32)
        else:
            inputs["labeled_positions"] = inputs["labeled_positions"][:1]
        cases.append((f"random case {kind}", "serving_default", inputs))
    cases.append(("unknown signature", "classify", good_inputs()))
    cases.append(("labels out of range", "labels", {"label_ids": np.array([0, 45], np.int32)}))
    cases.append(("labels of rank 2", "labels", {"label_ids": np.zeros([1, 2], np.int32)}))
    return cases


def predict_request(inputs: dict[str, np.ndarray], signature: str = "") -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="ner", signature_name=signature))
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def grpc_bad_requests(rng, tokenizer):
    """(what, request, a fragment its error must contain, or "" where any clear error will do)."""
    requests = [(what, predict_request(inputs, signature), "") for what, signature, inputs in bad_tensor_inputs(rng)]
    # One fault each in an otherwise valid request, so the error must be about that fault.
    for what, change, fragment in (
            ("wrong model", lambda r: setattr(r.model_spec, "name", "other"), "model 'other'"),
            ("wrong version", lambda r: r.model_spec.version.__setattr__("value", 7), "Specific(ner, 7)"),
            ("version 0", lambda r: r.model_spec.version.__setattr__("value", 0), "Specific(ner, 0)"),
            ("version label", lambda r: setattr(r.model_spec, "version_label", "stable"), "version labels"),
            ("content of the wrong size", lambda r: r.inputs["input_ids"].__setattr__(
                "tensor_content", b"\x01\x02\x03"), "input input_ids: not a valid TensorProto"),
            ("a shape claiming 10^12 elements", lambda r: r.inputs["input_mask"].tensor_shape.dim[0]
             .__setattr__("size", 10**6) or r.inputs["input_mask"].tensor_shape.dim[1].__setattr__("size", 10**6),
             "input input_mask: shape [1000000, 1000000] exceeds"),
            ("an unknown output filter", lambda r: r.output_filter.append("logits"),
             "output_filter: no output logits in signature serving_default")):
        request = predict_request(good_inputs())
        change(request)
        requests.append((what, request, fragment))
    # Text a client forgot to window: one row of 10k characters' WordPieces.
    for text, fragment in (("東京" * 5000, "exceeds the model's"), ("😀" * 10_000, "exceeds the model's"),
                           ("\x00\x01" * 5000, "empty input")):  # control characters have no WordPieces
        ids = np.array([tokenizer.encode(text).token_ids[:20_000]], np.int32)
        requests.append(("unwindowed 10k-character text", predict_request(
            {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids),
             "labeled_positions": np.zeros_like(ids)}), fragment))
    return requests


def rest_bad_requests(rng):
    """(what, method, path, body bytes, extra headers) for the REST API."""
    good = {"instances": [{k: v[0].tolist() for k, v in good_inputs().items()}]}
    cases = []
    body = json.dumps(good).encode()
    for cut in sorted(set(rng.integers(1, len(body) - 1, 40).tolist())):
        cases.append(("truncated JSON", "POST", "/v1/models/ner:predict", body[:cut], {}))
    for value in ([], "x", 1, None, {}, {"instances": []}, {"instances": 3}, {"inputs": 3},
                  {"instances": [1, 2]}, {"inputs": {}, "instances": []}, {"signature_name": 5, "inputs": {}}, {"signature_name": 0, "inputs": {}},
                  {"signature_name": "nope", "inputs": {}},
                  {"instances": [{"input_ids": [1, 2]}, {"input_mask": [1, 2]}]},
                  {"inputs": {"input_ids": [[1, 2], [3]]}}, {"inputs": {"input_ids": "😀\x00\u202e"}},
                  {"inputs": {k: [[True, False]] for k in good_inputs()}},
                  {"inputs": {k: [[1.5, 2.0]] for k in good_inputs()}},
                  {"inputs": {k: [["1", "2"]] for k in good_inputs()}},
                  {"inputs": {k: [[2**40]] for k in good_inputs()}}):
        cases.append((f"body {value!r:.40}", "POST", "/v1/models/ner:predict", json.dumps(value).encode(), {}))
    cases.append(("deep nesting", "POST", "/v1/models/ner:predict", b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000
                  + b"}", {}))
    cases.append(("not UTF-8", "POST", "/v1/models/ner:predict", b'{"inputs": "\xff\xfe"}', {}))
    for what, signature, inputs in bad_tensor_inputs(rng):
        # JSON numbers carry no width, so other integer dtypes are not errors there.
        if any(v.dtype.kind == "U" or (v.dtype.kind in "iu" and v.dtype != np.int32) or v.size > 200_000
               for v in inputs.values()):
            continue
        columnar = {"signature_name": signature, "inputs": {k: v.tolist() for k, v in inputs.items()}}
        cases.append((what, "POST", "/v1/models/ner:predict", json.dumps(columnar).encode(), {}))
    for method, path in (("GET", "/v1/models/ner:predict"), ("POST", "/v1/models/ner/metadata"),
                         ("GET", "/v1/models/other"), ("GET", "/v1/models/ner/versions/9"), ("GET", "/"),
                         ("POST", "/v1/models/ner/versions/9:predict"), ("GET", "/v1/models/ner/labels/x"),
                         ("POST", "/v1/models/ner:classify"), ("GET", "/v1/models/ner/versions/0"),
                         ("POST", "/v1/models/ner/versions/0:predict")):
        cases.append((f"{method} {path}", method, path, body if method == "POST" else None, {}))
    cases.append(("claimed 1 GB body", "POST", "/v1/models/ner:predict", body, {"Content-Length": str(2**30)}))
    return cases


def test_a_thousand_bad_requests_each_get_a_clear_error_and_the_server_survives(server, clients):
    rng = np.random.default_rng(0)
    grpc_cases = grpc_bad_requests(rng, clients["grpc"].tokenizer)
    rest_cases = rest_bad_requests(rng)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}",
                                    options=[("grpc.max_send_message_length", 64 * 1024 * 1024)])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    answered = 0
    for round_ in range(4):
        for what, request, fragment in grpc_cases:
            with pytest.raises(grpc.RpcError) as raised:
                stub.Predict(request, timeout=60)
            code, details = raised.value.code(), raised.value.details()
            assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), (what, code, details)
            assert details and "Traceback" not in details and fragment in details, (what, details)
            answered += 1
        for what, method, path, body, headers in rest_cases:
            status, reply = http_request(server.rest_port, method, path, body, headers)
            assert status in (400, 404, 413), (what, status, reply)
            assert isinstance(reply["error"], str) and reply["error"], what
            answered += 1
    assert answered >= 1000
    assert clients["grpc"].predict([SEED_SENTENCE]) == clients["in-process"].predict([SEED_SENTENCE])
    assert clients["rest"].predict([SEED_SENTENCE]) == clients["in-process"].predict([SEED_SENTENCE])


def test_shipped_tf_serving_config_parses():
    config = text_format.Parse((REPO / "serving" / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    assert [c.name for c in config.model_config_list.config] == ["ner"]


@pytest.mark.parametrize("mode, program, expected", [
    ("binary", "tensorflow_model_server",
     ["--port=8500", "--rest_api_port=8501", "--model_name=ner", "--model_base_path={base}"]),
    ("docker", "docker", ["run", "--rm", "-p", "8500:8500", "-p", "8501:8501", "-v", "{base}:/models/ner:ro", "-v",
                          f"{REPO / 'serving'}:/config:ro", "tensorflow/serving:latest",
                          "--model_config_file=/config/models.config"]),
])
def test_tf_serving_script_starts_it_without_server_side_batching(tmp_path, mode, program, expected):
    """TF Serving pads merged requests with each tensor's first element, which corrupts our variable-length
    inputs, so the script must not turn batching on; a user's own server flags (thread pools) go on after ours.
    The program it runs is a stand-in that records its argv."""
    bin_dir, base = tmp_path / "bin", tmp_path / "export"
    bin_dir.mkdir()
    base.mkdir()
    (bin_dir / program).write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\n')
    (bin_dir / program).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("TF_SERVING_IMAGE", None)
    user_flags = ["--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=2"]
    subprocess.run(["sh", str(REPO / "serving" / "tensorflow_model_server.sh"), mode, str(base), *user_flags], env=env,
                   check=True, timeout=60)
    assert (tmp_path / "argv").read_text().splitlines() == [a.format(base=base) for a in expected] + user_flags


def test_only_a_request_without_a_version_means_the_latest(server):
    assert http_request(server.rest_port, "GET", "/v1/models/ner")[0] == 200
    assert http_request(server.rest_port, "GET", "/v1/models/ner/versions/1")[0] == 200
    status, reply = http_request(server.rest_port, "GET", "/v1/models/ner/versions/0")
    assert status == 404 and reply["error"] == "Could not find version 0 of model ner"
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        spec = model_pb2.ModelSpec(name="ner")
        spec.version.value = 0
        with pytest.raises(grpc.RpcError) as raised:
            model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                get_model_status_pb2.GetModelStatusRequest(model_spec=spec), timeout=60)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_empty_signature_name_means_serving_default(server):
    inputs = {k: v.tolist() for k, v in good_inputs().items()}
    default = http_request(server.rest_port, "POST", "/v1/models/ner:predict", json.dumps({"inputs": inputs}).encode())
    empty = http_request(server.rest_port, "POST", "/v1/models/ner:predict",
                         json.dumps({"signature_name": "", "inputs": inputs}).encode())
    assert default[0] == empty[0] == 200 and empty == default


def test_rest_metadata_prints_default_valued_fields_like_tf_serving(server):
    status, reply = http_request(server.rest_port, "GET", "/v1/models/ner/metadata")
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
            get_model_metadata_pb2.GetModelMetadataRequest(model_spec=model_pb2.ModelSpec(name="ner"),
                                                           metadata_field=["signature_def"]), timeout=60)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert status == 200 and reply["metadata"]["signature_def"] == json_format.MessageToDict(
        signatures, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    serving_default = reply["metadata"]["signature_def"]["signature_def"]["serving_default"]
    shape = serving_default["inputs"]["input_ids"]["tensor_shape"]
    assert shape["unknown_rank"] is False and shape["dim"][0] == {"size": "-1", "name": ""}


def test_version_directories_keep_their_names_and_a_version_path_serves(export_dir, tmp_path):
    (tmp_path / "007").symlink_to(f"{export_dir}/1")
    (tmp_path / "3.tmp-1234").mkdir()  # not a version: an unfinished export's temporary name
    model = ServedModel.load(str(tmp_path), "ner")
    assert (model.version, model.path) == (7, f"{tmp_path}/007")
    assert SavedModelBackend(str(tmp_path)).path == f"{tmp_path}/007"
    model = ServedModel.load(f"{export_dir}/1", "ner")  # what `predict --model-base-path BASE/1` also accepts
    assert (model.version, model.path) == (1, f"{export_dir}/1")


def test_a_second_server_cannot_share_the_grpc_port(server):
    second = ModelServer(server.versions, grpc_port=server.grpc_port, rest_port=0)
    try:
        with pytest.raises(InputError, match=rf"--grpc-port {server.grpc_port}: cannot listen on .* \(in use"):
            second.start()
    finally:
        second.stop(grace=0)


def test_a_failed_start_leaves_no_port_bound(server):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken, grpc_port, rest_port = busy.getsockname()[1], free_port(), free_port()
        failed_rest = ModelServer(server.versions, grpc_port=grpc_port, rest_port=taken)
        with pytest.raises(InputError, match=f"--rest-port {taken}"):
            failed_rest.start()
        failed_grpc = ModelServer(server.versions, grpc_port=taken, rest_port=rest_port)
        with pytest.raises(InputError, match=f"--grpc-port {taken}"):
            failed_grpc.start()
    for port in (grpc_port, rest_port):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_a_client_used_as_a_context_manager_closes_its_channel(server, export_dir):
    with EntityClient.for_server(f"127.0.0.1:{server.grpc_port}", "grpc", "ner", f"{export_dir}/1/assets") as client:
        assert client.predict([SEED_SENTENCE])
    with pytest.raises(ValueError, match="closed channel"):
        client.backend.predict(good_inputs())


def test_a_client_that_stalls_mid_body_gets_408_instead_of_holding_a_thread(server):
    rest = make_rest_server(server.versions, "127.0.0.1", 0)
    rest.RequestHandlerClass.timeout = 1
    thread = threading.Thread(target=rest.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(rest.server_address, timeout=20) as client:
            client.sendall(b"POST /v1/models/ner:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                           b'{"inputs":')
            started, reply = time.monotonic(), b""
            while chunk := client.recv(65536):
                reply += chunk
        assert time.monotonic() - started < 10
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 408") and "100 bytes" in json.loads(body)["error"]
    finally:
        rest.shutdown()
        rest.server_close()


def test_refusals_reach_a_client_still_sending_a_large_body(server):
    large = b" " * (8 * 1024 * 1024)  # JSON whitespace: a body the server has to read to the end
    status, reply = http_request(server.rest_port, "POST", "/v1/models/other:predict", large)
    assert status == 404 and "model 'other'" in reply["error"]
    too_large = b" " * (MAX_MESSAGE_BYTES + 1)
    status, reply = http_request(server.rest_port, "POST", "/v1/models/ner:predict", too_large)
    assert status == 413 and f"limit of {MAX_MESSAGE_BYTES}" in reply["error"]


class CannedReply(http.server.BaseHTTPRequestHandler):
    """Answers every POST with `status` and `body`: a server that is not TF Serving, or TF Serving failing."""

    status, body = 200, b""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


MULTI_LINE_ERROR = "indices[0,3] = 99 is not in [0, 64)\n\t [[{{node GatherV2}}]]"
REST_REPLIES = {
    "html page": type("HtmlPage", (CannedReply,), {"body": b"<html></html>"}),
    "no POST at all": type("NoPost", (http.server.BaseHTTPRequestHandler,), {"log_message": CannedReply.log_message}),
    "multi-line error": type("TfError", (CannedReply,), {"status": 400, "body": json.dumps(
        {"error": MULTI_LINE_ERROR}).encode()}),
}


@pytest.mark.parametrize("target, message", [
    ("grpc port", "(REST): not an HTTP/1.x reply; is this TF Serving's REST port"),
    ("html page", "(REST): the reply is not JSON: '<html></html>'"),
    ("no POST at all", "(REST): HTTP 501: <!DOCTYPE HTML> <html lang=\"en\"> <head>"),
    ("multi-line error", "(REST): HTTP 400: indices[0,3] = 99 is not in [0, 64) [[{{node GatherV2}}]]"),
])
def test_rest_client_explains_replies_that_are_not_tf_serving_answers(capsys, server, export_dir, target, message):
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), REST_REPLIES.get(target, CannedReply))
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        port = server.grpc_port if target == "grpc port" else other.server_address[1]
        code = run(["predict", "--server", f"127.0.0.1:{port}", "--protocol", "rest", "--tokenizer",
                    f"{export_dir}/1/assets", "東京"], registered_commands())
    finally:
        other.shutdown()
        other.server_close()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"--server 127.0.0.1:{port} {message}" in err[0]


class FailingPrediction(prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request, context):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, MULTI_LINE_ERROR)


def test_grpc_client_reports_a_multi_line_error_on_one_line(capsys, export_dir):
    failing = grpc.server(futures.ThreadPoolExecutor(2), options=[("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(FailingPrediction(), failing)
    port = failing.add_insecure_port("127.0.0.1:0")
    failing.start()
    try:
        code = run(["predict", "--server", f"127.0.0.1:{port}", "--tokenizer", f"{export_dir}/1/assets", "東京"],
                   registered_commands())
    finally:
        failing.stop(None)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"electra-ja predict: error: --server 127.0.0.1:{port} (gRPC): INVALID_ARGUMENT: "
                                 "indices[0,3] = 99 is not in [0, 64) [[{{node GatherV2}}]]"]


@pytest.mark.skipif(shutil.which("tensorflow_model_server") is None,
                    reason="tensorflow_model_server is not installed on this machine (it is not on PyPI)")
def test_real_tensorflow_model_server_answers_like_the_local_one(export_dir, clients, test_texts):
    grpc_port, rest_port = free_port(), free_port()
    process = subprocess.Popen(["tensorflow_model_server", f"--port={grpc_port}", f"--rest_api_port={rest_port}",
                                "--model_name=ner", f"--model_base_path={os.path.abspath(export_dir)}"])
    try:
        assets = f"{export_dir}/1/assets"
        real = EntityClient.for_server(f"127.0.0.1:{grpc_port}", "grpc", "ner", assets)
        for _ in range(120):
            try:
                real.labels
                break
            except Exception:  # noqa: BLE001 - still loading
                time.sleep(1)
        texts = test_texts[:30] + [SEED_SENTENCE, SPACED_SENTENCE]
        assert real.predict(texts) == clients["in-process"].predict(texts)
        rest = EntityClient.for_server(f"127.0.0.1:{rest_port}", "rest", "ner", assets)
        assert rest.predict(texts) == clients["in-process"].predict(texts)
    finally:
        process.terminate()
        process.wait(30)
