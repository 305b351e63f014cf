"""The MLflow record of a search, read back with MlflowClient."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow import MlflowClient

import autoreg


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
    after them."""
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
    assert "after True True" in out.stdout  # and yet the search was logged
