"""Several worker processes sharing one study: the budget holds exactly, every worker works,
and the result is read from the shared study."""

from __future__ import annotations

import collections
import json
import os
import socket
import threading

import pytest
from optuna.trial import TrialState

import autoreg
from autoreg import datasets, workers
from autoreg.cli import main
from autoreg.errors import UsageError
from autoreg.workers import budget_used, file_lock, lock_path, run_trials


def _workers(result) -> collections.Counter:
    return collections.Counter(t.user_attrs["autoreg"]["worker"] for t in result.study.trials
                               if "autoreg" in t.user_attrs)


SLOW_PLUGIN = '''
import os
import time
from autoreg import Float, Technique, hookimpl

class Slow(Technique):
    name = "slow"
    stage = "compression"
    families = ("linear",)
    description = "Takes 80 ms ($SLOW_SECONDS), like a fit worth spreading over processes."
    space = {"x": Float(0.0, 1.0)}

    def compress(self, weights, ctx):
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0.08")))
        return weights

@hookimpl
def register_techniques(register):
    register(Slow)
'''


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_two_processes_share_one_study_and_keep_the_budget(tmp_path, monkeypatch, start):
    # Forks of the caller on Linux; fresh interpreters elsewhere (forced here to test both).
    monkeypatch.setenv("AUTOREG_WORKER_START", start)
    (tmp_path / "slow_plugin.py").write_text(SLOW_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))  # the workers import it from here too
    storage = str(tmp_path / "jobs.journal")
    kw = dict(techniques=["l1", "slow"], plugins=["slow_plugin"], storage=storage,
              study_name="jobs", log_mlflow=False)
    result = autoreg.search("diabetes", n_trials=60, n_jobs=2, **kw)
    states = collections.Counter(t.state for t in result.study.trials)
    assert states == {TrialState.COMPLETE: 60}  # never more than the budget
    assert len(result.trials) == 60 and result.failed.empty
    workers = _workers(result)
    assert len(workers) == 2 and min(workers.values()) >= 3, workers
    here = f"{socket.gethostname()}:{os.getpid()}"
    assert here in workers  # the caller is one of the workers; the other is its own process
    # Every front model was written by whichever worker ran it, and loads and predicts.
    X, _ = datasets.BUILTIN["diabetes"]()
    for trial in result.front["trial"]:
        assert result.model(trial).predict(X.head(3)).shape == (3,)
    # Resuming with more workers continues to the new total, again exactly.
    more = autoreg.search("diabetes", n_trials=100, n_jobs=3, **kw)
    assert len(more.study.trials) == 100 and len(more.trials) == 100
    assert len(_workers(more)) >= 3


def test_claims_never_exceed_the_budget_under_contention(tmp_path):
    """Eight threads race to claim trials of one study through the lock: exactly the budget
    is created (threads stand in for processes; the lock is a file lock either way)."""
    import optuna

    storage = str(tmp_path / "race.journal")
    from autoreg.storage import open_storage

    study = optuna.create_study(storage=open_storage(storage), study_name="race")
    lock = lock_path(storage)

    def objective(trial):
        return trial.suggest_float("x", 0, 1)

    threads = [threading.Thread(target=run_trials, args=(study, objective, 30),
                                kwargs={"lock": lock}) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(study.trials) == 30 and budget_used(study) == 30


def test_lock_files_sit_beside_local_storage(tmp_path):
    assert lock_path(str(tmp_path / "a.journal")) == tmp_path / "a.journal.autoreg-claim.lock"
    assert lock_path(f"sqlite:///{tmp_path}/s.db") == tmp_path / "s.db.autoreg-claim.lock"
    with file_lock(tmp_path / "x.lock"):
        pass


def test_cli_jobs(tmp_path, capsys):
    code = None
    try:
        main(["search", "diabetes", "--trials", "16", "--jobs", "2", "--no-mlflow", "--json",
              "--storage", str(tmp_path / "cli.journal"), "--study", "cli-jobs"])
    except SystemExit as exc:
        code = exc.code
    assert code in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["front"]
    import optuna

    from autoreg.storage import open_storage

    study = optuna.load_study(study_name="cli-jobs", storage=open_storage(
        str(tmp_path / "cli.journal")))
    assert len(study.trials) == 16


@pytest.mark.parametrize("kwargs, match", [
    ({"n_jobs": 0}, "n_jobs must be a whole number"),
    ({"n_jobs": 2.5}, "n_jobs must be a whole number"),
    ({"n_jobs": 2, "sampler": __import__("optuna").samplers.RandomSampler(seed=0)},
     "needs a sampler by name"),
])
def test_bad_jobs(kwargs, match):
    with pytest.raises(UsageError, match=match):
        autoreg.search("diabetes", n_trials=2, log_mlflow=False, **kwargs)


def test_bad_worker_start_fails_before_a_study_is_made(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOREG_WORKER_START", "thread")
    storage = str(tmp_path / "s.journal")
    with pytest.raises(UsageError, match="AUTOREG_WORKER_START must be fork or spawn"):
        autoreg.search("diabetes", n_trials=2, n_jobs=2, storage=storage, log_mlflow=False)
    assert not (tmp_path / "s.journal").exists()


def test_others_at_work_sees_recent_trials_of_other_processes():
    """A process joining a study whose workers are between trials still sees them at work (and
    so leaves the MLflow record, with its recorder process, to the last of them)."""
    import datetime

    import optuna

    def finished(process, seconds_ago):
        trial = optuna.trial.create_trial(
            params={}, distributions={}, values=[1.0],
            user_attrs={workers.PROCESS_ATTR: process})
        trial.datetime_start = trial.datetime_complete = \
            datetime.datetime.now() - datetime.timedelta(seconds=seconds_ago)
        return trial

    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    study.add_trial(finished(workers.process_tag(), 0))  # this process's own
    study.add_trial(finished("other-host:1:1", 120))  # another's, long ago: a resumed study
    assert not workers.others_at_work(study)
    study.add_trial(finished("other-host:1:1", 5))
    assert workers.others_at_work(study)
    assert not workers.others_at_work(study, within=1.0)
