"""autoreg models as MLflow pyfunc models: logged under a run by id, loaded back with
mlflow.pyfunc.load_model, predicting exactly what autoreg predicts; registered by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import mlflow
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from mlflow import MlflowClient

import autoreg
from autoreg import mlflow_model
from autoreg.errors import AutoRegError, ExportFormatError
from autoreg.model import LinearPredictor
from autoreg.model_mlp import MLPPredictor
from autoreg.prep import Prep


@pytest.fixture(scope="module")
def searches(tmp_path_factory):
    """Real searches (no MLflow), run once for the module in their own autoreg home."""
    import autoreg.datasets

    home = tmp_path_factory.mktemp("searches")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(home)
        mp.setenv("AUTOREG_HOME", str(home / ".autoreg"))
        out = {}
        X, y = autoreg.datasets.BUILTIN["diabetes"]()
        out["diabetes"] = (autoreg.search(X, y, n_trials=5, log_mlflow=False), X)
        X, y = autoreg.datasets.BUILTIN["iris"]()
        out["iris"] = (autoreg.search(X, y, n_trials=5, log_mlflow=False), X)
        df = _mixed(160)
        out["mixed"] = (autoreg.search(df.drop(columns="label"), df["label"].to_numpy(),
                                       n_trials=8, log_mlflow=False), df.drop(columns="label"))
        rng = np.random.default_rng(0)
        A = rng.standard_normal((80, 5))
        out["array"] = (autoreg.search(A, A[:, 0] - 2 * A[:, 3], n_trials=3, log_mlflow=False), A)
        S = sp.random(120, 30, density=0.2, format="csr", random_state=0)
        ys = np.asarray(S @ np.linspace(-1, 1, 30)).ravel()
        out["sparse"] = (autoreg.search(S, ys, n_trials=3, log_mlflow=False), S)
        yield out


def _mixed(n: int, seed: int = 1) -> pd.DataFrame:
    """Integer, float (with holes) and string columns; the label depends on the string one."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"age": rng.integers(20, 60, n), "income": rng.normal(50, 15, n),
                       "city": rng.choice(["paris", "rome", "oslo"], n),
                       "noise": rng.standard_normal(n)})
    df.loc[::7, "income"] = np.nan
    logit = 0.15 * (df["age"] - 40) + (df["city"] == "rome") * 3.0 - 1.0
    df["label"] = np.where(logit + 0.3 * rng.logistic(size=n) > 0, "yes", "no")
    return df


@pytest.fixture
def client():
    return MlflowClient()  # the session store the autouse fixture points MLFLOW_TRACKING_URI at


@pytest.fixture
def run_id(client):
    """A finished run in a fresh experiment, with a param and the metrics a child run has."""
    exp = client.create_experiment(f"mlflow-model-{uuid.uuid4().hex[:8]}")
    rid = client.create_run(exp).info.run_id
    client.log_batch(rid, metrics=[mlflow.entities.Metric("error", 0.25, 0, 0),
                                   mlflow.entities.Metric("size_bytes", 321.0, 0, 0)],
                     params=[mlflow.entities.Param("l1.alpha", "0.01")])
    client.set_terminated(rid)
    return rid


def _pick(searches, name):
    result, X = searches[name]
    trial = int(result.pick()["trial"])
    return result.model_bytes(trial), result.model(trial), X


def test_regression_predicts_exactly_like_autoreg(searches, client, run_id):
    data, model, X = _pick(searches, "diabetes")
    uri = mlflow_model.log_model(client, run_id, data)
    assert uri.startswith("models:/m-")
    loaded = mlflow.pyfunc.load_model(uri)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert np.array_equal(loaded.predict(X, params={"output": "decision"}),
                          model.decision_function(X))
    # The run URI finds the same logged model.
    again = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    assert np.array_equal(again.predict(X.iloc[:7]), model.predict(X.iloc[:7]))

    sig = loaded.metadata.signature
    assert sig.inputs.input_names() == [str(c) for c in X.columns if c in model.meta["num"]]
    assert sig.outputs.to_dict() == [{"type": "double", "required": True}]
    assert sig.params.to_dict() == [{"name": "output", "default": "predict", "shape": None,
                                     "type": "string"}]
    meta = loaded.metadata.metadata["autoreg"]
    assert meta["task"] == "regression" and meta["size_bytes"] == len(data)
    with pytest.raises(AutoRegError, match="classification"):
        loaded.predict(X, params={"output": "proba"})
    with pytest.raises(AutoRegError, match="unknown output"):
        loaded.predict(X, params={"output": "bogus"})


