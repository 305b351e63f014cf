"""Where studies and trial models live: Optuna storages and the model artifact store."""

from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path

from .errors import StudyError, UsageError, first_line

HOME_ENV = "AUTOREG_HOME"
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def home() -> Path:
    """autoreg's local folder: ``$AUTOREG_HOME`` or ``./.autoreg``."""
    return Path(os.environ.get(HOME_ENV, ".autoreg"))


def default_storage() -> str:
    return str(home() / "studies.journal")


def redact(url: str | None) -> str | None:
    """``url`` with any password replaced by ``***``."""
    if url is None:
        return None
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", str(url))


def _without_password(text: str) -> str:
    """``text`` (a driver's error message) with any password masked, should the driver quote
    back the URL or the ``password=`` of a connection string."""
    text = redact(text)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


def open_storage(url: str | None):
    """An Optuna storage: a journal file for a plain path (the default), the journal in a
    PostgreSQL table for ``journal+postgresql://``, Optuna's RDB storage for an RDB URL."""
    import optuna

    url = url or default_storage()
    if _URL.match(url):
        import warnings

        from .pgjournal import SCHEMES, PostgresJournalStorage
        from .workers import heartbeat_options

        options = heartbeat_options()  # a worker that dies is noticed, its trial retried
        if url.startswith(SCHEMES):
            opener = PostgresJournalStorage
        elif url.startswith(("sqlite", "postgresql", "mysql", "oracle", "mssql")):
            opener = optuna.storages.RDBStorage
        else:
            raise UsageError(f"unsupported storage URL {redact(url)}: use sqlite://, "
                             "postgresql://, mysql://, journal+postgresql:// or a journal "
                             "file path")
        for attempt in range(5):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return opener(url, **options)
            except UsageError:
                raise
            except Exception as exc:
                # Workers opening a new database together race to create Optuna's tables;
                # the losers find them made and open it on the next try.
                racing = "already exists" in str(exc) or "duplicate key" in str(exc)
                if racing and attempt < 4:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise UsageError(f"cannot open storage {redact(url)}: "
                                 f"{_without_password(first_line(exc))}") from None
    path = Path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = _journal_file(str(path))
        return optuna.storages.JournalStorage(backend)
    except OSError as exc:
        raise UsageError(f"cannot open storage file {path}: {exc.strerror or exc}") from None
    except Exception as exc:
        raise StudyError(f"storage file {path} is not a readable journal: "
                         f"{first_line(exc)}") from None


# Journal operations that change a trial's parameters or attributes while it runs. Writing them
# without fsync is safe: they reach the file (and every other process) at once, and the fsync
# that ends the trial (its state and values) makes everything before it durable too.
_UNSYNCED_OPS = frozenset({4, 5, 7, 8, 9})


def _journal_file(path: str):
    """Optuna's journal file backend, syncing to disk when a trial or the study changes state
    rather than on each of a trial's half-dozen writes (which made fsync most of the per-trial
    cost of the default storage)."""
    from optuna.storages.journal import JournalFileBackend
    from optuna.storages.journal._file import get_lock_file

    class SyncOnFinishJournal(JournalFileBackend):
        def append_logs(self, logs):
            data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
            with get_lock_file(self._lock):
                with open(self._file_path, "ab") as f:
                    f.write(data.encode("utf-8"))
                    f.flush()
                    if any(log.get("op_code") not in _UNSYNCED_OPS for log in logs):
                        os.fsync(f.fileno())

    return SyncOnFinishJournal(path)


class ModelStore:
    """Compact export files of trial models, kept in an Optuna artifact store."""

    def __init__(self, root: str | os.PathLike | None = None):
        from optuna.artifacts import FileSystemArtifactStore

        self.root = Path(root) if root is not None else home() / "artifacts"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the model folder {self.root}: "
                             f"{exc.strerror or exc}") from None
        self._store = FileSystemArtifactStore(self.root)

    @staticmethod
    def artifact_id(study_id: str, trial_number: int) -> str:
        return f"{study_id}-trial{trial_number:06d}.autoreg"

    def put(self, artifact_id: str, data: bytes) -> None:
        self._store.write(artifact_id, io.BytesIO(data))

    def get(self, artifact_id: str) -> bytes:
        from optuna.artifacts.exceptions import ArtifactNotFound

        try:
            with self._store.open_reader(artifact_id) as fh:
                return fh.read()
        except ArtifactNotFound:
            raise StudyError(f"model file {artifact_id} is missing from {self.root}") from None
