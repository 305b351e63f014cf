"""The PostgreSQL fixture really serves several processes: one Optuna study, two worker processes
of 3 trials each, 6 trials in the end."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
from postgres import postgres_url  # noqa: F401 (a fixture)

WORKER = """
import os, sys
import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1])

def objective(trial):
    trial.set_user_attr("pid", os.getpid())
    return trial.suggest_float("x", -1.0, 1.0) ** 2

study.optimize(objective, n_trials=3)
"""


def test_two_processes_share_one_study(postgres_url):  # noqa: F811
    assert postgres_url.startswith("postgresql+")
    study = optuna.create_study(study_name="shared", storage=postgres_url)
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, postgres_url, "shared"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0, out

    trials = optuna.load_study(study_name="shared", storage=postgres_url).trials
    assert len(trials) == 6
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["pid"] for t in trials}) == 2
    assert sorted(t.number for t in trials) == list(range(6))
    assert study.best_value == pytest.approx(min(t.value for t in trials))
