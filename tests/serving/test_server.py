"""The local TF-Serving-compatible server against the in-process SavedModel: same answers over gRPC and REST,
offsets that round-trip on all of GSD test, concurrent clients, and a flood of bad requests that each get a
clear error while the server keeps serving."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from data_prep.gsd import load_split
from serving.client import EntityClient
from serving.features import pad_batch, text_windows
from serving.served_model import ServedModel
from serving.server import ModelServer
from tests.conftest import GSD_DIR, REPO

SEED_SENTENCE = "ノルウェーの劇作家ヘンリック・イプセンの劇詩『ペール・ギュント』の登場人物に因んで命名された。"
SPACED_SENTENCE = "三代目 J SOUL BROTHERSが　東京ドームで 公演した。"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(export_dir):
    with ModelServer(ServedModel.load(export_dir, "ner"), grpc_port=0, rest_port=free_port()) as running:
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


@pytest.mark.parametrize("text", ["", "   ", "😀🎌🍣は美味しい。", "東京\x00\x07\x1b[31m大阪\u200b\ufeff", "ｶﾞｷﾞｸﾞ㍿ｹﾞ①",
                                  "東京都" * 3400, "a" * 10_000, "\n".join(["京都。"] * 500)])
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


def grpc_bad_requests(rng, tokenizer):
    requests = []
    for what, signature, inputs in bad_tensor_inputs(rng):
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="ner", signature_name=signature))
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        requests.append((what, request))
    base = requests[-4][1]
    for what, change in (("wrong model", lambda r: setattr(r.model_spec, "name", "other")),
                         ("wrong version", lambda r: r.model_spec.version.__setattr__("value", 7)),
                         ("version label", lambda r: setattr(r.model_spec, "version_label", "stable")),
                         ("content of the wrong size", lambda r: r.inputs["input_ids"].__setattr__(
                             "tensor_content", b"\x01\x02\x03")),
                         ("a shape claiming 10^12 elements", lambda r: r.inputs["input_mask"].tensor_shape.dim[0]
                          .__setattr__("size", 10**6) or r.inputs["input_mask"].tensor_shape.dim[1]
                          .__setattr__("size", 10**6)),
                         ("an unknown output filter", lambda r: r.output_filter.append("logits"))):
        request = predict_pb2.PredictRequest()
        request.CopyFrom(base)
        change(request)
        requests.append((what, request))
    # Text a client forgot to window: one row of 10k characters' WordPieces.
    for text in ("東京" * 5000, "😀" * 10_000, "\x00\x01" * 5000):
        ids = np.array([tokenizer.encode(text).token_ids[:20_000]], np.int32)
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="ner"))
        for name, value in {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids),
                            "labeled_positions": np.zeros_like(ids)}.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        requests.append(("unwindowed 10k-character text", request))
    return requests


def rest_bad_requests(rng):
    """(what, method, path, body bytes, extra headers) for the REST API."""
    good = {"instances": [{k: v[0].tolist() for k, v in good_inputs().items()}]}
    cases = []
    body = json.dumps(good).encode()
    for cut in sorted(set(rng.integers(1, len(body) - 1, 40).tolist())):
        cases.append(("truncated JSON", "POST", "/v1/models/ner:predict", body[:cut], {}))
    for value in ([], "x", 1, None, {}, {"instances": []}, {"instances": 3}, {"inputs": 3},
                  {"instances": [1, 2]}, {"inputs": {}, "instances": []}, {"signature_name": 5, "inputs": {}},
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
                         ("POST", "/v1/models/ner:classify")):
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
        for what, request in grpc_cases:
            with pytest.raises(grpc.RpcError) as raised:
                stub.Predict(request, timeout=60)
            code, details = raised.value.code(), raised.value.details()
            assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), (what, code, details)
            assert details and "Traceback" not in details, what
            answered += 1
        for what, method, path, body, headers in rest_cases:
            connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=60)
            connection.putrequest(method, path)
            headers = {"Content-Length": str(len(body or b"")), **headers}
            for key, value in headers.items():
                connection.putheader(key, value)
            connection.endheaders()
            try:
                connection.send(body or b"")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered before reading a body it refused
            response = connection.getresponse()
            reply = json.loads(response.read())
            assert response.status in (400, 404), (what, response.status, reply)
            assert isinstance(reply["error"], str) and reply["error"], what
            connection.close()
            answered += 1
    assert answered >= 1000
    assert clients["grpc"].predict([SEED_SENTENCE]) == clients["in-process"].predict([SEED_SENTENCE])
    assert clients["rest"].predict([SEED_SENTENCE]) == clients["in-process"].predict([SEED_SENTENCE])


def test_shipped_tf_serving_configs_parse():
    config = text_format.Parse((REPO / "serving" / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    assert [c.name for c in config.model_config_list.config] == ["ner"]
    batching = (REPO / "serving" / "batching_parameters.txt").read_text()
    assert "pad_variable_length_inputs: true" in batching


@pytest.mark.skipif(shutil.which("tensorflow_model_server") is None,
                    reason="tensorflow_model_server is not installed on this machine (it is not on PyPI)")
def test_real_tensorflow_model_server_answers_like_the_local_one(export_dir, clients, test_texts):
    grpc_port, rest_port = free_port(), free_port()
    process = subprocess.Popen(["tensorflow_model_server", f"--port={grpc_port}", f"--rest_api_port={rest_port}",
                                "--model_name=ner", f"--model_base_path={os.path.abspath(export_dir)}",
                                "--enable_batching",
                                f"--batching_parameters_file={REPO / 'serving' / 'batching_parameters.txt'}"])
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
