"""Faults inside a search: a technique that raises, gives NaN, diverges or hangs fails its own
trials and the search goes on; every trial failing, or a storage that is locked or damaged,
ends the search with one clear line."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import optuna
import pytest
from clirun import run as _cli

import autoreg
from autoreg import engine, storage, workers
from autoreg.errors import StudyError, UsageError

FAST = dict(log_mlflow=False, paths=False)

# A technique plugin named ``fault`` with one method body; the module also defines estimators
# that misbehave the ways a third-party one can.
PLUGIN = '''
import time
import numpy as np
from autoreg import Float, Technique, hookimpl


class NaNEstimator:
    def fit(self, X, y):
        self.coef_, self.intercept_ = np.full(X.shape[1], np.nan), 0.0
        return self

    def predict(self, X):
        return np.full(X.shape[0], np.nan)


class HugeEstimator:
    """Diverged: finite weights so large that every prediction's square overflows."""

    def fit(self, X, y):
        self.coef_, self.intercept_ = np.full(X.shape[1], 1e200), 0.0
        return self


class InfEstimator:
    def fit(self, X, y):
        self.coef_, self.intercept_ = np.full(X.shape[1], np.inf), 0.0
        return self


class NeverConverges:
    """Gradient steps toward a tolerance it never meets."""

    def fit(self, X, y):
        w = np.zeros(X.shape[1])
        while True:
            w = w - 1e-9 * (X.T @ (X @ w - y))


class Fault(Technique):
    name = "fault"
    stage = "{stage}"
    families = ("linear",)
    description = "Misbehaves on purpose."
    space = {{"x": Float(0.1, 1.0)}}

{body}


@hookimpl
def register_techniques(register):
    register(Fault)
