"""Separate `autoreg search` processes on one PostgreSQL study, as on separate machines: they
join one study, survive a killed worker and together stop at its budget, exactly."""

from __future__ import annotations

import collections
import datetime
import os
import signal
import subprocess
import sys
import time

import optuna
from optuna.trial import TrialState
from postgres import postgres_url  # noqa: F401 (a fixture)
from test_workers import SLOW_PLUGIN

from autoreg import workers


def start_workers(tmp_path, storage_url: str, n: int, trials: int, slow_seconds: float):
    """``n`` `autoreg search` processes started at once on study ``machines``, as on ``n``
    machines, searching ``l1`` and the slow technique. Returns (processes, command, env,
    MLflow tracking URI)."""
    (tmp_path / "slow_plugin.py").write_text(SLOW_PLUGIN)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONWARNINGS": "ignore",
           "AUTOREG_HOME": str(tmp_path / ".autoreg"), "SLOW_SECONDS": str(slow_seconds),
           "AUTOREG_HEARTBEAT": "1"}
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    cmd = [sys.executable, "-m", "autoreg.cli", "--plugin", "slow_plugin", "search", "diabetes",
           "--techniques", "l1,slow", "--trials", str(trials), "--storage", storage_url,
           "--study", "machines", "--tracking-uri", tracking]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    return procs, cmd, env, tracking


def kill_one_mid_trial(storage, procs, *, after: int, fresh: float, timeout: float,
                       poll: float) -> tuple[int, int]:
    """Once ``after`` trials are complete, SIGKILL the worker of a trial with the slow
    technique on that began less than ``fresh`` seconds ago (so it dies mid-trial); return
    (that trial's number, the pid)."""
    pids = {p.pid for p in procs}

    def victim():
        try:
            study = optuna.load_study(study_name="machines", storage=storage)
        except KeyError:
            return None
        if len(study.get_trials(states=(TrialState.COMPLETE,))) < after:
            return None
        for t in study.get_trials(states=(TrialState.RUNNING,)):
            pid = int(t.user_attrs.get(workers.PROCESS_ATTR, "x:0:0").rsplit(":", 2)[1])
            if pid in pids and t.params.get("slow") and \
                    (datetime.datetime.now() - t.datetime_start).total_seconds() < fresh:
                return t.number, pid
        return None

    deadline = time.monotonic() + timeout
    found = None
    while found is None and time.monotonic() < deadline:
        found = victim()
        time.sleep(poll)
    assert found, "no worker ran a trial in time"
    os.kill(found[1], signal.SIGKILL)
    return found


def end_of_workers(procs, killed_pid: int, timeout: float) -> None:
    """The killed worker died of SIGKILL; every other exits 0 and prints the front."""
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        if proc.pid == killed_pid:
            assert proc.returncode == -signal.SIGKILL
        else:
            assert proc.returncode == 0, err[-2000:]
            assert "Pareto front (" in out


def test_four_machines_one_study_one_parent_run_and_a_kill(postgres_url, tmp_path):  # noqa: F811
    """Four `autoreg search` processes, started at once as on four machines, run one study on
    PostgreSQL and log to one MLflow store. One is SIGKILLed mid-trial: the other three carry
    on, its trial is failed and run again, and together they spend the budget exactly. One
    MLflow parent run exists, with one child run per front trial; the same command run again
    resumes the study and finds nothing left to do."""
    import mlflow

    procs, cmd, env, tracking = start_workers(tmp_path, postgres_url, 4, 40, 0.5)
    pids = {p.pid: p for p in procs}
    # A trial of seconds (the slow technique on), just begun: killed mid-trial.
    killed, pid = kill_one_mid_trial(optuna.storages.RDBStorage(postgres_url), procs, after=4,
                                     fresh=1.0, timeout=180, poll=0.1)
    end_of_workers(procs, pid, timeout=300)
    study = optuna.load_study(study_name="machines", storage=postgres_url)
    states = collections.Counter(t.state.name for t in study.trials)
    assert states == {"COMPLETE": 40, "FAIL": 1}, states  # the budget, plus the killed attempt
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed]
    assert [t.state for t in retry] == [TrialState.COMPLETE]
    drawn = study.trials[killed].params  # what the attempt had drawn before it died
    assert {k: retry[0].params[k] for k in drawn} == drawn
    # The three others carried on: each ran trials after the kill.
    after = {int(t.user_attrs[workers.PROCESS_ATTR].rsplit(":", 2)[1]) for t in study.trials
             if t.number > killed and t.state == TrialState.COMPLETE}
    assert after == set(pids) - {pid}, after

    client = mlflow.MlflowClient(tracking_uri=tracking)
    exp = client.get_experiment_by_name("autoreg")
    parents = client.search_runs([exp.experiment_id], "tags.`autoreg.role` = 'search'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert float(parents[0].data.metrics["n_trials"]) == 40
    children = client.search_runs(
        [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'")
    trial_tags = collections.Counter(r.data.tags["autoreg.trial"] for r in children)
    assert trial_tags and max(trial_tags.values()) == 1  # each front trial logged once
    assert len(trial_tags) == float(parents[0].data.metrics["front_size"])

    # The same command again resumes the study: nothing left to run, nothing logged twice.
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(optuna.load_study(study_name="machines", storage=postgres_url).trials) == 41
    assert len(client.search_runs([exp.experiment_id],
                                  "tags.`autoreg.role` = 'search'")) == 1


def test_workers_opening_a_fresh_database_at_once_all_get_in(postgres_url):  # noqa: F811
    """The first processes on a new database race to create Optuna's tables; all succeed."""
    import psycopg

    base, _, _ = postgres_url.rpartition("/")
    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("CREATE DATABASE fresh_race")
    url = f"{base}/fresh_race"
    code = "import sys; from autoreg.storage import open_storage; open_storage(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE,
                              text=True) for _ in range(6)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
