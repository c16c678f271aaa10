"""Paths for every stage: local or gs://, all through tf.io.gfile, and nothing half-written left visible.

Example:
    with atomic_output("gs://bucket/run/dataset.json") as tmp_path:
        write_something(tmp_path)        # only renamed into place when the block succeeds
"""

import contextlib
import json
import os
import posixpath
import uuid
from typing import Iterator

import tensorflow as tf
from tensorflow.io import gfile

from data_prep.errors import InputError

TEMP_MARKER = ".tmp-"


def is_gcs(path: str) -> bool:
    return path.startswith("gs://")


def join(*parts: str) -> str:
    # posixpath keeps gs:// URLs intact where os.path would not on every platform.
    return posixpath.join(*parts)


def parent(path: str) -> str:
    """The directory holding `path` ("." for a bare name)."""
    return posixpath.dirname(path.rstrip("/")) or "."


def temp_name(path: str) -> str:
    """A sibling name no reader globbing for the final name will match, unique per writer."""
    head, tail = posixpath.split(path)
    return posixpath.join(head, f".{tail}{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_output(path: str):
    """Yields a temporary path; renames it onto `path` only if the block finishes without error."""
    tmp = temp_name(path)
    try:
        yield tmp
        gfile.rename(tmp, path, overwrite=True)
    finally:
        if gfile.exists(tmp):
            gfile.remove(tmp)


def publish_dir(tmp: str, path: str, last: str | None = None) -> None:
    """Moves a finished directory `tmp` to `path`. Locally one rename; on GCS, where directories cannot be renamed,
    file by file with `last` (e.g. saved_model.pb) copied last, so a watcher never sees it before the rest."""
    if not is_gcs(path):
        gfile.rename(tmp, path)
        return
    files = [join(root, name)[len(tmp):].lstrip("/") for root, _, names in gfile.walk(tmp) for name in names]
    for relative in sorted(files, key=lambda f: f == last):
        gfile.makedirs(posixpath.dirname(join(path, relative)))
        gfile.copy(join(tmp, relative), join(path, relative), overwrite=True)
    gfile.rmtree(tmp)


def write_text(path: str, text: str) -> None:
    with atomic_output(path) as tmp, gfile.GFile(tmp, "w") as f:
        f.write(text)


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def read_json(path: str, flag: str = "") -> dict:
    where = f"{flag} {path}".strip()
    if not gfile.exists(path):
        raise InputError(f"{where}: not found")
    try:
        with gfile.GFile(path, "r") as f:
            return json.load(f)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None


def read_lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, line with its newline) of a UTF-8 text file; anything else is an error naming the line."""
    if not gfile.exists(path):
        raise InputError(f"{path}: no such file")
    with gfile.GFile(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputError(f"{path}:{number}: not UTF-8 text (byte {error.start + 1} of the line)") from None
            if "\x00" in line:
                raise InputError(f"{path}:{number}: NUL byte; expected UTF-8 text")
            yield number, line


def remove_stale_temps(directory: str) -> int:
    """Deletes temporary files a killed writer left behind; returns how many."""
    stale = gfile.glob(join(directory, f".*{TEMP_MARKER}*"))
    for path in stale:
        gfile.remove(path)
    return len(stale)


def expand_inputs(paths: list[str], flag: str) -> list[str]:
    """Files named directly, every visible file of a named directory, or glob matches, in sorted order."""
    files = []
    for path in paths:
        if gfile.isdir(path):
            names = sorted(n for n in gfile.listdir(path) if not n.startswith(".") and not n.endswith(".json"))
            files.extend(join(path, n) for n in names if not gfile.isdir(join(path, n)))
        elif gfile.exists(path):
            files.append(path)
        else:
            matches = sorted(gfile.glob(path)) if any(c in path for c in "*?[") else []
            if not matches:
                raise InputError(f"{flag} {path}: no such file or directory")
            files.extend(matches)
    if not files:
        raise InputError(f"{flag} {' '.join(paths)}: no input files found")
    return files


def make_output_dir(path: str, flag: str) -> None:
    """Creates `path` (and parents); for gs:// first checks the bucket exists and is writable."""
    if is_gcs(path):
        preflight_gcs(path, flag)
    try:
        gfile.makedirs(path)
    except (tf.errors.OpError, OSError) as error:
        raise InputError(f"{flag} {path}: cannot create this directory ({getattr(error, 'message', error)})") from None


@contextlib.contextmanager
def output_dir(path: str, flag: str) -> Iterator[None]:
    """`make_output_dir` for a block that writes into it; if the block fails before writing anything, the
    directory it created goes again, so bad input leaves nothing behind."""
    existed = gfile.isdir(path)
    make_output_dir(path, flag)
    try:
        yield
    except BaseException:
        if not existed and not gfile.listdir(path):
            gfile.rmtree(path)
        raise


def preflight_gcs(path: str, flag: str) -> None:
    """Before a long run, proves with google-cloud-storage that the bucket exists and this identity may write."""
    from google.api_core import exceptions
    from google.cloud import storage

    bucket_name, _, prefix = path[len("gs://"):].partition("/")
    client = _storage_client(storage)
    who = getattr(client._credentials, "service_account_email", None) or type(client._credentials).__name__
    try:
        bucket = client.bucket(bucket_name)
        if not bucket.exists():
            raise InputError(f"{flag} {path}: bucket gs://{bucket_name} does not exist (credentials: {who})")
        probe = bucket.blob(posixpath.join(prefix, f".electra-ja-preflight-{uuid.uuid4().hex[:8]}"))
        probe.upload_from_string(b"")
        probe.delete()
    except exceptions.GoogleAPICallError as error:
        raise InputError(f"{flag} {path}: cannot write to gs://{bucket_name} as {who}: {error.message}") from None


def _storage_client(storage):
    from google.auth import exceptions as auth_exceptions

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return storage.Client.create_anonymous_client()
    try:
        return storage.Client()
    except auth_exceptions.DefaultCredentialsError:
        raise InputError("gs:// paths need Google Cloud credentials: run `gcloud auth application-default login` "
                         "or set GOOGLE_APPLICATION_CREDENTIALS") from None
