"""Several worker processes sharing one study, with the study's budget kept exactly.

``search(..., n_jobs=N)`` runs the trials in N processes (the fits are CPU-bound, so threads
would not help): the calling process and N - 1 fresh interpreters running this module. Each
prepares the same
workspace (the seed fixes splits and preprocessing), opens the same study and runs trials until
the study holds ``n_trials`` of them. A trial is *claimed* under a lock — count the study's
trials, and create one only if the count is below the budget — so the total never exceeds it,
however the workers interleave. The lock is a file beside the local storage (the journal file or
the SQLite database).
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

from .storage import default_storage

#: Trial states that use up the budget: finished ones, and those a worker is running now.
_COUNTED = ("COMPLETE", "FAIL", "PRUNED", "RUNNING")


def lock_path(storage: str | None) -> Path:
    """The lock file that serializes trial claims for ``storage`` (a URL or journal path)."""
    url = storage or default_storage()
    match = re.match(r"^sqlite:/{3}(.+)$", url)
    if match:
        return Path(match.group(1) + ".autoreg-claim.lock")
    if "://" not in url:
        return Path(url + ".autoreg-claim.lock")
    # A server database (PostgreSQL, MySQL): workers on this machine share a lock here.
    from .storage import home

    digest = re.sub(r"[^A-Za-z0-9]+", "_", url)[-80:]
    return home() / f"claim-{digest}.lock"


@contextlib.contextmanager
def file_lock(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def server_dialect(store) -> str | None:
    """``postgresql`` or ``mysql`` when ``store`` is a database server that other machines may
    share; None for local storage."""
    name = getattr(getattr(getattr(store, "engine", None), "dialect", None), "name", None)
    return name if name in ("postgresql", "mysql") else None


def claim_lock(store, storage: str | None, study_name: str):
    """A context manager factory that serializes trial claims of one study.

    Local storage (journal file, SQLite) takes a file lock beside it. A server database takes a
    lock inside the database itself, so that workers on *different machines* share it:
    PostgreSQL's session advisory lock, MySQL's ``GET_LOCK``.
    """
    dialect = server_dialect(store)
    if dialect is None:
        path = lock_path(storage)
        return lambda: file_lock(path)
    import hashlib

    digest = hashlib.sha1(f"autoreg-claim:{study_name}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)

    @contextlib.contextmanager
    def db_lock():
        from sqlalchemy import text

        with store.engine.connect() as conn:
            if dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            else:
                conn.execute(text("SELECT GET_LOCK(:k, -1)"), {"k": str(key)})
            try:
                yield
            finally:
                if dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                else:
                    conn.execute(text("SELECT RELEASE_LOCK(:k)"), {"k": str(key)})

    return db_lock


def counted_trials(study) -> int:
    from optuna.trial import TrialState

    states = tuple(getattr(TrialState, s) for s in _COUNTED)
    return len(study.get_trials(deepcopy=False, states=states))


def run_trials(study, objective, n_trials: int, *, timeout=None, lock, on_trial=None) -> None:
    """Claim and run trials until the study holds ``n_trials`` (or ``timeout`` passes).

    ``lock`` is a lock file path or a context manager factory (see :func:`claim_lock`).
    """
    from optuna.trial import TrialState

    if isinstance(lock, Path):
        path = lock
        lock = lambda: file_lock(path)  # noqa: E731
    start = time.monotonic()
    while timeout is None or time.monotonic() - start < timeout:
        with lock():
            if counted_trials(study) >= n_trials:
                return
            trial = study.ask()
        try:
            values = objective(trial)
        except KeyboardInterrupt:
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception:
            # The objective recorded the reason; the trial is failed, the search goes on.
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, values)
        if on_trial is not None:
            on_trial(study, trial)


def limit_threads():
    """One BLAS/OpenMP thread per worker: N workers on N cores, not N x N threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _main(argv: list[str]) -> int:
    """``python -m autoreg.workers JOB INDEX``: one worker of a parallel search."""
    import pickle
    import sys
    import warnings

    warnings.simplefilter("ignore")
    path, index = argv
    with open(path, "rb") as fh:
        job = pickle.load(fh)  # written by this user's own search a moment ago
    sys.path[:] = job["sys_path"]  # so that --plugin modules import as in the caller
    from .engine import worker
    from .errors import AutoRegError

    try:
        worker(int(index), job["data"], job["y"], **job["kwargs"])
    except AutoRegError as exc:
        print(f"autoreg worker {index}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
