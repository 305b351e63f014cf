"""The autoreg command line, as a user types it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from clirun import run

import autoreg


@pytest.fixture
def csv_path(tiny_regression, tmp_path):
    X, y = tiny_regression
    df = X.assign(target=y)
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    return path


def test_version_and_help(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and autoreg.__version__ in out
    for cmd in ([], ["search"], ["plugins"], ["front"], ["export"]):
        code, out, _ = run(capsys, *cmd, "--help")
        assert code == 0 and "Usage:" in out


def test_search_json_front_and_export(capsys, csv_path, tmp_path):
    code, out, err = run(capsys, "search", str(csv_path), "--target", "target", "--trials", "10",
                         "--study", "cli", "--json")
    assert code == 0, err
    doc = json.loads(out)  # --json prints JSON and nothing else
    assert doc["study"] == "cli" and doc["mlflow_run_id"]
    assert doc["n_trials"] == 10
    rows = doc["front"]
    assert sum(r["pick"] for r in rows) == 1
    for key in ("trial", "recipe", "error", "sparsity", "size_bytes", "test_error"):
        assert all(key in r for r in rows)
    pick = next(r for r in rows if r["pick"])
    assert pick["trial"] == doc["pick"]

    code, out, _ = run(capsys, "front", "cli", "--json")
    assert code == 0
    again = json.loads(out)
    assert [r["trial"] for r in again["front"]] == [r["trial"] for r in rows]

    target = tmp_path / "model.autoreg"
    code, out, _ = run(capsys, "export", "cli", "--trial", str(pick["trial"]), "-o", str(target))
    assert code == 0 and target.stat().st_size == pick["size_bytes"]
    model = autoreg.load(target)
    import pandas as pd

    raw = pd.read_csv(csv_path).drop(columns=["target"])
    assert model.predict(raw).shape == (len(raw),)


def test_table_marks_the_pick(capsys, csv_path):
    code, out, _ = run(capsys, "search", str(csv_path), "--target", "target", "--trials", "6",
                       "--no-mlflow")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Pareto front")
    marked = [line for line in lines[2:] if line.strip().startswith("*")]
    assert len(marked) == 2  # the marked row and the legend line
    assert "resume or extend: autoreg search ... --study" in out


def test_no_arguments_runs_the_demo(capsys):
    code, out, err = run(capsys, "search", "--trials", "8")
    assert code == 0, err
    assert "diabetes-" in out and "MLflow run" in out


@pytest.mark.parametrize("argv, code, needle", [
    (["search", "missing.csv", "--target", "y"], 2, "file not found: missing.csv"),
    (["search", "nosuchdataset"], 2, "no file and no built-in dataset named 'nosuchdataset'"),
    (["search", "--trials", "0"], 2, "n_trials must be a positive whole number"),
    (["search", "--trials", "many"], 2, "'many' is not a valid integer"),
    (["search", "--techniques", "l9"], 2, "unknown technique 'l9'"),
    (["search", "--validation", "0"], 2, "at least 2 folds"),
    (["search", "--storage", "ftp://x/y"], 2, "unsupported storage URL"),
    (["search", "--objectives", "error,speed"], 2, "unknown objective 'speed'"),
    (["front", "no-such-study"], 1, "no study named 'no-such-study'"),
    (["frobnicate"], 2, "No such command 'frobnicate'"),
])
def test_bad_input_is_one_line(capsys, argv, code, needle):
    got, out, err = run(capsys, *argv)
    assert got == code
    assert needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert out == ""


def test_csv_without_target_tells_how(capsys, csv_path):
    code, _, err = run(capsys, "search", str(csv_path))
    assert code == 2 and "--target" in err and "f0" in err


def test_unwritable_export_path(capsys, csv_path, tmp_path):
    run(capsys, "search", str(csv_path), "--target", "target", "--trials", "3", "--study", "w",
        "--no-mlflow")
    code, _, err = run(capsys, "export", "w", "-o", str(tmp_path / "no" / "dir" / "m.autoreg"))
    assert code == 2 and "cannot write" in err and "does not exist" in err


def test_console_script_and_no_traceback(tmp_path):
    """The installed entry point: a real process, a real exit code."""
    proc = subprocess.run([sys.executable, "-c", "from autoreg.cli import main; main()",
                           "search", "nope.parquet", "--target", "y"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("autoreg: error: file not found: nope.parquet (check the "
                                   "path, or name a built-in dataset such as diabetes)")


def test_json_output_loads_numbers(capsys):
    code, out, _ = run(capsys, "search", "breast_cancer", "--trials", "4", "--no-mlflow",
                       "--json", "--validation", "holdout")
    assert code == 0
    doc = json.loads(out)
    errs = [r["error"] for r in doc["front"]]
    assert all(isinstance(e, float) and np.isfinite(e) for e in errs)
    assert doc["mlflow_run_id"] is None


def test_progress_bar_on_a_terminal(tmp_path):
    """With stderr on a terminal the search draws a progress bar; piped, it stays silent."""
    import os

    master, slave = os.openpty()
    code = "from autoreg.cli import main; main()"
    args = [sys.executable, "-c", code, "search", "--trials", "5", "--no-mlflow"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, cwd=tmp_path)
    os.close(slave)
    out, _ = proc.communicate(timeout=120)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    shown = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "5/5" in shown and "trial" in shown
    assert b"5/5" not in out


def test_timeout_stops_the_search(capsys):
    code, out, err = run(capsys, "search", "--trials", "100000", "--timeout", "2", "--no-mlflow",
                         "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert 0 < doc["n_trials"] < 100000


def test_no_paths_samples_every_trial(capsys, csv_path):
    import optuna

    from autoreg.storage import open_storage

    for flag, study in (([], "walked"), (["--no-paths"], "sampled")):
        code, _, err = run(capsys, "search", str(csv_path), "--target", "target", "--trials",
                           "30", "--study", study, "--no-mlflow", "--json", *flag)
        assert code == 0, err
    first = {}
    for study in ("walked", "sampled"):
        trials = optuna.load_study(study_name=study, storage=open_storage(None)).trials
        first[study] = [t.params["penalty"] for t in trials[:4]]
    assert first["walked"] == ["elasticnet"] * 3 + ["group_lasso"]  # the first path, in order
    assert first["sampled"] != first["walked"]
