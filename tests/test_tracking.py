"""The MLflow record of a search, read back with MlflowClient."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest
from mlflow import MlflowClient

import autoreg
from autoreg import tracking


@pytest.fixture
def client(mlflow_uri):
    return MlflowClient(tracking_uri=mlflow_uri)


def _children(client, result):
    parent = client.get_run(result.mlflow_run_id)
    return parent, client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{result.mlflow_run_id}'")


def test_parent_and_child_runs(client, tiny_regression, tmp_path):
    X, y = tiny_regression
    result = autoreg.search(X, y, n_trials=12, experiment="track-test",
                            storage=f"sqlite:///{tmp_path}/s.db")
    parent, children = _children(client, result)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["n_rows"] == "60"
    assert parent.data.params["objectives"] == "error,sparsity,size"
    assert parent.data.tags["autoreg.study"] == result.study_name
    assert parent.data.metrics["front_size"] == len(result.front)
    pick = result.pick()
    assert parent.data.metrics["pick_size_bytes"] == pick["size_bytes"]

    local = client.download_artifacts(result.mlflow_run_id, "front.csv", str(tmp_path))
    logged = pd.read_csv(local)
    assert list(logged["trial"]) == list(result.front["trial"])
    local = client.download_artifacts(result.mlflow_run_id, "trials.csv", str(tmp_path))
    assert len(pd.read_csv(local)) == 12

    assert len(children) == len(result.front)
    picks = [c for c in children if c.data.tags["pick"] == "true"]
    assert len(picks) == 1 and picks[0].data.tags["autoreg.trial"] == str(pick["trial"])
    for child in children:
        assert child.data.tags["pareto"] == "true"
        assert child.data.tags["technique"] in {"l1", "l2", "elasticnet", "group_lasso", "none"}
        assert child.data.tags["recipe"].split("+")[0] in {"l1", "l2", "elasticnet", "group_lasso",
                                                          "pruning", "quantization", "none"}
        for name in ("error", "sparsity", "size_bytes", "n_features_used", "fit_seconds",
                     "test_error"):
            assert name in child.data.metrics
        row = result.front[result.front["trial"] == int(child.data.tags["autoreg.trial"])].iloc[0]
        assert child.data.metrics["size_bytes"] == row["size_bytes"]
        assert child.data.metrics["error"] == pytest.approx(row["error"])
        for tech in row["recipe"].split("+"):
            if tech != "none":  # every built-in technique has parameters
                assert any(k.startswith(tech + ".") for k in child.data.params)
        # Its model: linked to it, with its params and metrics, each metric logged once.
        model = client.get_logged_model(child.data.tags["autoreg.model_uri"].split("/")[-1])
        assert str(model.status) == "READY" and model.source_run_id == child.info.run_id
        assert model.params == child.data.params
        assert {m.key: m.value for m in model.metrics} == child.data.metrics
        assert [o.model_id for o in child.outputs.model_outputs] == [model.model_id]
        assert len(client.get_metric_history(child.info.run_id, "error")) == 1
        assert child.info.status == "FINISHED"


def test_resumed_study_keeps_one_parent_run(client, tiny_regression):
    X, y = tiny_regression
    first = autoreg.search(X, y, n_trials=5, study_name="one-parent", experiment="resume-test")
    second = autoreg.search(X, y, n_trials=10, study_name="one-parent", experiment="resume-test")
    assert first.mlflow_run_id == second.mlflow_run_id
    exp = client.get_experiment_by_name("resume-test")
    parents = client.search_runs([exp.experiment_id],
                                 filter_string="tags.`autoreg.role` = 'search'")
    assert len(parents) == 1
    _, children = _children(client, second)
    on_front = [c for c in children if c.data.tags["pareto"] == "true"]
    assert len(on_front) == len(second.front)
    # Each front trial has exactly one child run.
    trials = [c.data.tags["autoreg.trial"] for c in children]
    assert len(trials) == len(set(trials))


def test_no_raw_data_and_no_password_reach_mlflow(client, tiny_regression, tmp_path):
    X, y = tiny_regression
    db = tmp_path / "secret.db"
    url = f"sqlite:///{db}"
    result = autoreg.search(X, y, n_trials=3, storage=url)
    parent = client.get_run(result.mlflow_run_id)
    artifacts = {a.path for a in client.list_artifacts(result.mlflow_run_id)}
    assert artifacts == {"front.csv", "trials.csv", "pareto.html", "pareto.png"}
    assert parent.data.tags["autoreg.storage"] == url
    from autoreg.storage import redact

    assert redact("postgresql://bob:hunter2@db:5432/x") == "postgresql://bob:***@db:5432/x"


def test_unreachable_server_keeps_the_trials(tiny_regression):
    X, y = tiny_regression
    with pytest.warns(RuntimeWarning, match="unreachable"):
        result = autoreg.search(X, y, n_trials=4, study_name="offline",
                                tracking_uri="http://127.0.0.1:9")
    assert result.mlflow_run_id is None and "unreachable" in result.tracking_error
    assert len(result.trials) == 4  # the search itself completed and kept its trials


def test_mlflow_is_not_on_the_per_trial_path(tmp_path):
    """In a fresh process, MLflow is not even imported while trials run: it is used once,
    after them, and then in a process of its own."""
    import subprocess
    import sys

    (tmp_path / "probe_plugin.py").write_text('''
import sys
from autoreg import Float, Technique, hookimpl

class Probe(Technique):
    name = "probe"
    stage = "compression"
    families = ("linear",)
    description = "Records whether mlflow is imported while a trial runs."
    space = {"x": Float(0.0, 1.0)}

    def compress(self, weights, ctx):
        with open("probe.txt", "a") as fh:
            fh.write(str("mlflow" in sys.modules) + "\\n")
        return weights

@hookimpl
def register_techniques(register):
    register(Probe)
''')
    script = (
        "import optuna, autoreg\n"
        "s = optuna.samplers.PartialFixedSampler({'probe': True},"
        " optuna.samplers.RandomSampler(0))\n"
        "r = autoreg.search('diabetes', n_trials=8, techniques=['l1', 'probe'],"
        " plugins=['probe_plugin'], sampler=s)\n"
        "import sys; print('after', 'mlflow' in sys.modules, r.mlflow_run_id is not None)\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path),
           "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    probes = (tmp_path / "probe.txt").read_text().split()
    assert probes and set(probes) == {"False"}  # every fit of 8 trials, MLflow not loaded
    # And yet the search was logged: by the recorder process, which imported MLflow (by
    # this process only where there is no second core for it).
    assert f"after {os.cpu_count() < 2} True" in out.stdout


# -- the recorder ------------------------------------------------------------------------------
@pytest.fixture
def unlogged(tiny_regression):
    X, y = tiny_regression
    return autoreg.search(X, y, n_trials=6, log_mlflow=False)


def _log(result, uri, recorder, experiment="rec-test"):
    return tracking.log_search(result, result.settings, tracking_uri=uri, experiment=experiment,
                               recorder=recorder)


def _record(client, run_id):
    """What a user sees of a record: the parent's params, metrics, tags and files, and per
    front trial its child's metrics, tags and model (ids and times left out)."""
    parent = client.get_run(run_id)
    own = {"mlflow.runName", "mlflow.parentRunId", "autoreg.model_uri"}
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'")
    kids = {}
    for c in children:
        model = client.get_logged_model(c.data.tags["autoreg.model_uri"].split("/")[-1])
        tags = {k: v for k, v in c.data.tags.items()
                if k not in own and not k.startswith("mlflow.")}
        files = sorted(a.path for a in client.list_artifacts(c.info.run_id))
        kids[c.data.tags["autoreg.trial"]] = (c.info.status, c.data.metrics, c.data.params,
                                              tags, model.status, model.params, files)
    return (parent.info.status, parent.data.params, parent.data.metrics,
            {k: v for k, v in parent.data.tags.items() if not k.startswith("mlflow.")},
            sorted(a.path for a in client.list_artifacts(run_id)), kids)