def test_classifier_labels_and_probabilities(searches, client, run_id):
    data, model, X = _pick(searches, "iris")
    assert model.task == "multiclass"
    loaded = mlflow.pyfunc.load_model(mlflow_model.log_model(client, run_id, data))
    assert np.array_equal(loaded.predict(X), model.predict(X))
    proba = loaded.predict(X, params={"output": "proba"})
    assert proba.shape == (len(X), 3)
    assert np.array_equal(proba, model.predict_proba(X))
    assert loaded.metadata.metadata["autoreg"]["classes"] == model.classes_.tolist()
    assert loaded.metadata.signature.outputs.to_dict()[0]["type"] == "long"


def test_categorical_frame_with_the_data_columns(searches, client, run_id):
    result, X = searches["mixed"]
    with_city = [int(t) for t in result.trials["trial"]
                 if any(c["col"] == "city" for c in result.model(int(t)).meta.get("cat", []))]
    assert with_city, "no trial kept the categorical column"
    model = result.model(with_city[0])
    columns = [{"name": "age", "type": "long"}, {"name": "income", "type": "double"},
               {"name": "city", "type": "string"}, {"name": "noise", "type": "double"}]
    uri = mlflow_model.log_model(client, run_id, result.model_bytes(with_city[0]),
                                 columns=columns)
    loaded = mlflow.pyfunc.load_model(uri)
    inputs = {c["name"]: c for c in json.loads(loaded.metadata.signature.to_dict()["inputs"])}
    assert list(inputs) == ["age", "income", "city", "noise"]
    used = set(model.meta.get("num", [])) | {c["col"] for c in model.meta["cat"]}
    assert {n for n, c in inputs.items() if c["required"]} == used
    assert inputs["city"]["type"] == "any"  # read as labels whatever the column's dtype
    if "age" in used:
        assert inputs["age"]["type"] == "long"

    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert np.array_equal(loaded.predict(X, params={"output": "proba"}), model.predict_proba(X))
    # Missing values, an unseen city and a pandas categorical column, as autoreg reads them.
    odd = X.iloc[:6].copy()
    odd.loc[odd.index[0], "city"] = "lima"
    odd.loc[odd.index[1], "income"] = np.nan
    odd["city"] = odd["city"].astype("category")
    assert np.array_equal(loaded.predict(odd), model.predict(odd))
    # Without the data's columns: the used ones by name, of any type.
    bare = mlflow.pyfunc.load_model(mlflow_model.log_model(
        client, run_id, result.model_bytes(with_city[0]), name="bare"))
    assert set(bare.metadata.signature.inputs.input_names()) == used
    assert np.array_equal(bare.predict(X), model.predict(X))


def test_array_and_sparse_models_take_columns_by_position(searches, client, run_id):
    data, model, A = _pick(searches, "array")
    loaded = mlflow.pyfunc.load_model(mlflow_model.log_model(client, run_id, data))
    assert loaded.metadata.signature.inputs.to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": (-1, 5)}}]
    assert np.array_equal(loaded.predict(A), model.predict(A))
    assert np.array_equal(loaded.predict(pd.DataFrame(A)), model.predict(A))

    data, model, S = _pick(searches, "sparse")
    loaded = mlflow.pyfunc.load_model(mlflow_model.log_model(client, run_id, data, name="sp"))
    assert np.array_equal(loaded.predict(S), model.predict(S))


def test_mlp_and_constant_models(client, run_id, tiny_regression):
    X, y = tiny_regression
    prep = Prep().fit(X)
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((prep.n_features, 8))
    w1[2:4] = 0  # two unused columns
    mlp = MLPPredictor.from_fit(prep, [w1, rng.standard_normal((8, 1))],
                                [rng.standard_normal(8), np.zeros(1)], "regression")
    loaded = mlflow.pyfunc.load_model(mlflow_model.log_model(client, run_id, mlp.to_bytes()))
    assert loaded.metadata.metadata["autoreg"]["kind"] == "mlp"
    assert np.array_equal(loaded.predict(X), mlp.predict(X))

    constant = LinearPredictor.from_fit(prep, np.zeros(prep.n_features), 1.5, "regression")
    loaded = mlflow.pyfunc.load_model(
        mlflow_model.log_model(client, run_id, constant.to_bytes(), name="constant"))
    assert loaded.metadata.signature.inputs is None  # it reads no column
    assert loaded.predict(X.iloc[:4]).tolist() == [1.5] * 4