'''

FAULTS = {
    # kind: (stage, method body, reason, trial_timeout)
    "raises": ("penalty", "def linear_estimator(self, ctx):\n    raise ValueError('boom')",
               "ValueError: boom (technique 'fault')", None),
    "estimator raises": (
        "penalty", "def linear_estimator(self, ctx):\n    return self.Broken()\n"
        "class Broken:\n    def fit(self, X, y):\n        raise RuntimeError('no fit')",
        "RuntimeError: no fit (technique 'fault')", None),
    "NaN weights from compress": (
        "compression", "def compress(self, weights, ctx):\n"
        "    return [np.full_like(w, np.nan) for w in weights]",
        "FloatingPointError: technique 'fault': compress() returned non-finite weights", None),
    "estimator gives NaN": (
        "penalty", "def linear_estimator(self, ctx):\n    return NaNEstimator()",
        "FloatingPointError: the fit gave non-finite weights (NaN or inf): it diverged "
        "(technique 'fault')", None),
    "inf weights": (
        "penalty", "def linear_estimator(self, ctx):\n    return InfEstimator()",
        "FloatingPointError: the fit gave non-finite weights (NaN or inf): it diverged "
        "(technique 'fault')", None),
    "huge weights": (
        "penalty", "def linear_estimator(self, ctx):\n    return HugeEstimator()",
        "FloatingPointError: the validation error is not finite (the fit diverged) "
        "(technique 'fault')", None),
    "never converges": (
        "penalty", "def linear_estimator(self, ctx):\n    return NeverConverges()",
        "exceeded the per-trial time limit of 0.5 s (technique 'fault')", 0.5),
    "hangs": ("compression", "def compress(self, weights, ctx):\n    time.sleep(60)",
              "exceeded the per-trial time limit of 0.5 s (technique 'fault')", 0.5),
}


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """Write a ``fault`` plugin module into a folder on sys.path; returns its module name."""
    folder = tmp_path / "plugins_here"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    written = []

    def write(stage: str, body: str, module: str = "fault_plugin") -> str:
        source = PLUGIN.format(stage=stage, body=textwrap.indent(body, "    "))
        (folder / f"{module}.py").write_text(source)
        importlib.invalidate_caches()
        sys.modules.pop(module, None)
        written.append(module)
        return module

    yield write
    for module in written:
        sys.modules.pop(module, None)


@pytest.mark.parametrize("kind", list(FAULTS))
def test_a_faulty_technique_fails_its_trials_and_the_search_goes_on(kind, plugin,
                                                                     tiny_regression):
    stage, body, reason, limit = FAULTS[kind]
    module = plugin(stage, body)
    X, y = tiny_regression
    started = time.monotonic()
    # A penalty is chosen beside l2; a compression technique is tried on and off over l2.
    result = autoreg.search(X, y, techniques=["l2", "fault"], plugins=[module], n_trials=8,
                            sampler="random", trial_timeout=limit, **FAST)
    assert len(result.trials) + len(result.failed) == 8  # the budget was completed
    assert len(result.trials) >= 1 and len(result.failed) >= 1
    assert set(result.failed["reason"]) == {reason}
    assert set(result.trials["recipe"]) <= {"l2", "none"}  # every recipe with it failed
    if limit is not None:  # each hanging trial was stopped near its limit, not after 60 s
        assert time.monotonic() - started < 8 * limit + 20


def test_every_trial_failing_ends_with_a_summary(plugin, tiny_regression):
    module = plugin(*FAULTS["raises"][:2])
    X, y = tiny_regression
    with pytest.raises(StudyError) as info:
        autoreg.search(X, y, techniques=["fault"], plugins=[module], n_trials=5, **FAST)
    message = str(info.value)
    assert message.startswith("all 5 trials failed: 5 x ValueError: boom (technique 'fault')")
    assert "--disable-plugin fault_plugin" in message and "\n" not in message


def test_the_summary_groups_reasons_and_suggests_more_time(plugin, tiny_regression):
    module = plugin("penalty", "def linear_estimator(self, ctx):\n"
                    "    if self.x < 0.5:\n        raise ValueError('small x')\n"
                    "    time.sleep(60)")
    X, y = tiny_regression
    with pytest.raises(StudyError) as info:
        autoreg.search(X, y, techniques=["fault"], plugins=[module], n_trials=6,
                       sampler="random", trial_timeout=0.3, **FAST)
    message = str(info.value)
    counts = {r: int(n) for n, r in
              (part.split(" x ", 1) for part in message.split(": ", 1)[1].split("; ")[:2])}
    assert counts.keys() == {"ValueError: small x (technique 'fault')",
                             "exceeded the per-trial time limit of 0.3 s (technique 'fault')"}
    assert sum(counts.values()) == 6
    assert "raise --trial-timeout" in message and "--disable-plugin fault_plugin" in message


@pytest.fixture
def csv_path(tiny_regression, tmp_path):
    X, y = tiny_regression
    path = tmp_path / "data.csv"
    X.assign(target=y).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("kind", ["raises", "estimator gives NaN", "huge weights", "hangs"])
def test_the_cli_reports_faulty_trials_and_finishes(kind, plugin, csv_path, capsys):
    stage, body, reason, limit = FAULTS[kind]
    module = plugin(stage, body)
    extra = ["--trial-timeout", str(limit)] if limit else []
    code, out, err = _cli(capsys, "--plugin", module, "search", csv_path, "--target", "target",
                          "--techniques", "l2,fault", "--trials", "8", "--sampler", "random",
                          "--no-mlflow", "--no-paths", *extra)
    assert code == 0, err
    failed = [line.strip() for line in out.splitlines() if line.strip().startswith("failed ")]
    assert failed and failed[0].endswith(f"x: {reason}")


def test_the_cli_says_why_every_trial_failed_in_one_line(plugin, csv_path, capsys):
    module = plugin(*FAULTS["raises"][:2])
    code, out, err = _cli(capsys, "--plugin", module, "search", csv_path, "--target", "target",
                          "--techniques", "fault", "--trials", "4", "--no-mlflow", "--json")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("autoreg: error: all 4 trials failed: 4 x ValueError: boom "
                          "(technique 'fault'); to search without it: --disable-plugin "
                          "fault_plugin")


# -- the per-trial time limit -------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "2", True])
def test_trial_timeout_must_be_a_positive_number(bad, tiny_regression):
    X, y = tiny_regression
    with pytest.raises(UsageError, match="trial_timeout must be a positive number of seconds"):
        autoreg.search(X, y, n_trials=2, trial_timeout=bad, **FAST)


def test_cli_trial_timeout_is_checked(csv_path, capsys):
    code, _, err = _cli(capsys, "search", csv_path, "--target", "target", "--trials", "2",
                        "--no-mlflow", "--trial-timeout", "0")
    assert code == 2 and err.count("\n") == 1 and "trial_timeout must be a positive" in err


def test_the_path_walk_respects_the_time_limit(plugin, tiny_regression):
    # A penalty with a regularization path that hangs: its path points are stopped too.
    module = plugin("penalty", "def linear_estimator(self, ctx):\n    time.sleep(60)\n"
                    "linear_path = {}\n"
                    "space = {'strength': Float(1e-3, 1.0, log=True)}")
    X, y = tiny_regression
    started = time.monotonic()
    result = autoreg.search(X, y, techniques=["fault", "none"], plugins=[module], n_trials=8,
                            sampler="random", trial_timeout=0.3, log_mlflow=False)
    # Walked points are added to the study, marked walked and by the process that measured them.
    walked = [t for t in result.study.trials if t.user_attrs.get(workers.WALKED_ATTR)]
    assert {t.user_attrs[workers.PROCESS_ATTR] for t in result.study.trials} \
        == {workers.process_tag()}
    assert [t.state.name for t in walked] == ["FAIL"] * 3 + ["COMPLETE"]  # fault x 3, none
    assert set(result.failed["reason"]) == {
        "exceeded the per-trial time limit of 0.3 s (technique 'fault')"}
    assert len(result.trials) + len(result.failed) == 8
    assert time.monotonic() - started < 8 * 0.3 + 20


def test_a_previous_alarm_handler_and_timer_are_restored(plugin, tiny_regression):
    module = plugin("compression", "def compress(self, weights, ctx):\n"
                    "    time.sleep(0.05)\n    return weights")
    X, y = tiny_regression
    calls = []

    def mine(signum, frame):
        calls.append(time.monotonic())

    old_timer = signal.setitimer(signal.ITIMER_REAL, 0)
    old = signal.signal(signal.SIGALRM, mine)
    try:
        # Due in the middle of the search: it still reaches this handler, once.
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        autoreg.search(X, y, techniques=["l2", "fault"], plugins=[module], n_trials=10,
                       sampler="random", trial_timeout=5, **FAST)
        assert signal.getsignal(signal.SIGALRM) is mine
        assert len(calls) == 1
        # A timer still pending after the search is pending still.
        signal.setitimer(signal.ITIMER_REAL, 100)
        autoreg.search(X, y, techniques=["l2"], n_trials=3, trial_timeout=5, **FAST)
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 50 < remaining <= 100
        assert signal.getsignal(signal.SIGALRM) is mine
    finally:
        signal.signal(signal.SIGALRM, old)
        signal.setitimer(signal.ITIMER_REAL, *old_timer)


def test_outside_the_main_thread_a_warning_says_what_the_limit_can_do(plugin, tiny_regression):
    import threading

    module = plugin("compression", "def compress(self, weights, ctx):\n"
                    "    time.sleep(0.3)\n    return weights")
    X, y = tiny_regression
    got = {}

    def run():
        got["result"] = autoreg.search(X, y, techniques=["l2", "fault"], plugins=[module],
                                       n_trials=4, sampler="random", trial_timeout=0.1, **FAST)

    with pytest.warns(RuntimeWarning, match=r"cannot interrupt a trial here \(the search runs "
                                             r"outside the main thread\): a trial over 0.1 s "
                                             r"is failed only once it ends"):
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    result = got["result"]
    assert len(result.trials) + len(result.failed) == 4
    # Not interrupted, but failed when its fold's fit returned.
    assert set(result.failed["reason"]) == {
        "exceeded the per-trial time limit of 0.1 s (recipe 'l2+fault')"}


HANGS = ("penalty", "def linear_estimator(self, ctx):\n    time.sleep(60)")


def test_forked_workers_stop_their_trials_too(plugin, tiny_regression, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOREG_WORKER_START", "fork")
    module = plugin(*HANGS)
    X, y = tiny_regression
    path = str(tmp_path / "jobs.journal")
    with pytest.raises(StudyError, match=r"all 6 trials failed: 6 x exceeded the per-trial "
                                         r"time limit of 0.5 s \(technique 'fault'\)"):
        autoreg.search(X, y, techniques=["fault"], plugins=[module], n_trials=6, n_jobs=2,
                       sampler="random", trial_timeout=0.5, storage=path, study_name="jobs",
                       **FAST)
    study = optuna.load_study(study_name="jobs", storage=storage.open_storage(path))
    assert [t.state.name for t in study.trials] == ["FAIL"] * 6
    pids = {t.user_attrs[workers.PROCESS_ATTR].split(":")[1] for t in study.trials}
    assert len(pids) == 2  # this process and the fork both stopped trials


def test_run_trials_stops_a_trial_over_the_limit(plugin, tiny_regression, tmp_path):
    """The loop that database storages (many machines) use."""
    module = plugin(*HANGS)
    X, y = tiny_regression
    build = dict(target=None, task="auto", techniques=["fault"], families=None,
                 objectives=("error", "sparsity", "size"), metric=None, validation="auto",
                 seed=0, sampler="random", test_size=0.2, max_size=None, min_sparsity=None,
                 max_error=None, groups=None, hidden=None, disable_plugins=(),
                 plugins=[module])
    ds, space, metric, ws, _, constraints = engine._build(X, y, **build)
    objective = engine.Objective(ws, space, metric, build["objectives"],
                                 storage.ModelStore(tmp_path / "models"), "k", constraints,
                                 trial_timeout=0.3)
    path = str(tmp_path / "run.journal")
    study = optuna.create_study(storage=storage.open_storage(path),
                                directions=["minimize", "maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    started = time.monotonic()
    workers.run_trials(study, objective, 3, lock=workers.lock_path(path))
    assert time.monotonic() - started < 3 * 0.3 + 15
    assert [t.user_attrs.get("fail_reason") for t in study.trials] == [
        "exceeded the per-trial time limit of 0.3 s (technique 'fault')"] * 3


# -- storage that is locked or damaged ----------------------------------------------------------
def _search_on(storage_url, tiny_regression, **kw):
    X, y = tiny_regression
    kw = {"n_trials": 2, **kw}
    return autoreg.search(X, y, storage=storage_url, study_name="s", **FAST, **kw)


def test_a_locked_sqlite_storage_is_a_clear_error(tmp_path, tiny_regression, monkeypatch):
    db = tmp_path / "locked.db"
    _search_on(f"sqlite:///{db}", tiny_regression)  # a study is in it
    before = db.read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
         "c.execute('BEGIN EXCLUSIVE'); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(storage, "SQLITE_BUSY_SECONDS", 0.3)
        with pytest.raises(StudyError, match=r"the SQLite storage .*locked\.db is locked: "
                                             r"another process has held a write transaction"):
            _search_on(f"sqlite:///{db}", tiny_regression)
    finally:
        holder.kill()
        holder.wait()
    assert db.read_bytes() == before
    # Once it lets go, the same command resumes the study.
    result = _search_on(f"sqlite:///{db}", tiny_regression)
    assert result.resumed


def test_an_sqlite_file_that_is_not_a_database(tmp_path, tiny_regression, capsys, csv_path):
    db = tmp_path / "garbage.db"
    garbage = os.urandom(4096)
    db.write_bytes(garbage)
    with pytest.raises(StudyError, match=r"the SQLite storage .*garbage\.db is not a readable "
                                         r"database .*leaves it as it is: move it away"):
        _search_on(f"sqlite:///{db}", tiny_regression)
    code, _, err = _cli(capsys, "search", csv_path, "--target", "target", "--trials", "2",
                        "--no-mlflow", "--storage", f"sqlite:///{db}")
    assert code == 1 and err.count("\n") == 1 and "not a readable database" in err
    assert db.read_bytes() == garbage


def _journal_with_a_study(tmp_path, tiny_regression) -> str:
    path = str(tmp_path / "studies.journal")
    _search_on(path, tiny_regression)
    return path


def test_a_journal_with_a_garbage_line(tmp_path, tiny_regression, capsys, csv_path):
    path = _journal_with_a_study(tmp_path, tiny_regression)
    lines = open(path, "rb").read().splitlines(keepends=True)
    damaged = b"".join(lines[:3]) + b"this is not json\n" + b"".join(lines[3:])
    open(path, "wb").write(damaged)
    with pytest.raises(StudyError, match=r"the journal file .*studies\.journal is damaged at "
                                         r"line 4 \(not a record: 'this is not json'\); "
                                         r"autoreg leaves it as it is: move it away"):
        _search_on(path, tiny_regression)
    code, out, err = _cli(capsys, "search", csv_path, "--target", "target", "--trials", "2",
                          "--no-mlflow", "--storage", path, "--study", "s")
    assert code == 1 and err.count("\n") == 1 and "damaged at line 4" in err
    assert open(path, "rb").read() == damaged  # nothing written, nothing truncated


def test_a_journal_cut_off_mid_record(tmp_path, tiny_regression):
    path = _journal_with_a_study(tmp_path, tiny_regression)
    data = open(path, "rb").read()
    n_lines = data.count(b"\n")
    cut = data[:-25]  # the last record loses its end
    open(path, "wb").write(cut)
    with pytest.raises(StudyError, match=rf"damaged at line {n_lines} \(its last write was "
                                         r"cut off: "):
        _search_on(path, tiny_regression)
    assert open(path, "rb").read() == cut  # never appended after the cut-off line
    # Cut inside a record in the middle: that line is not a record.
    lines = data.splitlines(keepends=True)
    middle = b"".join(lines[:2]) + lines[2][:20] + b"\n" + b"".join(lines[3:])
    open(path, "wb").write(middle)
    with pytest.raises(StudyError, match="damaged at line 3 "):
        _search_on(path, tiny_regression)
    assert open(path, "rb").read() == middle


def test_a_file_that_is_no_journal(tmp_path, tiny_regression):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"my notes\nmore notes\n")
    with pytest.raises(StudyError, match=r"notes\.txt is not a journal file"):
        _search_on(str(path), tiny_regression)
    db = tmp_path / "actually.db"
    _search_on(f"sqlite:///{db}", tiny_regression)
    with pytest.raises(StudyError, match=r"actually\.db is an SQLite database, not a journal "
                                         r"file: use --storage sqlite:///"):
        _search_on(str(db), tiny_regression)
    assert path.read_bytes() == b"my notes\nmore notes\n"


def test_a_journal_whose_lock_file_cannot_be_made(tmp_path, tiny_regression, monkeypatch):
    path = _journal_with_a_study(tmp_path, tiny_regression)
    before = open(path, "rb").read()

    def refused(src, dst, *args, **kwargs):  # what a folder one may not write to gives
        raise PermissionError(13, "Permission denied", dst)

    monkeypatch.setattr(os, "symlink", refused)  # Optuna's journal lock is a symlink
    with pytest.raises(StudyError, match=r"cannot take the journal's lock file .*studies\."
                                         r"journal\.lock: Permission denied; .* must be writable"):
        _search_on(path, tiny_regression, n_trials=3)
    assert open(path, "rb").read() == before


def test_lock_files_with_names_too_long(tmp_path, tiny_regression):
    # A name the file system takes, but not with a lock suffix added (over 255 bytes).
    path = tmp_path / ("j" * 252)
    with pytest.raises(StudyError, match=r"cannot take the lock file .*: File name too long"):
        _search_on(str(path), tiny_regression)
    assert path.read_bytes() == b""  # no record of a half-made study


def test_a_claim_lock_that_cannot_be_taken(tmp_path, tiny_regression, capsys, csv_path):
    path = str(tmp_path / "studies.journal")
    os.mkdir(workers.lock_path(path))  # something else sits where the lock file goes
    with pytest.raises(StudyError, match=r"cannot take the lock file .*studies\.journal\.autoreg-"
                                         r"claim\.lock: Is a directory"):
        _search_on(path, tiny_regression)
    code, out, err = _cli(capsys, "search", csv_path, "--target", "target", "--trials", "2",
                          "--no-mlflow", "--storage", path)
    assert code == 1 and err.count("\n") == 1 and "cannot take the lock file" in err
    assert open(path, "rb").read() == b""  # no study was half made


def test_a_storage_fault_leaves_the_json_output_empty(tmp_path, tiny_regression, capsys,
                                                      csv_path):
    path = _journal_with_a_study(tmp_path, tiny_regression)
    n_lines = open(path, "rb").read().count(b"\n")
    with open(path, "ab") as fh:
        fh.write(b"\x00\x01\x02\n")
    code, out, err = _cli(capsys, "search", csv_path, "--target", "target", "--trials", "2",
                          "--no-mlflow", "--json", "--storage", path)
    assert code == 1 and out == "" and f"damaged at line {n_lines + 1}" in err