def test_recorder_makes_the_new_store_and_writes_the_record_this_process_would(unlogged,
                                                                               tmp_path):
    (tmp_path / "store").mkdir()
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    recorder = tracking.Recorder(uri, "rec-test")
    proc = recorder._proc
    assert proc is not None and recorder.connected()[0] == uri  # its store is made
    assert os.listdir(tmp_path / "store") == ["mlflow.db"]  # whole, under its name
    run_id = _log(unlogged, uri, recorder)
    assert proc.returncode == 0 and recorder._proc is None  # done, and gone
    assert unlogged.study.user_attrs["autoreg.mlflow_run_id"] == run_id
    client = MlflowClient(uri)
    record = _record(client, run_id)
    assert record[0] == "FINISHED" and record[3]["autoreg.study"] == unlogged.study_name
    assert record[4] == ["front.csv", "pareto.html", "pareto.png", "trials.csv"]
    assert sorted(record[5]) == sorted(str(t) for t in unlogged.front["trial"])
    # The same result logged by this process itself makes the same record.
    here = f"sqlite:///{tmp_path}/here.db"
    assert _record(MlflowClient(here), _log(unlogged, here, None)) == record
    # The experiment is the one this process would have made (artifacts in ./mlruns).
    assert client.get_experiment_by_name("rec-test").artifact_location == \
        MlflowClient(here).get_experiment_by_name("rec-test").artifact_location


