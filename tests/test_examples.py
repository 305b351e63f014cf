"""The examples in examples/, run as written: each in a fresh process, the way examples/README.md
says to run it, in a folder of its own, and judged by what a user would see (the exit code, the
front printed, the files written, the study and the MLflow record they leave)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from clirun import run as run_cli
from optuna.trial import TrialState
from postgres import postgres_url  # noqa: F401 (a fixture)

import autoreg
from autoreg.storage import open_storage
from autoreg.workers import PROCESS_ATTR

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PLUGIN = EXAMPLES / "autoreg-l0"
BIN = Path(sys.executable).parent  # where this environment's `autoreg` script is


def example(name: str) -> Path:
    path = EXAMPLES / name
    assert path.is_file(), f"examples/{name} is missing"
    return path


def command_path(tmp_path: Path) -> str:
    """A PATH on which `autoreg` is this environment's: its scripts folder, or (where autoreg
    is importable but its script was not installed) a stand-in that runs its CLI."""
    if not (BIN / "autoreg").exists():
        shim = tmp_path / "bin" / "autoreg"
        shim.parent.mkdir(exist_ok=True)
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m autoreg.cli "$@"\n')
        shim.chmod(0o755)
        return f"{shim.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"


def user_env(folder: Path, **extra: str) -> dict:
    """This environment as a user's shell has it, with autoreg's home in ``folder``, every
    plugin on and no MLflow store chosen (unless ``extra`` says otherwise)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("AUTOREG_DISABLE_PLUGINS", "MLFLOW_TRACKING_URI")}
    return {**env, "AUTOREG_HOME": str(folder / ".autoreg"), **extra}


