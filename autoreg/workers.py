"""Several worker processes sharing one study: the budget kept exactly, crashed workers'
trials failed and retried, and one process logging the end.

``search(..., n_jobs=N)`` runs the trials in N processes (the fits are CPU-bound, so threads
would not help): the calling process and N - 1 fresh interpreters running this module. Workers
on other machines join the same study through a database server. Each prepares the same
workspace (the seed fixes splits and preprocessing), opens the same study and runs trials until
the study's budget is spent. A trial is *claimed* under a lock -- count the budget used, and
create a trial only if some is left -- so the total never exceeds it, however the workers
interleave. The lock is a file beside local storage (the journal file or the SQLite database),
or a lock inside a server database, which workers on every machine share.

A worker that dies mid-trial (SIGKILL, a lost machine) leaves its trial RUNNING. Every claim
first *reaps* such trials: on a database the heartbeat tells (each worker records one every
``AUTOREG_HEARTBEAT`` seconds; a trial silent for three intervals is stale), and on this machine
a dead process id tells at once. A reaped trial is failed and queued again with the same
parameters (up to :data:`MAX_RETRY` times), and the failed attempt no longer counts toward the
budget, so no trial is lost and none is run twice to completion.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
import warnings
from pathlib import Path

from .storage import MEMORY, default_storage

#: How often (seconds) a worker on a database storage records that its trial is alive.
HEARTBEAT_ENV = "AUTOREG_HEARTBEAT"
DEFAULT_HEARTBEAT = 10
#: How many times a trial whose worker died is queued again before it counts as failed.
MAX_RETRY = 2
#: The user attribute naming the process that runs a trial (host, pid, process start time).
PROCESS_ATTR = "autoreg.process"
#: Set on trials added by walking a penalty's regularization path (not sampled).
WALKED_ATTR = "autoreg.walked"
#: The failure reason of a trial abandoned because its worker was stopped (Ctrl-C, SIGTERM).
INTERRUPTED = "interrupted: its worker was stopped"
#: A RUNNING trial not yet tagged with its process after this long lost its worker (tagging
#: follows the claim within milliseconds).
UNTAGGED_GRACE = 60.0


def heartbeat_interval() -> int:
    """Seconds between heartbeats (``$AUTOREG_HEARTBEAT``, default 10); stale after 3 of them."""
    import os

    from .errors import UsageError

    raw = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not raw:
        return DEFAULT_HEARTBEAT
    if not raw.isdigit() or int(raw) < 1:
        raise UsageError(f"{HEARTBEAT_ENV} must be a whole number of seconds (at least 1), "
                         f"got {raw!r}")
    return int(raw)


def _proc_stat(pid: int) -> list[bytes] | None:
    """Fields of ``/proc/PID/stat`` after the command name (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells a reused pid."""
    fields = _proc_stat(pid)
    return fields[19].decode() if fields else None


_TAG: dict[int, str] = {}


def process_tag() -> str:
    """``host:pid:start``, naming this process among every worker of every machine."""
    import os
    import socket

    pid = os.getpid()
    if pid not in _TAG:
        _TAG[pid] = f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '-'}"
    return _TAG[pid]


def process_alive(tag: str) -> bool | None:
    """Whether the process ``tag`` names still runs: None when it ran on another machine."""
    import os
    import socket

    parts = tag.rsplit(":", 2)
    if len(parts) != 3:
        return None
    host, pid, start = parts
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive, but check it is the same one below
    fields = _proc_stat(int(pid))
    if fields is None:
        return True  # no /proc to look in: the pid exists, so take it as alive
    if fields[0] in (b"Z", b"X"):
        return False  # exited, not yet reaped by its parent
    return start == "-" or fields[19].decode() == start


def tag_trial(trial) -> None:
    """Record which process runs ``trial`` (before it runs, so a crash can be traced to it)."""
    trial.set_user_attr(PROCESS_ATTR, process_tag())


def retry(study, trial) -> int | None:
    """Queue ``trial`` (failed: its worker stopped) to run again with the same parameters.

    It keeps Optuna's retry bookkeeping (``failed_trial`` and ``retry_history`` system
    attributes, as :class:`optuna.storages.RetryHeartbeatStaleTrialCallback` does), so that the
    failed attempt is recognised and not counted toward the budget. Returns the number of
    retries so far, or None when :data:`MAX_RETRY` is spent.
    """
    import optuna

    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > MAX_RETRY:
        return None
    system_attrs = {**trial.system_attrs, "failed_trial": history[0], "retry_history": history}
    user_attrs = {k: v for k, v in trial.user_attrs.items()
                  if k not in (PROCESS_ATTR, "fail_reason")}
    study.add_trial(optuna.create_trial(state=optuna.trial.TrialState.WAITING,
                                        params=trial.params, distributions=trial.distributions,
                                        user_attrs=user_attrs, system_attrs=system_attrs))
    return len(history)


def heartbeat_options() -> dict:
    """``RDBStorage`` keyword arguments for autoreg's heartbeat."""
    interval = heartbeat_interval()
    return {"heartbeat_interval": interval, "grace_period": 3 * interval,
            "heartbeat_stale_trial_callback": retry}