def test_recorder_that_died_leaves_the_record_to_this_process(unlogged, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    recorder = tracking.Recorder(uri)
    assert recorder.connected() is not None
    recorder._proc.kill()
    run_id = _log(unlogged, uri, recorder)
    assert recorder._proc is None
    assert MlflowClient(uri).get_run(run_id).info.status == "FINISHED"


def test_recorder_ended_early_leaves_no_process_and_no_store(tmp_path):
    (tmp_path / "store").mkdir()
    with tracking.Recorder(f"sqlite:///{tmp_path}/store/mlflow.db") as recorder:
        proc = recorder._proc
        assert proc is not None
    assert proc.returncode is not None and os.listdir(tmp_path / "store") == []


def test_recorder_of_mlflows_default_store(unlogged, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    run_id = _log(unlogged, None, tracking.Recorder())
    assert MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run_id)


def test_no_recorder_on_one_core(unlogged, tmp_path, monkeypatch):
    monkeypatch.setattr(tracking.os, "cpu_count", lambda: 1)
    recorder = tracking.Recorder(f"sqlite:///{tmp_path}/mlflow.db")
    assert recorder._proc is None and not os.path.exists(tmp_path / "mlflow.db")
    run_id = _log(unlogged, f"sqlite:///{tmp_path}/mlflow.db", recorder)  # written here
    assert MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run_id)


def test_unreachable_server_fails_fast_through_the_recorder(unlogged):
    recorder = tracking.Recorder("http://127.0.0.1:9")
    start = time.monotonic()
    with pytest.raises(tracking.TrackingError, match="unreachable"):
        _log(unlogged, "http://127.0.0.1:9", recorder)
    assert time.monotonic() - start < 30 and recorder._proc is None


def test_a_search_leaves_no_process_behind(tiny_regression, mlflow_uri):
    import psutil

    X, y = tiny_regression
    before = {p.pid for p in psutil.Process().children(recursive=True)}  # the test's servers
    result = autoreg.search(X, y, n_trials=4, experiment="rec-test")
    assert result.mlflow_run_id and MlflowClient(mlflow_uri).get_run(result.mlflow_run_id)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


def test_a_server_url_with_credentials_is_checked_without_them():
    """user:password@host is not a host name: the reachability check asks the host itself
    (a server that wants the credentials still answers), and its errors show no password."""
    import http.server
    import threading

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tracking._check_reachable(f"http://alice:p%40ss@127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    with pytest.raises(tracking.TrackingError, match="unreachable") as info:
        tracking._check_reachable("http://alice:s3cret@127.0.0.1:9")
    assert "s3cret" not in str(info.value)
