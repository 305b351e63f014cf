"""Where studies and trial models live: Optuna storages and the model artifact store."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
from pathlib import Path

from .errors import AutoRegError, StudyError, UsageError, first_line

HOME_ENV = "AUTOREG_HOME"
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
#: A database URL written without its slashes (``sqlite:studies.db``), not a file name.
_SCHEME_WITHOUT_SLASHES = re.compile(
    r"^(sqlite|postgresql|postgres|mysql|oracle|mssql|journal\+postgresql)(\+[\w.-]+)?:(?!//)")
#: Seconds a write to an SQLite storage waits for another process's write transaction.
SQLITE_BUSY_SECONDS = 30.0
#: The storage (and model store) that lives in this process only and writes nothing to disk.
MEMORY = ":memory:"


def home() -> Path:
    """autoreg's local folder: ``$AUTOREG_HOME`` or ``./.autoreg``."""
    return Path(os.environ.get(HOME_ENV, ".autoreg"))


def default_storage() -> str:
    return str(home() / "studies.journal")


# A URL's user information runs from its scheme to the last "@": a password may hold "@", ":"
# or "/" unencoded, and the user name may be empty.
_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*):.*@", re.DOTALL)
_QUERY_PASSWORD = re.compile(r"([?&;](?:password|passwd|pwd)=)[^&#\s]*", re.IGNORECASE)