def test_the_compact_export_is_logged_byte_for_byte(searches, client, run_id, tmp_path):
    data, _, _ = _pick(searches, "diabetes")
    uri = mlflow_model.log_model(client, run_id, data)
    assert [a.path for a in client.list_artifacts(run_id)] == ["model.autoreg"]
    local = client.download_artifacts(run_id, "model.autoreg", str(tmp_path))
    with open(local, "rb") as fh:
        assert fh.read() == data
    location = client.get_logged_model(uri.split("/")[-1]).artifact_location
    inside = mlflow.artifacts.download_artifacts(f"{location}/artifacts/model.autoreg",
                                                 dst_path=str(tmp_path / "m"))
    with open(inside, "rb") as fh:
        assert fh.read() == data


def test_logging_by_run_id_leaves_the_run_and_globals_alone(searches, client, run_id, tmp_path):
    data, _, _ = _pick(searches, "diabetes")
    before = mlflow.get_tracking_uri()
    uri = mlflow_model.log_model(client, run_id, data, tags={"recipe": "l1"})
    model_id = uri.split("/")[-1]
    assert mlflow.active_run() is None and mlflow.get_tracking_uri() == before
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert [o.model_id for o in run.outputs.model_outputs] == [model_id]
    assert len(client.get_metric_history(run_id, "error")) == 1  # linked, not logged again
    logged = client.get_logged_model(model_id)
    assert str(logged.status) == "READY" and logged.source_run_id == run_id
    assert logged.params == {"l1.alpha": "0.01"}
    assert {m.key: m.value for m in logged.metrics} == {"error": 0.25, "size_bytes": 321.0}
    assert logged.tags["recipe"] == "l1" and logged.tags["autoreg.task"] == "regression"
    reqs = mlflow.artifacts.download_artifacts(f"{logged.artifact_location}/requirements.txt",
                                               dst_path=str(tmp_path))
    with open(reqs) as fh:
        lines = fh.read().split()
    assert lines == [f"mlflow=={mlflow.__version__}", f"autoreg=={autoreg.__version__}",
                     f"numpy=={np.__version__}"]

    # Another store than the global one: everything goes where the client points.
    other = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/other.db")
    rid = other.create_run(other.create_experiment("elsewhere")).info.run_id
    uri = mlflow_model.log_model(other, rid, data)
    assert other.get_logged_model(uri.split("/")[-1]).source_run_id == rid
    assert mlflow_model.register(uri, "elsewhere-model", client=other) == 1
    assert other.get_model_version("elsewhere-model", "1").run_id == rid
    assert mlflow.get_tracking_uri() == before


def test_bad_bytes_are_refused_before_anything_is_logged(client, run_id):
    with pytest.raises(ExportFormatError):
        mlflow_model.log_model(client, run_id, b"not a model")
    assert client.get_run(run_id).outputs.model_outputs == []
    assert client.list_artifacts(run_id) == []


def test_register_creates_version_1_then_2(searches, client, run_id):
    data, model, X = _pick(searches, "iris")
    uri = mlflow_model.log_model(client, run_id, data)
    name = f"autoreg-{uuid.uuid4().hex[:8]}"
    assert mlflow_model.register(uri, name) == 1
    assert mlflow_model.register(f"runs:/{run_id}/model", name) == 2
    versions = sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: v.version)
    assert [v.source for v in versions] == [uri] * 2  # the logged model, also for runs:/
    assert [v.run_id for v in versions] == [run_id] * 2
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/2")
    assert np.array_equal(loaded.predict(X), model.predict(X))
    links = json.loads(client.get_logged_model(uri.split("/")[-1]).tags["mlflow.modelVersions"])
    assert [link["version"] for link in links] == [1, 2]


def test_registration_failures_are_autoreg_errors(client):
    with pytest.raises(AutoRegError, match="cannot register models:/m-nosuchmodel"):
        mlflow_model.register("models:/m-nosuchmodel", "never")
    with pytest.raises(AutoRegError, match="needs a name"):
        mlflow_model.register("models:/m-nosuchmodel", " ")
    assert client.search_registered_models("name = 'never'") == []


