"""New versions without a dropped request: while 8 clients (gRPC and REST) send requests, `electra-ja export`
writes version 2 of other weights; the server loads it beside version 1, switches, unloads 1; no request fails,
every answer is wholly one version's, and after the switch only version 2 answers. A broken version 3 then leaves
version 2 serving, with the reason in GetModelStatus and GET /v1/models/NAME."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (get_model_status_pb2, model_pb2, model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from finetune.trainer import CHECKPOINT_DIR, load_finetuned, weights_checkpoint
from serving.model_versions import ModelVersions
from serving.served_model import ServedModel
from serving.server import ModelServer
from tests.serving.test_cli import CONSOLE
from tests.serving.test_server import free_port, good_inputs, http_request


@pytest.fixture(scope="module")
def other_weights(finetuned_dir, tmp_path_factory) -> str:
    """finetuned_dir with every weight scaled: the same model files, other answers."""
    out = str(tmp_path_factory.mktemp("other") / "finetuned")
    shutil.copytree(finetuned_dir, out, ignore=shutil.ignore_patterns("tensorboard"))
    tagger, _, _ = load_finetuned(out)
    for variable in tagger.trainable_variables:
        variable.assign(variable * 1.5)
    shutil.rmtree(os.path.join(out, CHECKPOINT_DIR))
    tf.train.CheckpointManager(weights_checkpoint(tagger), os.path.join(out, CHECKPOINT_DIR), max_to_keep=1).save(1)
    return out


def export_version(model_dir: str, base, version: int = 1) -> str:
    """`electra-ja export` in its own process, as a user runs it beside a server; returns the version's dir."""
    result = subprocess.run([sys.executable, "-c", CONSOLE, "export", "--model", model_dir, "--export-dir", str(base),
                             "--version", str(version)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return f"{base}/{version}"


def status(versions_answer) -> dict[int, tuple[str, str]]:
    return {int(s["version"]): (s["state"], s["status"]["error_message"]) for s in versions_answer}


class Clients:
    """8 threads (4 gRPC, 4 REST) sending the same request until stopped; each answer is recorded with the time its
    request was sent and the version whose outputs it equals (None: equal to neither)."""

    def __init__(self, server: ModelServer, expected: dict[int, np.ndarray]):
        self.server, self.expected = server, expected
        self.answers, self.errors = [], []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(kind,), daemon=True)
                         for kind in ("grpc", "rest") * 4]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _run(self, kind: str) -> None:
        inputs = good_inputs()
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="ner"))
        for alias, value in inputs.items():
            request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
        body = json.dumps({"inputs": {k: v.tolist() for k, v in inputs.items()}}).encode()
        with grpc.insecure_channel(f"127.0.0.1:{self.server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    if kind == "grpc":
                        reply = stub.Predict(request, timeout=60)
                        probs = tf.make_ndarray(reply.outputs["chunk_probs"])
                        claimed = reply.model_spec.version.value
                    else:
                        code, reply = http_request(self.server.rest_port, "POST", "/v1/models/ner:predict", body)
                        assert code == 200, reply
                        probs, claimed = np.asarray(reply["outputs"]["chunk_probs"], np.float32), None
                except Exception as error:  # noqa: BLE001 - every failure is the test's finding
                    self.errors.append(f"{kind}: {error}")
                    continue
                version = next((v for v, want in self.expected.items() if np.allclose(probs, want, atol=1e-6)), None)
                self.answers.append((sent, kind, version, claimed))


def test_a_new_version_replaces_the_old_without_a_failed_request(export_dir, other_weights, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(f"{export_dir}/1", base / "1")
    v1 = ServedModel("ner", 1, f"{export_dir}/1").predict("serving_default", good_inputs())["chunk_probs"]
    v2 = ServedModel("ner", 1, export_version(other_weights, tmp_path / "v2")).predict(
        "serving_default", good_inputs())["chunk_probs"]
    assert not np.allclose(v1, v2, atol=1e-3)
    lines = []
    with ModelVersions(str(base), "ner", poll_seconds=0.2, report=lines.append) as versions, \
            ModelServer(versions, grpc_port=0, rest_port=free_port()) as server:
        with Clients(server, {1: v1, 2: v2}) as clients:
            time.sleep(2)
            export_version(other_weights, base, version=2)
            switched, deadline = None, time.monotonic() + 120
            while switched is None and time.monotonic() < deadline:
                states = status(http_request(server.rest_port, "GET", "/v1/models/ner")[1]["model_version_status"])
                if states.get(1, ("",))[0] == "END" and states.get(2, ("",))[0] == "AVAILABLE":
                    switched = time.monotonic()
                time.sleep(0.05)
            assert switched is not None, states
            time.sleep(3)
        assert clients.errors == []
        assert all(version is not None for _, _, version, _ in clients.answers), "an answer mixed two versions"
        assert all(claimed in (None, version) for _, _, version, claimed in clients.answers)
        by_version = {v: sum(1 for _, _, version, _ in clients.answers if version == v) for v in (1, 2)}
        assert by_version[1] > 0 and by_version[2] > 0, by_version
        assert all(version == 2 for sent, _, version, _ in clients.answers if sent > switched)
        assert {kind for _, kind, _, _ in clients.answers} == {"grpc", "rest"}
        assert any(line.startswith("version 2 available") and "version 1 unloaded" in line for line in lines), lines
        assert http_request(server.rest_port, "GET", "/v1/models/ner/versions/1")[0] == 200  # its status: END
        assert http_request(server.rest_port, "POST", "/v1/models/ner/versions/1:predict",
                            json.dumps({"inputs": {k: v.tolist() for k, v in good_inputs().items()}}).encode()
                            )[0] == 404

        # A broken version 3: its saved_model.pb is not a SavedModel.
        shutil.copytree(base / "2", tmp_path / "3.tmp")
        (tmp_path / "3.tmp" / "saved_model.pb").write_bytes(b"not a SavedModel")
        os.rename(tmp_path / "3.tmp", base / "3")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(line.startswith("version 3 failed") for line in lines):
            time.sleep(0.05)
        assert any(line.startswith("version 3 failed to load; version 2 keeps serving") for line in lines), lines
        states = status(http_request(server.rest_port, "GET", "/v1/models/ner")[1]["model_version_status"])
        assert states[2] == ("AVAILABLE", "") and states[3][0] == "END" and "DecodeError" in states[3][1], states
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            spec = model_pb2.ModelSpec(name="ner")
            spec.version.value = 3
            reply = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                get_model_status_pb2.GetModelStatusRequest(model_spec=spec), timeout=60)
        (only,) = reply.model_version_status
        assert only.state == get_model_status_pb2.ModelVersionStatus.END and only.status.error_code != 0
        assert only.status.error_message == states[3][1]
        code, reply = http_request(server.rest_port, "POST", "/v1/models/ner:predict",
                                   json.dumps({"inputs": {k: v.tolist() for k, v in good_inputs().items()}}).encode())
        assert code == 200 and np.allclose(reply["outputs"]["chunk_probs"], v2, atol=1e-6)
