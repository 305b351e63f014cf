"""A search against a real MLflow tracking server on a loopback port, read back with
MlflowClient: runs, metrics, tags, the dataset input, artifacts, a registered model and a loaded
model's predictions. Also: an unreachable server, then the record written later."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import autoreg
from autoreg.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, proc, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {seconds} s")


def _stop(proc) -> None:
    """Stop ``proc`` and everything it started: MLflow's server runs job and queue workers of
    its own, which outlive their parent unless the whole process group goes."""
    import signal

    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            time.sleep(0.5)  # let the group's other members go too
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``mlflow server`` with a SQLite backend and served artifacts, on a free loopback port."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    exe = Path(sys.executable).with_name("mlflow")
    cmd = [str(exe), "server", "--backend-store-uri", f"sqlite:///{root}/backend.db",
           "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    log = open(root / "server.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url + "/health", proc)
        yield url
    finally:
        _stop(proc)
        log.close()


@pytest.fixture
def client(server):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=server)


def _children(client, run_id):
    run = client.get_run(run_id)
    return client.search_runs([run.info.experiment_id],
                              filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'")


@pytest.fixture
def shops():
    rng = np.random.default_rng(0)
    n = 240
    df = pd.DataFrame(rng.standard_normal((n, 4)), columns=["a", "b", "c", "d"])
    df["shop"] = rng.choice(["north", "south", "east"], n)
    df["sales"] = 3 * df["a"] - df["b"] + (df["shop"] == "north") + 0.2 * rng.normal(size=n)
    return df


def test_search_against_a_server_reads_back_whole(server, client, shops, tmp_path, monkeypatch):
    import mlflow

    # A reader of the server points MLflow at it; models:/ URIs resolve there.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    result = autoreg.search(shops, target="sales", n_trials=15, tracking_uri=server,
                            experiment="server-test", register="shops-model", seed=1,
                            storage=f"sqlite:///{tmp_path}/s.db")
    parent = client.get_run(result.mlflow_run_id)
    pick = result.pick()

    # Parent: settings, tags, summary metrics, dataset input, artifacts.
    assert parent.info.status == "FINISHED"
    assert parent.data.params["n_rows"] == "240" and parent.data.params["task"] == "regression"
    tags = parent.data.tags
    assert tags["autoreg.version"] == autoreg.__version__
    assert tags["autoreg.study"] == result.study_name
    assert tags["autoreg.storage"] == f"sqlite:///{tmp_path}/s.db"
    assert tags["pick_trial"] == str(int(pick["trial"]))
    assert "error=" in tags["hypervolume.reference"]
    metrics = parent.data.metrics
    assert metrics["front_size"] == len(result.front)
    assert 0 < metrics["hypervolume"] <= 1
    for k in ("error", "sparsity", "size_bytes", "test_error"):
        assert metrics[f"pick_{k}"] == pytest.approx(float(pick[k]))
    (inp,) = parent.inputs.dataset_inputs
    assert inp.dataset.digest == result.settings["dataset_digest"][:36]
    assert inp.dataset.name == result.settings["dataset"]
    schema = json.loads(inp.dataset.schema)["mlflow_colspec"]
    assert [c["name"] for c in schema] == ["a", "b", "c", "d", "shop"]
    assert json.loads(inp.dataset.profile)["num_rows"] == 240
    names = {a.path for a in client.list_artifacts(result.mlflow_run_id)}
    assert {"front.csv", "trials.csv", "pareto.html", "pareto.png"} <= names
    html = Path(client.download_artifacts(result.mlflow_run_id, "pareto.html", str(tmp_path)))
    assert "plotly" in html.read_text(encoding="utf-8")[:200000].lower()
    png = Path(client.download_artifacts(result.mlflow_run_id, "pareto.png", str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The raw data never reaches MLflow: no artifact holds the target values.
    for path in ("front.csv", "trials.csv"):
        text = Path(client.download_artifacts(result.mlflow_run_id, path, str(tmp_path)))
        assert str(round(float(shops["sales"].iloc[0]), 6)) not in text.read_text()

    # Children: one per front trial, same metric names, tags, a loadable model.
    children = _children(client, result.mlflow_run_id)
    assert len(children) == len(result.front)
    X = shops.drop(columns="sales")
    for child in children:
        assert {"error", "sparsity", "size_bytes", "n_features_used",
                "test_error"} <= set(child.data.metrics)
        assert child.data.tags["pareto"] == "true"
        assert set(child.data.tags) >= {"technique", "recipe", "pick", "family"}
        trial = int(child.data.tags["autoreg.trial"])
        uri = child.data.tags["autoreg.model_uri"]
        loaded = mlflow.pyfunc.load_model(uri)
        want = result.model(trial).predict(X)
        np.testing.assert_array_equal(np.asarray(loaded.predict(X)).ravel(), want)
        files = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert any(p.endswith(".autoreg") for p in files)

    # The pick is registered.
    versions = client.search_model_versions("name = 'shops-model'")
    assert len(versions) == 1
    assert versions[0].version == "1"
    assert tags["registered_model"] == "shops-model/1"


def test_log_trials_all_gives_every_trial_a_run(server, client, shops):
    result = autoreg.search(shops, target="sales", n_trials=12, tracking_uri=server,
                            experiment="server-all", log_trials="all", seed=2)
    children = _children(client, result.mlflow_run_id)
    assert len(children) == len(result.trials)
    on_front = [c for c in children if c.data.tags["pareto"] == "true"]
    assert len(on_front) == len(result.front)
    # Only front trials carry a model.
    assert all("autoreg.model_uri" in c.data.tags for c in on_front)
    assert not any("autoreg.model_uri" in c.data.tags for c in children
                   if c.data.tags["pareto"] == "false")


def test_unreachable_server_then_log_later(server, client, shops, tmp_path, capsys):
    shops.to_csv(tmp_path / "shops.csv", index=False)
    dead = f"http://127.0.0.1:{_free_port()}"
    storage = f"sqlite:///{tmp_path}/later.db"
    code = None
    try:
        main(["search", str(tmp_path / "shops.csv"), "--target", "sales", "--trials", "6",
              "--study", "later", "--storage", storage, "--tracking-uri", dead])
    except SystemExit as exc:
        code = exc.code
    assert code in (0, None)
    err = capsys.readouterr().err
    assert "unreachable" in err and "Traceback" not in err
    assert f"autoreg front later --log --storage {storage} --tracking-uri {dead}" in err
    # The trials are in the study; the record is written once the server is there.
    try:
        main(["front", "later", "--storage", storage, "--log", "--tracking-uri", server,
              "--experiment", "server-later"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    out = capsys.readouterr().out
    assert "MLflow run" in out
    exp = client.get_experiment_by_name("server-later")
    (parent,) = client.search_runs([exp.experiment_id],
                                   filter_string="tags.`autoreg.role` = 'search'")
    assert parent.data.tags["autoreg.study"] == "later"
    assert parent.data.metrics["n_trials"] == 6
    (inp,) = parent.inputs.dataset_inputs
    assert [c["name"] for c in json.loads(inp.dataset.schema)["mlflow_colspec"]] == [
        "a", "b", "c", "d", "shop"]
    # Logging again adds nothing: still one parent, one child per front trial.
    main(["front", "later", "--storage", storage, "--log", "--tracking-uri", server,
          "--experiment", "server-later", "--json"])
    capsys.readouterr()
    parents = client.search_runs([exp.experiment_id],
                                 filter_string="tags.`autoreg.role` = 'search'")
    assert len(parents) == 1
    children = _children(client, parent.info.run_id)
    assert len(children) == len({c.data.tags["autoreg.trial"] for c in children})


def test_ui_binds_to_loopback(tmp_path, capsys):
    main(["ui", "--tracking-uri", f"sqlite:///{tmp_path}/m.db", "--dry-run"])
    line = capsys.readouterr().out.strip()
    assert "--host 127.0.0.1" in line and f"sqlite:///{tmp_path}/m.db" in line
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "autoreg.cli", "ui", "--tracking-uri",
                             f"sqlite:///{tmp_path}/m.db", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/health", proc)
        # Bound to loopback only: every listening socket on that port is 127.0.0.1.
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                             text=True)
        if out.returncode == 0 and out.stdout.strip():
            addresses = {line.split()[3].rsplit(":", 1)[0] for line in
                         out.stdout.strip().splitlines()}
            assert addresses == {"127.0.0.1"}
    finally:
        _stop(proc)