def run(cmd, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, (f"{cmd} exited with {proc.returncode}\n"
                                  f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


def front_table(out: str) -> tuple[int, int, list[str]]:
    """From `autoreg search`/`front` output: (front size and trial count as the heading says,
    the table's data rows)."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("Pareto front ("))
    size, total = map(int, re.match(r"Pareto front \((\d+) of (\d+) trials", lines[head]).groups())
    rows = []
    for line in lines[head + 2:]:  # past the column names
        if line.startswith("* pick"):
            break
        rows.append(line)
    return size, total, rows


# -- examples/dataframe_api.py -------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataframe_run(tmp_path_factory):
    """`python examples/dataframe_api.py`, run once in a folder of its own."""
    folder = tmp_path_factory.mktemp("dataframe_api")
    env = user_env(folder)  # no MLflow store chosen: the example must make none
    proc = run([sys.executable, example("dataframe_api.py")], folder, env, timeout=120)
    return folder, proc.stdout


def _new_rows() -> pd.DataFrame:
    """Raw rows as a user has them: an unseen district, missing area and heating."""
    return pd.DataFrame({"area_m2": [60.0, np.nan, 120.0, 33.3], "rooms": [2, 3, 5, 1],
                         "floor": [3, 1, 0, 9],
                         "district": ["centre", "airport", "harbour", None],
                         "heating": ["gas", None, "electric", "coal"],
                         "noise_a": [0.0, 1.0, -2.0, 0.5], "noise_b": [0.0, 0.0, 1.0, -1.0]})


def test_dataframe_api(dataframe_run, capsys, monkeypatch):
    folder, out = dataframe_run
    m = re.search(r"^Pareto front: (\d+) of (\d+) trials.*\n", out, re.M)
    assert m and int(m[2]) == 40, out
    size = int(m[1])
    table = out[m.end():].split("\n\npick:")[0].splitlines()
    assert len(table) == size + 1 and table[0].split()[:2] == ["trial", "recipe"]
    pick = re.search(r"^pick: trial (\d+) \(([\w+]+)\), .*, (\d+) bytes$", out, re.M)
    assert pick, out
    assert re.search(r"^predicted rents: \[[-\d.]+, [-\d.]+, [-\d.]+\]$", out, re.M), out
    assert "rent.autoreg reloaded: same predictions" in out
    # The file saved is as large as the pick's measured size said: size_bytes is a real file.
    written = re.search(r"^saved rent.autoreg \((\d+) bytes\)$", out, re.M)
    assert written, out
    assert int(written[1]) == (folder / "rent.autoreg").stat().st_size == int(pick[3])
    assert not (folder / "mlflow.db").exists() and not (folder / "mlruns").exists()

    # The study is where autoreg keeps studies, and it agrees with what was printed.
    monkeypatch.setenv("AUTOREG_HOME", str(folder / ".autoreg"))
    storage = open_storage(str(folder / ".autoreg" / "studies.journal"))
    (study,) = optuna.get_all_study_summaries(storage)
    code, got, err = run_cli(capsys, "front", study.study_name, "--tolerance", "0.02", "--json")
    assert code == 0, err
    front = json.loads(got)
    assert front["n_trials"] == 40 and len(front["front"]) == size
    assert front["pick"] == int(pick[1])
    (row,) = [r for r in front["front"] if r["pick"]]
    assert row["recipe"] == pick[2] and row["size_bytes"] == int(pick[3])
    assert row["sparsity"] > 0  # some of its weights are exact zeros

    # The saved file is the picked model: it predicts what the measured model predicts, on raw
    # rows with categories and gaps it never saw.
    code, _, err = run_cli(capsys, "export", study.study_name, "--trial", pick[1], "-o",
                           str(folder / "measured.autoreg"))
    assert code == 0, err
    saved, measured = autoreg.load(folder / "rent.autoreg"), autoreg.load(
        folder / "measured.autoreg")
    predicted = saved.predict(_new_rows())
    assert np.all(np.isfinite(predicted))
    np.testing.assert_allclose(predicted, measured.predict(_new_rows()), rtol=1e-6)
    assert (folder / "measured.autoreg").stat().st_size == int(pick[3])


# -- examples/job.toml ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def job_run(tmp_path_factory, mlflow_uri):
    """`autoreg search --config examples/job.toml`, once, logging to the session's MLflow store."""
    folder = tmp_path_factory.mktemp("job")
    env = user_env(folder, MLFLOW_TRACKING_URI=mlflow_uri, PATH=command_path(folder))
    proc = run(["autoreg", "search", "--config", example("job.toml")], folder, env)
    return folder, env, proc.stdout


def _job_study(folder: Path):
    storage = open_storage(str(folder / ".autoreg" / "studies.journal"))
    return optuna.load_study(study_name="breast-cancer-example", storage=storage)


def test_job_toml(job_run, mlflow_uri):
    from mlflow import MlflowClient

    folder, _, out = job_run
    size, total, rows = front_table(out)
    assert total == 40 and len(rows) == size >= 2
    assert sum(row.lstrip().startswith("*") for row in rows) == 1  # the pick is marked
    pick = re.search(r"^\* pick \(within\): trial (\d+), ", out, re.M)
    assert pick, out
    assert "study: breast-cancer-example (40 trials, 0 failed)" in out
    run_id = re.search(r"^MLflow run (\w+) in ", out, re.M)[1]

    # The file's settings are the study's.
    study = _job_study(folder)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) >= 40
    settings = study.user_attrs["autoreg.settings"]
    assert settings["dataset"] == "breast_cancer" and settings["seed"] == 0
    assert settings["techniques"].split(",") == ["l1", "l2", "pruning", "quantization"]
    for row in rows:  # every recipe is made of the file's techniques (or none)
        recipe = row.split()[2] if row.lstrip().startswith("*") else row.split()[1]
        assert set(recipe.split("+")) <= {"l1", "l2", "pruning", "quantization", "none"}, row

    client = MlflowClient(tracking_uri=mlflow_uri)
    parent = client.get_run(run_id)
    assert parent.info.experiment_id == client.get_experiment_by_name(
        "autoreg-examples").experiment_id
    assert parent.data.tags["autoreg.study"] == "breast-cancer-example"
    assert parent.data.tags["pick_trial"] == pick[1]
    assert parent.data.metrics["n_trials"] == 40


def test_job_toml_resumes_and_flags_win(job_run):
    """As the file's header says: the same command resumes the study, a flag extends it."""
    folder, env, _ = job_run
    again = run(["autoreg", "search", "--config", example("job.toml"), "--trials", "45",
                 "--no-mlflow"], folder, env)
    _, total, _ = front_table(again.stdout)
    assert total == 45
    assert "study: breast-cancer-example (45 trials, 0 failed)" in again.stdout
    assert len(_job_study(folder).get_trials(states=(TrialState.COMPLETE,))) == 45


# -- examples/read_from_mlflow.py -----------------------------------------------------------------
def test_read_from_mlflow(job_run, tmp_path, capsys, monkeypatch):
    job_folder, env, job_out = job_run
    out = run([sys.executable, example("read_from_mlflow.py")], tmp_path, env).stdout
    _, _, job_rows = front_table(job_out)
    job_pick = re.search(r"^\* pick \(within\): trial (\d+), ", job_out, re.M)[1]
    job_run_id = re.search(r"^MLflow run (\w+) in ", job_out, re.M)[1]

    assert re.search(rf"^search run {job_run_id}: study 'breast-cancer-example' on "
                     r"'breast_cancer', status FINISHED$", out, re.M), out
    assert "techniques=l1,l2,pruning,quantization" in out
    assert re.search(rf"^  40 trials, 0 failed, front of {len(job_rows)}, hypervolume 0\.\d+",
                     out, re.M), out
    assert re.search(rf"^  pick: trial {job_pick}, ", out, re.M), out
    front = re.search(r"^front.csv \((\d+) rows\):\n(.*?)\n\n", out, re.M | re.S)
    assert front and int(front[1]) == len(job_rows) == len(front[2].splitlines()) - 1
    assert re.search(rf"^picked child run \w+: trial {job_pick}, recipe [\w+]+, ", out, re.M)
    assert "model.autoreg gives the same probabilities: True" in out

    # What it printed is what the picked model predicts.
    classes = ast.literal_eval(re.search(r"^predicted classes: (\[.*\])$", out, re.M)[1])
    proba = ast.literal_eval(re.search(r"^P\(class 1\): (\[.*\])$", out, re.M)[1])
    monkeypatch.setenv("AUTOREG_HOME", str(job_folder / ".autoreg"))
    code, _, err = run_cli(capsys, "export", "breast-cancer-example", "--trial", job_pick,
                           "-o", str(tmp_path / "pick.autoreg"))
    assert code == 0, err
    from sklearn.datasets import load_breast_cancer

    rows = load_breast_cancer(as_frame=True).data.sample(8, random_state=0)
    model = autoreg.load(tmp_path / "pick.autoreg")
    assert classes == model.predict(rows).tolist()
    np.testing.assert_allclose(proba, model.predict_proba(rows)[:, 1], atol=1e-4)
    assert set(classes) == {0, 1}  # the rows show both outcomes


# -- examples/postgres_workers.sh -----------------------------------------------------------------
def _database(url: str, name: str) -> str:
    """A new database ``name`` on the server of the fixture's ``url``; its libpq URL."""
    import psycopg

    server = re.sub(r"^postgresql\+\w+://", "postgresql://", url).rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


@pytest.mark.slow
def test_postgres_workers(postgres_url, tmp_path, mlflow_uri):  # noqa: F811
    from mlflow import MlflowClient

    url = "journal+" + _database(postgres_url, "example_workers")
    env = user_env(tmp_path, AUTOREG_STORAGE=url, MLFLOW_TRACKING_URI=mlflow_uri,
                   PATH=command_path(tmp_path))
    out = run(["bash", example("postgres_workers.sh")], tmp_path, env, timeout=600).stdout
    pids = {int(p) for p in re.findall(r"^worker \d started \(pid (\d+),", out, re.M)}
    assert len(pids) == 3, out
    for i in (1, 2, 3):
        assert f"worker {i} finished" in out, out
    # The front, as `autoreg front` prints it from the database.
    size, total, rows = front_table(out)
    assert total == 60 and len(rows) == size >= 2
    assert re.search(r"^\* pick \(within\): trial \d+, ", out, re.M), out
    run_id = re.search(r"^MLflow run (\w+) in ", out, re.M)[1]

    # One study with exactly its budget of trials, however many workers ran them.
    study = optuna.load_study(study_name="diabetes-workers", storage=open_storage(url))
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 60 and len(states) == 60, states
    # The workers shared the trials; every trial names the process that ran it.
    ran = {int(t.user_attrs[PROCESS_ATTR].rsplit(":", 2)[1]) for t in study.trials}
    assert ran <= pids and len(ran) >= 2, (ran, pids)
    # Every worker ended with that same study and printed its front.
    for i in (1, 2, 3):
        log = (tmp_path / f"worker-{i}.log").read_text()
        assert front_table(log)[:2] == (size, 60), log[-2000:]
        assert "study: diabetes-workers (60 trials, 0 failed)" in log, log[-2000:]
    # The MLflow record: one parent run for the study, a child run per front trial.
    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("autoreg").experiment_id
    parents = client.search_runs(
        [exp], "tags.`autoreg.study` = 'diabetes-workers' and tags.`autoreg.role` = 'search'")
    assert [p.info.run_id for p in parents] == [run_id]
    assert parents[0].data.metrics["n_trials"] == 60
    children = client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{run_id}'")
    assert len(children) == size


# -- examples/autoreg-l0/README.md ----------------------------------------------------------------
def _readme_commands() -> list[str]:
    text = (PLUGIN / "README.md").read_text()
    block = re.search(r"```console\n(.*?)```", text, re.S)[1]
    return [line[2:].split("  #")[0].strip() for line in block.splitlines()
            if line.startswith("$ ")]


def test_plugin_readme_commands(tmp_path):
    """The plugin's README, command by command, in a throwaway virtualenv (so that no other
    test sees ``l0``), from a folder laid out like the repository (examples/autoreg-l0)."""
    commands = _readme_commands()
    assert [c.split()[:2] for c in commands] == [["pip", "install"], ["autoreg", "plugins"],
                                                 ["autoreg", "search"], ["pip", "uninstall"]]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # This environment's packages (pip, setuptools, autoreg) are reached through a .pth file.
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
               tmp_path, dict(os.environ)).stdout.strip()
    Path(site, "_parent_env.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    work = tmp_path / "repo"
    shutil.copytree(PLUGIN, work / "examples" / "autoreg-l0",
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    env = user_env(tmp_path)
    # Offline: pip builds the package with the setuptools it has, and installs nothing else.
    pip = [python, "-m", "pip", "--disable-pip-version-check", "-q"]
    offline = ["--no-deps", "--no-build-isolation", "--no-index"]
    cli = [python, "-c", "import sys; from autoreg.cli import main; main(sys.argv[1:])"]
    outputs = []
    for command in commands:
        tool, verb, *args = command.split()
        if tool == "pip":
            cmd = [*pip, verb, *(offline if verb == "install" else ["-y"]), *args]
        else:
            cmd = [*cli, verb, *args]
        outputs.append(run(cmd, work, env).stdout)
    listed = {line.split()[0]: line for line in outputs[1].splitlines()
              if line and not line[0].isspace()}
    assert re.match(r"l0 +\[penalty\] .*from autoreg-l0 0\.1\.0$", listed["l0"]), listed["l0"]
    assert "l1" in listed
    size, total, rows = front_table(outputs[2])
    assert total == 20 and len(rows) == size
    recipes = {r.split()[2] if r.lstrip().startswith("*") else r.split()[1] for r in rows}
    assert any("l0" in r.split("+") for r in recipes), recipes
    # Uninstalled, it is gone.
    after = run([*cli, "plugins", "--json"], work, env).stdout
    assert '"l0"' not in after and '"l1"' in after


# -- every example is run here --------------------------------------------------------------------
def test_every_example_is_run_by_a_test():
    """A file added to examples/ fails this until a test above runs it (through ``example``)
    and examples/README.md lists it."""
    found = {p.name for p in EXAMPLES.iterdir()
             if p.name not in ("README.md", "__pycache__") and not p.name.startswith(".")}
    run_here = set(re.findall(r'example\("([^"]+)"\)', Path(__file__).read_text()))
    run_here.add(PLUGIN.name)  # test_plugin_readme_commands (and tests/test_example_plugin.py)
    assert found <= run_here, f"examples no test runs: {sorted(found - run_here)}"
    index = example("README.md").read_text()
    for name in found:
        assert f"({name})" in index and f"examples/{name}" in index, \
            f"examples/README.md does not show how to run {name}"
