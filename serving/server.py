"""`electra-ja serve`: a local server speaking the part of TF Serving's gRPC and REST APIs that clients use,
over the SavedModel `electra-ja export` wrote. The embedded default for laptops, tests and the demo;
production runs tensorflow_model_server on the same BASE_PATH (serving/models.config, README).

Like tensorflow_model_server it serves the highest numeric version under the base path, polls for new ones
(ModelVersions) and a REST port of 0 means no REST. Unlike it, it binds 127.0.0.1 unless told otherwise.

Example:
    with ModelVersions("build/demo/export", "ner") as versions, ModelServer(versions, 8500, 8501) as server:
        ...
"""

import threading
from concurrent import futures

import grpc

from data_prep.errors import InputError
from serving.grpc_api import add_services
from serving.limits import MAX_MESSAGE_BYTES
from serving.model_versions import ModelVersions
from serving.rest_api import make_rest_server


class ModelServer:
    """gRPC and REST over `versions`, which the caller starts and stops (several servers may share them)."""

    def __init__(self, versions: ModelVersions, grpc_port: int = 8500, rest_port: int = 8501,
                 host: str = "127.0.0.1", workers: int = 16):
        self.versions, self.host, self.workers = versions, host, workers
        self.grpc_port, self.rest_port = grpc_port, rest_port
        self._grpc, self._rest, self._rest_thread = None, None, None

    def start(self) -> None:
        # REST binds first: a failed gRPC bind can then release it with server_close(), whereas a gRPC server that
        # bound its port but never started keeps it for the life of the process, even after stop().
        if self.rest_port:
            self._rest = self._bind_rest()
        try:
            self._grpc = self._bind_grpc()
        except InputError:
            if self._rest is not None:
                self._rest.server_close()
                self._rest = None
            raise
        if self._rest is not None:
            self.rest_port = self._rest.server_address[1]
            self._rest_thread = threading.Thread(target=self._rest.serve_forever, name="rest", daemon=True)
            self._rest_thread.start()
        self._grpc.start()

    def _bind_rest(self):
        try:
            return make_rest_server(self.versions, self.host, self.rest_port)
        except OSError as error:
            raise InputError(f"--rest-port {self.rest_port}: cannot listen on {self.host}:{self.rest_port} "
                             f"({error.strerror})") from None

    def _bind_grpc(self) -> grpc.Server:
        # gRPC sets SO_REUSEPORT by default, so a second server would share a busy port and split its traffic.
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.workers), options=[
            ("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
        add_services(server, self.versions)
        try:
            bound = server.add_insecure_port(f"{self.host}:{self.grpc_port}")
        except RuntimeError:
            bound = 0
        if not bound:
            raise InputError(f"--grpc-port {self.grpc_port}: cannot listen on {self.host}:{self.grpc_port} "
                             "(in use, or not an address of this machine)")
        self.grpc_port = bound
        return server

    def stop(self, grace: float = 2.0) -> None:
        if self._rest is not None:
            self._rest.shutdown()
            self._rest.server_close()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()

    def __enter__(self) -> "ModelServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