_STALE_CHECKED: dict[int, float] = {}  # study id -> when its heartbeats were last checked


def reap(study, trials=None) -> list[int]:
    """Fail the RUNNING trials whose worker is gone, queue them again, return their numbers.

    Gone means: a stale heartbeat (database storages; looked at once per heartbeat interval),
    a dead process on this machine, or no process tag long after the trial started (its worker
    died between claiming and tagging). ``trials``: the study's trials, if just read.
    """
    import datetime

    import optuna
    from optuna.storages._heartbeat import is_heartbeat_enabled
    from optuna.trial import TrialState

    storage = study._storage
    if trials is None:
        trials = study.get_trials(deepcopy=False)
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if not running:
        return []
    heartbeat = is_heartbeat_enabled(storage)
    stale: set[int] = set()
    if heartbeat:
        now = time.monotonic()
        if now - _STALE_CHECKED.get(study._study_id, -math.inf) >= heartbeat_interval():
            _STALE_CHECKED[study._study_id] = now
            stale = set(storage._get_stale_trial_ids(study._study_id))
    now = datetime.datetime.now()
    reaped = []
    for t in running:
        tag = t.user_attrs.get(PROCESS_ATTR)
        if t._trial_id in stale:
            dead = True
        elif tag is None:
            # Its worker died while claiming it, perhaps before its first heartbeat.
            dead = (now - (t.datetime_start or now)).total_seconds() > UNTAGGED_GRACE
        else:
            dead = process_alive(tag) is False
        if not dead:
            continue
        try:
            if not storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker reaped it first
        retry(study, storage.get_trial(t._trial_id))
        reaped.append(t.number)
    return reaped


def retried(trials) -> set[int]:
    """Numbers of the failed attempts among ``trials`` that were queued again."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", ())}


def budget_used(study, trials=None) -> int:
    """Trials that use up the budget: finished or running, but not attempts queued again."""
    from optuna.trial import TrialState

    if trials is None:
        trials = study.get_trials(deepcopy=False)
    again = retried(trials)
    return sum(1 for t in trials
               if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
               or (t.state == TrialState.FAIL and t.number not in again))


def finished(study) -> int:
    """Trials finished toward the budget (failed attempts that were queued again excluded)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    again = retried(trials)
    return sum(1 for t in trials
               if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and t.number not in again))


def running_elsewhere(study, trials=None) -> int:
    """RUNNING trials of other processes (live ones, as far as this process can tell)."""
    from optuna.trial import TrialState

    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    me = process_tag()
    return sum(1 for t in trials
               if t.state == TrialState.RUNNING and t.user_attrs.get(PROCESS_ATTR) != me)


def others_at_work(study, within: float = 30.0) -> bool:
    """Whether other processes are running trials of ``study`` or finished one in the last
    ``within`` seconds (workers started together find each other so even while none of them
    happens to be inside a trial)."""
    import datetime

    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE,
                                                      TrialState.FAIL))
    if running_elsewhere(study, trials):
        return True
    me = process_tag()
    since = datetime.datetime.now() - datetime.timedelta(seconds=within)
    return any(t.datetime_complete is not None and t.datetime_complete >= since
               and t.user_attrs.get(PROCESS_ATTR) != me for t in trials)


def lock_path(storage: str | None, purpose: str = "claim") -> Path:
    """The lock file that serializes trial claims (or MLflow logging, ``purpose="log"``) for
    ``storage`` (a URL or journal path)."""
    url = storage or default_storage()
    match = re.match(r"^sqlite:/{3}(.+)$", url)
    if match:
        return Path(match.group(1) + f".autoreg-{purpose}.lock")
    if "://" not in url:
        return Path(url + f".autoreg-{purpose}.lock")
    # A server database (PostgreSQL, MySQL): workers on this machine share a lock here.
    from .storage import home

    digest = re.sub(r"[^A-Za-z0-9]+", "_", url)[-80:]
    return home() / f"{purpose}-{digest}.lock"


@contextlib.contextmanager
def file_lock(path: Path):
    import fcntl

    from .errors import StudyError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise StudyError(f"cannot take the lock file {path}: {exc.strerror or exc}; autoreg "
                         "makes it beside the storage file, so that folder must be writable "
                         "(or use --storage elsewhere)") from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def server_dialect(store) -> str | None:
    """``postgresql`` or ``mysql`` when ``store`` is a database server that other machines may
    share (Optuna's RDB storage, or autoreg's journal in PostgreSQL); None for local storage."""
    from .pgjournal import PostgresJournalStorage

    if isinstance(store, PostgresJournalStorage):
        return "postgresql"
    name = getattr(getattr(getattr(store, "engine", None), "dialect", None), "name", None)
    return name if name in ("postgresql", "mysql") else None


