"""The versions of one model that a local server holds, kept as tensorflow_model_server's default version policy
keeps them: it polls the base path, loads the highest version beside the one serving, switches to it once it is
ready, then unloads the old one. A version that fails to load is reported (state END with its error) and the old
one keeps serving; it is tried again only when its directory changes.

A request takes one ServedModel and answers from it alone, so an answer comes wholly from one version even while
the versions switch. Version states use TF Serving's names (START, LOADING, AVAILABLE, UNLOADING, END).

Example:
    with ModelVersions("build/demo/export", "ner", poll_seconds=1) as versions:   # loads the highest, then polls
        model = versions.model("ner", None)    # the latest available version; model("ner", 2) a given loaded one
"""

import logging
import threading
from dataclasses import dataclass

from tensorflow.io import gfile

from data_prep import storage
from export.contract import version_names
from serving.served_model import DEFAULT_MAX_BATCH, RequestError, ServedModel
from serving.versions import SAVED_MODEL, find_version

log = logging.getLogger(__name__)

# tensorflow_model_server's --file_system_poll_wait_seconds default.
DEFAULT_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str  # START | LOADING | AVAILABLE | UNLOADING | END
    error: str = ""  # why the version failed to load; empty otherwise


class ModelVersions:
    """`poll_seconds`: how often to look for new versions; 0 looks once at start and never again (as
    tensorflow_model_server does). `report` receives a line for each version loaded, unloaded or failed."""

    def __init__(self, base_path: str, name: str, max_batch: int = DEFAULT_MAX_BATCH,
                 poll_seconds: float = DEFAULT_POLL_SECONDS, report=log.info):
        self.base_path, self.name, self.max_batch = base_path, name, max_batch
        self.poll_seconds, self._report = poll_seconds, report
        self._lock = threading.Lock()
        self._loaded: dict[int, ServedModel] = {}
        self._latest: ServedModel | None = None
        self._statuses: dict[int, VersionStatus] = {}
        self._failed: dict[int, tuple] = {}  # version -> its directory's fingerprint when it failed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def latest(self) -> ServedModel:
        return self._latest

    def start(self) -> None:
        """Loads the version tensorflow_model_server would serve (errors: InputError naming the path), then polls."""
        version, path = find_version(self.base_path)
        self._set_status(version, "LOADING")
        self._switch_to(ServedModel(self.name, version, path, self.max_batch))
        polls = path != self.base_path and self.poll_seconds > 0  # a path that is one version's directory is fixed
        if polls:
            self._thread = threading.Thread(target=self._poll_forever, name="version-poll", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> "ModelVersions":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def model(self, name: str, version: int | None) -> ServedModel:
        """The latest available version (`version` None) or a given loaded one; NOT_FOUND as TF Serving says it."""
        self._check_name(name)
        with self._lock:
            found = self._latest if version is None else self._loaded.get(version)
        if found is None:
            raise RequestError(f"Servable not found for request: Specific({name}, {version})", "NOT_FOUND")
        return found

    def statuses(self, name: str, version: int | None) -> list[VersionStatus]:
        """Every version this server has seen, newest first, or the one asked for."""
        self._check_name(name)
        with self._lock:
            known = sorted(self._statuses.values(), key=lambda s: -s.version)
        if version is None:
            return known
        chosen = [s for s in known if s.version == version]
        if not chosen:
            raise RequestError(f"Could not find version {version} of model {name}", "NOT_FOUND")
        return chosen

    def poll(self) -> None:
        """One look at the base path: load a higher (or, when the serving one was removed, the remaining highest)
        version, switch to it and unload the others."""
        on_disk = self._versions_on_disk()
        if not on_disk:
            return
        newest = max(on_disk)
        if newest == self._latest.version or self._failed.get(newest) == _fingerprint(on_disk[newest]):
            return
        self._set_status(newest, "LOADING")
        try:
            model = ServedModel(self.name, newest, on_disk[newest], self.max_batch)
        except Exception as error:  # any broken version must leave the serving one in place
            message = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
            self._failed[newest] = _fingerprint(on_disk[newest])
            self._set_status(newest, "END", message)
            self._report(f"version {newest} failed to load; version {self._latest.version} keeps serving: {message}")
            return
        unloaded = self._switch_to(model)
        self._report(f"version {newest} available from {model.path}"
                     + "".join(f"; version {version} unloaded" for version in unloaded))

    def _switch_to(self, model: ServedModel) -> list[int]:
        """Makes `model` the latest version, then unloads the others; returns the versions unloaded."""
        with self._lock:
            old = [version for version in self._loaded if version != model.version]
            self._loaded[model.version] = model
            self._latest = model
            self._statuses[model.version] = VersionStatus(model.version, "AVAILABLE")
        for version in old:
            self._set_status(version, "UNLOADING")
            with self._lock:
                del self._loaded[version]  # requests holding it finish on it; nothing new reaches it
            self._set_status(version, "END")
        return old

    def _poll_forever(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # a file system hiccup must not end polling for the server's lifetime
                log.exception("polling %s failed", self.base_path)

    def _versions_on_disk(self) -> dict[int, str]:
        try:
            names = version_names(gfile.listdir(self.base_path))
        except Exception:
            return {}
        return {version: storage.join(self.base_path, name) for version, name in names.items()}

    def _set_status(self, version: int, state: str, error: str = "") -> None:
        with self._lock:
            self._statuses[version] = VersionStatus(version, state, error)

    def _check_name(self, name: str) -> None:
        if name != self.name:
            raise RequestError(f"Servable not found for request: model {name!r} (this server serves {self.name!r})",
                               "NOT_FOUND")


def _fingerprint(path: str) -> tuple:
    """What changes when a version directory is written again: its entries and its saved_model.pb's size and time."""
    try:
        entries = tuple(sorted(gfile.listdir(path)))
        pb = storage.join(path, SAVED_MODEL)
        stat = gfile.stat(pb) if gfile.exists(pb) else None
        return entries, (stat.length, stat.mtime_nsec) if stat else None
    except Exception:
        return ()
