"""Workers that die or are stopped: their trials are failed and queued again, the others
carry on, the budget holds, and rerunning the command resumes the study."""

from __future__ import annotations

import collections
import datetime
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState
from postgres import postgres_url  # noqa: F401 (a fixture)
from test_workers import SLOW_PLUGIN

from autoreg import workers
from autoreg.storage import open_storage


def _env(tmp_path, seconds: float) -> dict:
    (tmp_path / "slow_plugin.py").write_text(SLOW_PLUGIN)
    return {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONWARNINGS": "ignore",
            "AUTOREG_HOME": str(tmp_path / ".autoreg"), "SLOW_SECONDS": str(seconds),
            "AUTOREG_HEARTBEAT": "1"}


def _search(storage, study, trials, *extra) -> list[str]:
    return [sys.executable, "-m", "autoreg.cli", "--plugin", "slow_plugin", "search",
            "diabetes", "--techniques", "l1,slow", "--trials", str(trials), "--storage",
            storage, "--study", study, *extra]


def _study(storage, name):
    return optuna.load_study(study_name=name, storage=open_storage(storage))


def _wait_for(condition, proc, timeout=120.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (KeyError, FileNotFoundError):
            value = None  # the study is not made yet
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the search ended (code {proc.returncode}) before {what}: "
                                 f"{proc.stderr.read()[-2000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _running_in(storage, name, exclude_pid=None):
    """(trial number, pid) of a RUNNING trial tagged by a process other than exclude_pid."""
    for t in _study(storage, name).get_trials(states=(TrialState.RUNNING,)):
        tag = t.user_attrs.get(workers.PROCESS_ATTR)
        # A trial of seconds (the slow technique on), just begun: killed mid-trial.
        if tag and t.params.get("slow") and \
                (datetime.datetime.now() - t.datetime_start).total_seconds() < 1.0:
            pid = int(tag.rsplit(":", 2)[1])
            if pid != exclude_pid:
                return t.number, pid
    return None


def _check_retried(study, killed: int) -> optuna.trial.FrozenTrial:
    """The killed trial failed, and a later trial ran its parameters to completion."""
    trials = {t.number: t for t in study.trials}
    assert trials[killed].state == TrialState.FAIL
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed]
    assert retries, "the killed trial was not queued again"
    done = [t for t in retries if t.state == TrialState.COMPLETE]
    assert len(done) == 1
    # Every parameter the attempt had drawn before it died is kept (the rest are drawn anew).
    kept = {k: done[0].params[k] for k in trials[killed].params}
    assert trials[killed].params and kept == trials[killed].params
    return done[0]