def claim_lock(store, storage: str | None, study_name: str, purpose: str = "claim"):
    """A context manager factory that serializes trial claims of one study (or, with
    ``purpose="log"``, the writing of its MLflow record).

    Local storage (journal file, SQLite) takes a file lock beside it. A server database takes a
    lock inside the database itself, so that workers on *different machines* share it:
    PostgreSQL's session advisory lock (Optuna's RDB storage or ``journal+postgresql://``),
    MySQL's ``GET_LOCK``.
    """
    dialect = server_dialect(store)
    if storage == MEMORY:
        return contextlib.nullcontext  # a study in memory has this process alone
    if dialect is None:
        path = lock_path(storage, purpose)
        return lambda: file_lock(path)
    from .pgjournal import PostgresJournalStorage, advisory_key

    key = advisory_key(f"{purpose}:{study_name}")
    if isinstance(store, PostgresJournalStorage):
        return lambda: store.advisory_lock(key)

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


def run_trials(study, objective, n_trials: int, *, timeout=None, lock, on_trial=None,
               poll: float = 1.0) -> None:
    """Claim and run trials until the study's budget of ``n_trials`` is spent and no other
    worker's trial is left running (or ``timeout`` passes).

    ``lock`` is a lock file path or a context manager factory (see :func:`claim_lock`). While
    the budget is spent but other workers still run trials, this worker waits for them: one
    whose worker dies is queued again, and this worker runs it. So every worker's run ends with
    the study's, and the front it reports is the final one.

    A KeyboardInterrupt abandons the running trial: it is failed and queued again, so a resumed
    search runs it, and the interrupt propagates.
    """
    from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
    from optuna.trial import TrialState

    if isinstance(lock, Path):
        path = lock
        lock = lambda: file_lock(path)  # noqa: E731
    start = time.monotonic()
    while timeout is None or time.monotonic() - start < timeout:
        with lock():
            trials = study.get_trials(deepcopy=False)
            if reap(study, trials):
                trials = study.get_trials(deepcopy=False)
            if budget_used(study, trials) >= n_trials:
                trial = None
                others = running_elsewhere(study, trials)
            else:
                with warnings.catch_warnings():
                    # Optuna's note that heartbeats are meant for Study.optimize: this loop
                    # runs the heartbeat itself, below.
                    warnings.filterwarnings("ignore", message="Heartbeat of storage")
                    trial = study.ask()
                if is_heartbeat_enabled(study._storage):
                    study._storage.record_heartbeat(trial._trial_id)  # from the first moment
                tag_trial(trial)
        if trial is None:
            if not others:
                return
            time.sleep(poll)
            continue
        try:
            with get_heartbeat_thread(trial._trial_id, study._storage):
                values = objective(trial)
        except KeyboardInterrupt:
            abandon(study, trial)
            raise
        except Exception:
            # The objective recorded the reason; the trial is failed, the search goes on.
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, values)
        if on_trial is not None:
            on_trial(study, trial)


def abandon(study, trial) -> None:
    """Fail a trial this process stops running (Ctrl-C) and queue it again."""
    from optuna.trial import TrialState

    trial.set_user_attr("fail_reason", INTERRUPTED)
    study.tell(trial, state=TrialState.FAIL)
    retry(study, study._storage.get_trial(trial._trial_id))


#: The variables by which a user sets the BLAS/OpenMP thread count; autoreg then keeps it.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_threads():
    """One BLAS/OpenMP thread in each search process, unless the user set a count in
    :data:`THREAD_ENV`.

    autoreg's fits are many and small: threads inside one of them mostly wait on each other
    (numpy and scipy each bring an OpenBLAS, whose idle threads spin against the other's), so
    a 5-fold ridge search of a 15,000 x 300 matrix ran 2.1x slower with two threads than with
    one on a 2-core machine. Cores are better spent on trials side by side (``n_jobs``): N
    workers on N cores, not N x N threads.
    """
    import os

    if any(os.environ.get(k, "").strip() for k in THREAD_ENV):
        return contextlib.nullcontext()
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
    from .errors import stop_on_sigterm

    stop_on_sigterm()
    return exit_code(index, lambda: worker(int(index), job["data"], job["y"], **job["kwargs"]))


def exit_code(index, run) -> int:
    """Run worker ``index``'s work, ``run()``, and give its exit code: 0; 1 with the reason
    on stderr; 130 when it was stopped (Ctrl-C, or SIGTERM made a KeyboardInterrupt)."""
    import sys

    from .errors import AutoRegError

    try:
        run()
    except AutoRegError as exc:
        print(f"autoreg worker {index}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