def redact(url: str | None) -> str | None:
    """``url`` with any password replaced by ``***``: the one in its user information
    (``user:password@``) and a ``password=`` query parameter."""
    if url is None:
        return None
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO.sub(r"\1:***@", str(url)))


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
    if url == MEMORY:
        return optuna.storages.InMemoryStorage()
    if _URL.match(url):
        import warnings

        from .pgjournal import SCHEMES, PostgresJournalStorage
        from .workers import heartbeat_options

        options = heartbeat_options()  # a worker that dies is noticed, its trial retried
        if url.startswith("sqlite"):
            options["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}
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
            except AutoRegError:
                raise
            except Exception as exc:
                # Workers opening a new database together race to create Optuna's tables;
                # the losers find them made and open it on the next try.
                racing = "already exists" in str(exc) or "duplicate key" in str(exc)
                if racing and attempt < 4:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                fault = storage_fault(exc, url)
                if fault is not None:
                    raise fault from None
                raise UsageError(f"cannot open storage {redact(url)}: "
                                 f"{_without_password(first_line(exc))}") from None
    if _SCHEME_WITHOUT_SLASHES.match(url):
        scheme = url.split(":", 1)[0]
        raise UsageError(f"storage URL {redact(url)} needs slashes after {scheme}: (e.g. "
                         f"{'sqlite:///studies.db' if scheme == 'sqlite' else scheme + '://...'})")
    path = Path(url)
    if path.is_dir():
        raise UsageError(f"storage {path} is a folder; give a journal file path (or a "
                         "database URL)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = _journal_file(str(path))
        return optuna.storages.JournalStorage(backend)
    except AutoRegError:
        raise
    except OSError as exc:
        raise UsageError(f"cannot open storage file {path}: {exc.strerror or exc}; its folder "
                         f"{path.parent} must be a writable folder: choose another --storage "
                         "path") from None
    except Exception as exc:
        # Well-formed lines that are not Optuna's journal records.
        raise StudyError(f"the journal file {path} holds records autoreg cannot replay "
                         f"({first_line(exc)}); autoreg leaves it as it is: move it away to "
                         "start afresh, or use --storage with another file") from None


def _sqlite_path(url: str | None) -> str | None:
    match = re.match(r"^sqlite:/{3}(.+)$", url or "")
    return match.group(1) if match else None


def storage_fault(exc: BaseException, url: str | None) -> AutoRegError | None:
    """A clear error for a storage that failed under autoreg: an SQLite file locked by another
    process or not a database. None for any other exception (raise it as it is)."""
    if isinstance(exc, AutoRegError):
        return None
    # Optuna's RDB storage raises its own StorageInternalError from the driver's error.
    seen = []
    while exc is not None and exc not in seen and not type(exc).__module__.startswith(
            ("sqlalchemy", "sqlite3")):
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    if exc is None or exc in seen:
        return None
    text = str(getattr(exc, "orig", None) or exc)
    if _sqlite_path(url) is None and "sqlite" not in text:
        return None
    where = _sqlite_path(url) or redact(url)
    if "database is locked" in text or "database table is locked" in text:
        return StudyError(f"the SQLite storage {where} is locked: another process has held a "
                          f"write transaction on it for over {SQLITE_BUSY_SECONDS:g} s; let it "
                          "finish (or stop it) and run again, or use another --storage")
    if "not a database" in text or "malformed" in text or "disk image" in text:
        return StudyError(f"the SQLite storage {where} is not a readable database "
                          f"({first_line(Exception(text))}); autoreg leaves it as it is: move "
                          "it away to start afresh, or restore it from a backup")
    return None


@contextlib.contextmanager
def storage_faults(url: str | None):
    """Raise :func:`storage_fault`'s clear error in place of a storage's own exception."""
    try:
        yield
    except Exception as exc:
        fault = storage_fault(exc, url)
        if fault is None:
            raise
        raise fault from None


# Journal operations that change a trial's parameters or attributes while it runs. Writing them
# without fsync is safe: they reach the file (and every other process) at once, and the fsync
# that ends the trial (its state and values) makes everything before it durable too.
_UNSYNCED_OPS = frozenset({4, 5, 7, 8, 9})


class JournalDamaged(StudyError):
    """A journal file with a line that is not a journal record."""


def _damaged(path: str, line_no: int, line: bytes, what: str = "") -> JournalDamaged:
    """The error for line ``line_no`` (1-based) of the journal file ``path``."""
    if line_no == 1 and line.startswith(b"SQLite format 3"):
        return JournalDamaged(f"{path} is an SQLite database, not a journal file: use "
                              f"--storage sqlite:///{os.path.abspath(path)}")
    if line_no == 1 and not what:
        return JournalDamaged(f"{path} is not a journal file (its first line is not a journal "
                              "record); autoreg leaves it as it is: check --storage, or move "
                              "the file away to start afresh")
    shown = line[:60].decode("utf-8", "replace").strip()
    return JournalDamaged(
        f"the journal file {path} is damaged at line {line_no} ({what or 'not a record'}: "
        f"{shown!r}); autoreg leaves it as it is: move it away to start afresh, or remove "
        f"line {line_no} from it (after making a copy) to keep the rest")


def _record(line: bytes):
    """The journal record on ``line``, or None if it holds none."""
    try:
        log = json.loads(line)
    except ValueError:  # JSONDecodeError, and UnicodeDecodeError for binary garbage
        return None
    return log if isinstance(log, dict) and "op_code" in log else None


def _journal_file(path: str):
    """Optuna's journal file backend, syncing to disk when a trial or the study changes state
    rather than on each of a trial's half-dozen writes (which made fsync most of the per-trial
    cost of the default storage).

    It is strict where Optuna's is lenient, and never writes to a damaged file: a line that is
    not a record raises :class:`JournalDamaged` naming it (Optuna skips a bad last line, then
    appends after it, which buries the next record in the damage), and so does a file whose
    last write was cut off. A lock file that cannot be made raises a clear :class:`StudyError`.
    """
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
    from optuna.storages.journal._file import get_lock_file

    class Lock(JournalFileSymlinkLock):
        def acquire(self) -> bool:
            try:
                return super().acquire()
            except OSError as exc:
                raise StudyError(f"cannot take the journal's lock file {self._lock_file}: "
                                 f"{exc.strerror or exc}; autoreg makes it beside the journal "
                                 "file, so that folder must be writable (or use --storage "
                                 "elsewhere)") from None

    class SyncOnFinishJournal(JournalFileBackend):
        def __init__(self, file_path: str):
            super().__init__(file_path, Lock(file_path))

        def read_logs(self, log_number_from: int):
            offsets = self._log_number_offset
            with open(self._file_path, "rb") as f:
                # Read no further than the size now: another process may be appending.
                remaining = os.fstat(f.fileno()).st_size
                start = 0
                if log_number_from in offsets:
                    f.seek(offsets[log_number_from])
                    start = log_number_from
                    remaining -= offsets[log_number_from]
                for log_number, line in enumerate(f, start=start):
                    remaining -= len(line)
                    if remaining < 0 or not line.endswith(b"\n"):
                        break  # a write in progress (or cut off: the next write tells)
                    log = _record(line)
                    if log is None:
                        raise _damaged(self._file_path, log_number + 1, line)
                    offsets.setdefault(log_number + 1, offsets[log_number] + len(line))
                    if log_number >= log_number_from:
                        yield log

        def _check_end(self, f) -> None:
            """Raise :class:`JournalDamaged` if the file (open as ``f``) ends in a cut-off
            line, a write stopped half-way: appending after it would bury the next record in
            it. Writers hold the lock, so under it such a line is no write in progress."""
            size = f.seek(0, os.SEEK_END)
            if not size:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            f.seek(max(0, size - 4096))
            last = f.read().rsplit(b"\n", 1)[-1]
            f.seek(0)
            line_no = 1 + sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
            if line_no == 1:  # the file is one line: show how it starts
                f.seek(0)
                last = f.read(64)
            raise _damaged(self._file_path, line_no, last, "its last write was cut off")

        def append_logs(self, logs):
            data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
            with get_lock_file(self._lock):
                with open(self._file_path, "a+b") as f:
                    self._check_end(f)
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

    @staticmethod
    def open(root: str | os.PathLike | None = None, storage: str | None = None):
        """The store for ``root``; one in memory for ``root=":memory:"``, or with no root when
        the study itself lives in memory."""
        if root == MEMORY or (root is None and storage == MEMORY):
            return MemoryModelStore()
        return ModelStore(root)

    def get(self, artifact_id: str) -> bytes:
        from optuna.artifacts.exceptions import ArtifactNotFound

        try:
            with self._store.open_reader(artifact_id) as fh:
                return fh.read()
        except ArtifactNotFound:
            raise StudyError(f"model file {artifact_id} is missing from {self.root}") from None


class MemoryModelStore:
    """Trial models kept in this process (``":memory:"``): nothing is written to disk, and a
    result holding them pickles whole."""

    root = None

    def __init__(self):
        self._files: dict[str, bytes] = {}

    def put(self, artifact_id: str, data: bytes) -> None:
        self._files[artifact_id] = bytes(data)

    def get(self, artifact_id: str) -> bytes:
        try:
            return self._files[artifact_id]
        except KeyError:
            raise StudyError(f"model {artifact_id} is not in this in-memory store") from None
