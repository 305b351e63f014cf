"""Where studies and trial models live: Optuna storages and the model artifact store."""

from __future__ import annotations

import io
import os
import re
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


def open_storage(url: str | None):
    """An Optuna storage for an RDB URL, or a journal file for a plain path (the default)."""
    import optuna

    url = url or default_storage()
    if _URL.match(url):
        if url.startswith(("sqlite", "postgresql", "mysql", "oracle", "mssql")):
            try:
                return optuna.storages.RDBStorage(url)
            except Exception as exc:
                raise UsageError(f"cannot open storage {redact(url)}: "
                                 f"{first_line(exc)}") from None
        raise UsageError(f"unsupported storage URL {redact(url)}: use sqlite://, "
                         "postgresql://, mysql:// or a journal file path")
    path = Path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)
    except OSError as exc:
        raise UsageError(f"cannot open storage file {path}: {exc.strerror or exc}") from None
    except Exception as exc:
        raise StudyError(f"storage file {path} is not a readable journal: "
                         f"{first_line(exc)}") from None


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