def test_a_worker_killed_mid_trial_is_retried_and_the_budget_kept(tmp_path):
    # Slow trials of 1.5 s: each one is a second-long window in which to find it begun, even
    # when polling the study is slow on a loaded machine.
    env = _env(tmp_path, 1.5)
    storage = str(tmp_path / "crash.journal")
    proc = subprocess.Popen(_search(storage, "crash", 24, "--jobs", "3", "--no-mlflow",
                                    "--json"),
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # SIGKILL one of the spawned workers while it runs a trial.
    killed, pid = _wait_for(lambda: _running_in(storage, "crash", exclude_pid=proc.pid), proc,
                            what="a worker's running trial")
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert json.loads(out)["front"]
    study = _study(storage, "crash")
    states = collections.Counter(t.state.name for t in study.trials)
    # Exactly the budget of completed trials, plus the one attempt that died.
    assert states == {"COMPLETE": 24, "FAIL": 1}, states
    _check_retried(study, killed)
    # The other two workers carried on: both ran trials after the kill.
    after = [t for t in study.trials if t.number > killed and t.state == TrialState.COMPLETE]
    assert len({t.user_attrs[workers.PROCESS_ATTR] for t in after}) == 2


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_search_records_its_front_and_resumes(tmp_path, sig, code):
    import mlflow

    env = _env(tmp_path, 0.3)
    storage = str(tmp_path / "stop.journal")
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    cmd = _search(storage, "stop", 30, "--tracking-uri", tracking)
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def three_done():
        study = _study(storage, "stop")
        done = study.get_trials(states=(TrialState.COMPLETE,))
        running = study.get_trials(states=(TrialState.RUNNING,))
        return len(done) >= 3 and running and running[0].params.get("slow") \
            and running[0].number

    stopped = _wait_for(three_done, proc, what="three trials")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == code, err[-2000:]
    assert "Pareto front" in out and "* pick" in out  # the front so far, printed
    assert "rerun the same command to resume" in err
    study = _study(storage, "stop")
    trials = {t.number: t for t in study.trials}
    assert trials[stopped].state == TrialState.FAIL
    assert trials[stopped].user_attrs["fail_reason"].startswith("interrupted")
    waiting = [t for t in study.trials if t.state == TrialState.WAITING]
    assert [t.system_attrs["failed_trial"] for t in waiting] == [stopped]
    client = mlflow.MlflowClient(tracking_uri=tracking)
    exp = client.get_experiment_by_name("autoreg")
    parents = client.search_runs([exp.experiment_id], "tags.`autoreg.role` = 'search'")
    assert [r.info.status for r in parents] == ["KILLED"]
    n_done = len(study.get_trials(states=(TrialState.COMPLETE,)))
    assert float(parents[0].data.metrics["n_trials"]) == n_done
    if sig == signal.SIGTERM:
        return
    # The same command resumes: the abandoned trial runs again, the budget is met exactly.
    again = subprocess.run(cmd, cwd=tmp_path, env={**env, "SLOW_SECONDS": "0.01"},
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "(30 trials, 0 failed, 1 attempt(s) run again after their worker stopped)" \
        in again.stdout
    study = _study(storage, "stop")
    states = collections.Counter(t.state.name for t in study.trials)
    assert states == {"COMPLETE": 30, "FAIL": 1}, states
    _check_retried(study, stopped)
    parents = client.search_runs([exp.experiment_id], "tags.`autoreg.role` = 'search'")
    assert [r.info.status for r in parents] == ["FINISHED"]
    assert float(parents[0].data.metrics["n_trials"]) == 30
    assert float(parents[0].data.metrics["n_failed"]) == 0  # the retried attempt is no failure


@pytest.mark.parametrize("url", ["sqlite", "postgresql"])
def test_a_silent_heartbeat_fails_and_requeues_the_trial(tmp_path, monkeypatch, url, request):
    """A worker on another machine (so no process id to check) stops beating: after the grace
    period (three heartbeats) its trial is failed and queued again, and no longer counts."""
    monkeypatch.setenv("AUTOREG_HEARTBEAT", "1")
    if url == "sqlite":
        url = f"sqlite:///{tmp_path}/hb.db"
    else:
        url = request.getfixturevalue("postgres_url")
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name=f"hb-{tmp_path.name}")
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr(workers.PROCESS_ATTR, "another-machine:4242:1")
    storage.record_heartbeat(trial._trial_id)
    assert workers.reap(study) == [] and workers.budget_used(study) == 1  # still alive
    time.sleep(4.2)  # past the 3 s grace, SQLite's whole-second clock included
    assert workers.reap(study) == [trial.number]
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.WAITING]
    assert study.trials[1].params == study.trials[0].params
    assert workers.budget_used(study) == 0  # the slot is free for the retry
    # A worker then runs the retry, with the same parameters, as the next claim.
    workers.run_trials(study, lambda t: t.suggest_float("x", 0, 1), 1,
                       lock=workers.lock_path(str(tmp_path / "hb.journal")))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[1].value == study.trials[0].params["x"]


def test_a_dead_local_process_is_noticed_at_once(tmp_path):
    """On this machine a dead process id needs no grace period."""
    storage = open_storage(str(tmp_path / "dead.journal"))
    study = optuna.create_study(storage=storage, study_name="dead")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    tag = workers.process_tag().rsplit(":", 2)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr(workers.PROCESS_ATTR, f"{tag[0]}:{gone.pid}:{tag[2]}")
    mine = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    workers.tag_trial(mine)
    assert workers.reap(study) == [trial.number]
    assert workers.process_alive(workers.process_tag()) is True
    assert workers.process_alive("elsewhere:1:1") is None
    # A retry is itself retried at most MAX_RETRY times in all; then the attempt counts.
    for _ in range(workers.MAX_RETRY):
        retry = study.ask()
        retry.set_user_attr(workers.PROCESS_ATTR, f"{tag[0]}:{gone.pid}:{tag[2]}")
        assert len(workers.reap(study)) == 1
    assert workers.budget_used(study) == 1 + 1  # mine (running) and the last, spent attempt


def test_a_trial_never_tagged_is_reaped_after_a_grace_period(tmp_path, monkeypatch):
    """A worker that died between claiming a trial and tagging it left no process id and no
    heartbeat: the trial is reaped once it is older than the grace period, not before."""
    monkeypatch.setattr(workers, "UNTAGGED_GRACE", 1.0)
    storage = open_storage(f"sqlite:///{tmp_path}/untagged.db")
    study = optuna.create_study(storage=storage, study_name="untagged")
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    assert workers.reap(study) == []
    time.sleep(1.5)
    assert workers.reap(study) == [trial.number]
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.WAITING]