def test_loading_needs_neither_torch_nor_pickle(searches, client, run_id, mlflow_uri):
    data, model, X = _pick(searches, "diabetes")
    uri = mlflow_model.log_model(client, run_id, data)
    rows = X.iloc[:5].to_dict(orient="list")
    code = ("import sys\n"
            "sys.modules['torch'] = None  # any import of torch now fails\n"
            "import mlflow, pandas as pd\n"
            f"m = mlflow.pyfunc.load_model({uri!r})\n"
            f"print(m.predict(pd.DataFrame({rows!r})).tolist())\n"
            "assert 'torch' not in {k for k, v in sys.modules.items() if v is not None}")
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri,
           "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == model.predict(X.iloc[:5]).tolist()


def _model_files(client, uri, folder) -> dict:
    location = client.get_logged_model(uri.split("/")[-1]).artifact_location
    root = mlflow.artifacts.download_artifacts(location, dst_path=str(folder))
    out = {}
    for base, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(base, name), "rb") as fh:
                out[os.path.relpath(os.path.join(base, name), root)] = fh.read()
    return out


def test_a_copied_model_is_what_mlflow_saves(searches, client, run_id, tmp_path, monkeypatch):
    """A process's first model is saved by MLflow; every later one is a copy of it with its own
    export, ids, signature and metadata (mlflow_model._Template). The copy holds the same
    files as MLflow would have written, but for the model's ids and a scratch path."""
    import yaml

    first, _, _ = _pick(searches, "diabetes")
    data, model, X = _pick(searches, "iris")  # another task, signature and size
    monkeypatch.setattr(mlflow_model._Template, "made", None)
    mlflow_model.log_model(client, run_id, first)
    assert mlflow_model._Template.made is not None
    copied = mlflow_model.log_model(client, run_id, data, name="copied")
    monkeypatch.setattr(mlflow_model._Template, "made", None)
    saved = mlflow_model.log_model(client, run_id, data, name="saved")
    a, b = (_model_files(client, uri, tmp_path / n) for n, uri in (("a", copied), ("b", saved)))
    assert sorted(a) == sorted(b)
    assert all(a[name] == b[name] for name in a if name != "MLmodel")

    def comparable(mlmodel):
        m = yaml.safe_load(mlmodel)
        for key in ("artifact_path", "model_uuid", "model_id", "utc_time_created"):
            assert m.pop(key)
        pyfunc = m["flavors"]["python_function"]
        assert pyfunc.pop("model_code_path") and pyfunc["artifacts"]["model"].pop("uri")
        return m

    assert comparable(a["MLmodel"]) == comparable(b["MLmodel"])
    loaded = mlflow.pyfunc.load_model(copied)
    assert np.array_equal(loaded.predict(X), model.predict(X))


def test_log_new_model_logs_the_runs_metrics_and_params_once(searches, client):
    data, _, _ = _pick(searches, "diabetes")
    exp = client.create_experiment(f"new-model-{uuid.uuid4().hex[:8]}")
    info = client.create_run(exp).info
    rid = info.run_id
    client.set_terminated(rid)
    metrics = [mlflow.entities.Metric("error", 0.5, 0, 0),
               mlflow.entities.Metric("size_bytes", 300.0, 0, 0)]
    params = [mlflow.entities.Param("l1.alpha", "0.1")]
    uri = mlflow_model.log_new_model(client, info, data, metrics=metrics, params=params,
                                     run_tags={"pick": "true"})
    run = client.get_run(rid)
    assert run.data.tags["autoreg.model_uri"] == uri and run.data.tags["pick"] == "true"
    assert [a.path for a in client.list_artifacts(rid)] == ["model.autoreg"]
    assert run.data.metrics == {"error": 0.5, "size_bytes": 300.0}
    assert run.data.params == {"l1.alpha": "0.1"}
    assert len(client.get_metric_history(rid, "error")) == 1
    logged = client.get_logged_model(uri.split("/")[-1])
    assert str(logged.status) == "READY" and logged.params == {"l1.alpha": "0.1"}
    assert {m.key: m.value for m in logged.metrics} == {"error": 0.5, "size_bytes": 300.0}
    assert [o.model_id for o in run.outputs.model_outputs] == [logged.model_id]
    assert [a.path for a in client.list_artifacts(rid)] == ["model.autoreg"]
