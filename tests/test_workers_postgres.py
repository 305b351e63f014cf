"""Separate `autoreg search` processes on one PostgreSQL study, as on separate machines: they
join one study and together stop at its budget, exactly."""

from __future__ import annotations

import collections
import os
import subprocess
import sys

import optuna
from postgres import postgres_url  # noqa: F401 (a fixture)
from test_workers import SLOW_PLUGIN


def test_processes_started_at_once_join_one_study_and_keep_its_budget(postgres_url,  # noqa: F811
                                                                      tmp_path):
    (tmp_path / "slow_plugin.py").write_text(SLOW_PLUGIN)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONWARNINGS": "ignore",
           "AUTOREG_HOME": str(tmp_path / ".autoreg")}
    cmd = [sys.executable, "-m", "autoreg.cli", "--plugin", "slow_plugin", "search", "diabetes",
           "--techniques", "l1,slow", "--trials", "30", "--storage", postgres_url, "--study",
           "machines", "--no-mlflow", "--json"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name="machines", storage=postgres_url)
    states = collections.Counter(t.state.name for t in study.trials)
    assert states == {"COMPLETE": 30}, states  # three processes, one budget, never more
    workers = collections.Counter(t.user_attrs["autoreg"]["worker"] for t in study.trials)
    assert len(workers) == 3, workers
    # A later run of the same command resumes and finds the budget spent.
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(optuna.load_study(study_name="machines", storage=postgres_url).trials) == 30


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
