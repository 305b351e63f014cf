"""AutoRegRegressor and AutoRegClassifier: scikit-learn's own estimator checks, and the places
users put estimators (Pipeline, cross_val_score, GridSearchCV, pickle, joblib workers)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.utils.estimator_checks import parametrize_with_checks

import autoreg
from autoreg import AutoRegClassifier, AutoRegRegressor

SMALL = dict(n_trials=5)


@parametrize_with_checks([AutoRegRegressor(**SMALL), AutoRegClassifier(**SMALL)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def cancer():
    return load_breast_cancer(return_X_y=True)


def test_fit_is_the_search_and_keeps_its_pick(diabetes):
    X, y = diabetes
    est = AutoRegRegressor(n_trials=20, random_state=3).fit(X, y)
    result = autoreg.search(X, y, n_trials=20, seed=3, test_size=0, storage=":memory:",
                            log_mlflow=False)
    pd.testing.assert_frame_equal(est.front_.drop(columns="fit_seconds"),
                                  result.front.drop(columns="fit_seconds"))
    assert est.pick_trial_ == int(result.pick()["trial"])
    np.testing.assert_array_equal(est.predict(X), result.model(result.pick()).predict(X))
    assert est.front_ is est.result_.front
    assert list(est.feature_names_in_) == list(X.columns) and est.n_features_in_ == 10
    # The pick is the smallest model within 1% of the best validation error.
    best = est.front_["error"].min()
    assert est.pick_["error"] <= best * 1.01
    assert est.pick_["size_bytes"] == est.front_.loc[est.front_["error"] <= best * 1.01,
                                                     "size_bytes"].min()
    assert est.score(X, y) > 0.45  # R² of a linear model on diabetes
    # Another rule, another pick from the same front.
    knee = AutoRegRegressor(n_trials=20, random_state=3, pick="knee").fit(X, y)
    assert knee.pick_trial_ == int(result.pick("knee")["trial"])


def test_classifier_labels_probabilities_and_scores(cancer):
    X, y = cancer
    labels = np.where(y == 1, "benign", "malignant")
    est = AutoRegClassifier(n_trials=15).fit(X, labels)
    assert list(est.classes_) == ["benign", "malignant"]
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    pred = est.predict(X)
    assert set(pred) <= {"benign", "malignant"}
    np.testing.assert_array_equal(pred, est.classes_[proba.argmax(axis=1)])
    assert est.score(X, labels) > 0.93
    # The decision function orders rows as the probability of the second class does.
    d = est.decision_function(X)
    assert np.array_equal(np.argsort(d, kind="stable"), np.argsort(proba[:, 1], kind="stable"))


def test_many_integer_classes_stay_classes():
    """A target of 25 integer labels is still classification for the classifier."""
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((25, 4)) * 6
    y = np.repeat(np.arange(100, 125), 8)
    X = centers[y - 100] + rng.standard_normal((len(y), 4))
    est = AutoRegClassifier(n_trials=10, techniques=["l2"]).fit(X, y)
    assert list(est.classes_) == list(range(100, 125))
    assert est.predict_proba(X).shape == (200, 25)
    assert est.score(X, y) > 0.95  # scikit-learn LogisticRegression: 1.0


def test_dataframe_with_categorical_columns(tiny_mixed):
    df = tiny_mixed
    X, y = df.drop(columns="label"), df["label"]
    X["city"] = X["city"].astype("category")
    est = AutoRegClassifier(n_trials=10).fit(X, y)
    assert list(est.feature_names_in_) == ["age", "income", "city", "noise"]
    new = X.head(3).copy()
    new["city"] = pd.Categorical(["rome", "lima", None])  # unseen and missing categories
    assert est.predict_proba(new).shape == (3, 2)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(X[["income", "age", "city", "noise"]])


def test_pipeline_cross_val_score_and_grid_search(cancer, diabetes):
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = cancer
    pipe = make_pipeline(FunctionTransformer(np.log1p), AutoRegClassifier(n_trials=8))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.9
    # Worker processes get pickled estimators and send fitted ones back.
    parallel = cross_val_score(AutoRegClassifier(n_trials=8), X, y, cv=3, n_jobs=2)
    assert parallel.mean() > 0.9

    Xd, yd = diabetes
    grid = GridSearchCV(AutoRegRegressor(n_trials=10),
                        {"tolerance": [0.0, 0.05], "techniques": [["l1"], ["l2"]]}, cv=3)
    grid.fit(Xd, yd)
    assert len(grid.cv_results_["params"]) == 4
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    best = grid.best_estimator_
    assert set(best.front_["recipe"].str.split("+").str[0]) <= set(best.techniques)
    assert grid.score(Xd, yd) == pytest.approx(best.score(Xd, yd))


def test_pickled_estimator_predicts_the_same_and_keeps_its_front(diabetes):
    X, y = diabetes
    est = AutoRegRegressor(n_trials=12).fit(X, y)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    pd.testing.assert_frame_equal(back.front_, est.front_)
    assert len(back.result_.study.trials) == 12
    np.testing.assert_array_equal(back.result_.model(back.pick_).predict(X), est.predict(X))


def test_worker_processes_leave_nothing_behind(diabetes, isolated):
    import tempfile

    def scratch():
        return {d for d in os.listdir(tempfile.gettempdir()) if d.startswith("autoreg-fit-")}

    X, y = diabetes
    scratch_before = scratch()
    before = sorted(p.name for p in isolated.rglob("*"))
    est = AutoRegRegressor(n_trials=12, n_jobs=2).fit(X, y)
    assert sorted(p.name for p in isolated.rglob("*")) == before
    assert scratch() == scratch_before
    assert len(est.result_.trials) == 12
    back = pickle.loads(pickle.dumps(est))  # its study and models were copied into memory
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert len(back.result_.study.trials) >= 12


def test_storage_keeps_the_study_and_mlflow_records_the_fit(diabetes, tmp_path, capsys):
    import json

    from clirun import run
    from mlflow import MlflowClient

    X, y = diabetes
    journal = tmp_path / "fits.journal"
    est = AutoRegRegressor(n_trials=8, storage=str(journal), study_name="fit1",
                           artifacts=str(tmp_path / "models"), log_mlflow=True,
                           experiment="estimators").fit(X, y)
    assert journal.exists() and any((tmp_path / "models").iterdir())
    record = MlflowClient().get_run(est.result_.mlflow_run_id)
    assert record.data.tags["autoreg.study"] == "fit1"
    assert int(record.data.tags["pick_trial"]) == est.pick_trial_
    # The study is kept by name like any other: the CLI reads the same front and pick.
    code, out, _ = run(capsys, "front", "fit1", "--storage", str(journal), "--json")
    assert code == 0
    front = json.loads(out)["front"]
    assert [row["trial"] for row in front] == list(est.front_["trial"])
    assert [row["trial"] for row in front if row["pick"]] == [est.pick_trial_]


def test_save_writes_the_pick_as_a_compact_export(diabetes, tmp_path):
    X, y = diabetes
    est = AutoRegRegressor(n_trials=10).fit(X, y)
    n = est.save(tmp_path / "pick.autoreg")
    assert n == int(est.pick_["size_bytes"])
    np.testing.assert_allclose(autoreg.load(tmp_path / "pick.autoreg").predict(X),
                               est.predict(X), rtol=1e-6)


def test_test_size_fills_test_error(diabetes):
    X, y = diabetes
    est = AutoRegRegressor(n_trials=10, test_size=0.25).fit(X, y)
    assert est.front_["test_error"].notna().all()
    assert len(est.result_.test_index) == 111
    assert AutoRegRegressor(n_trials=10).fit(X, y).front_["test_error"].isna().all()


@pytest.mark.parametrize("params, message", [
    (dict(pick="best"), "unknown pick rule 'best'"),
    (dict(n_trials=0), "n_trials must be a positive whole number"),
    (dict(techniques=["l9"]), "l9"),
    (dict(test_size=1.0), "test_size must be 0"),
])
def test_bad_parameters_are_one_clear_error(diabetes, params, message):
    X, y = diabetes
    with pytest.raises(ValueError, match=message):
        AutoRegRegressor(**{"n_trials": 3, **params}).fit(X, y)


def test_an_mlp_estimator(cancer):
    X, y = cancer
    est = AutoRegClassifier(n_trials=3, families=["mlp"], hidden="8").fit(X[:200], y[:200])
    assert est.pick_["family"] == "mlp"
    assert est.score(X[200:], y[200:]) > 0.85
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(back.predict_proba(X[200:]), est.predict_proba(X[200:]))


def test_the_readme_example_runs(isolated):
    """The README's estimator example, with smaller budgets, runs and saves the pick."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## scikit-learn estimators", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    assert "AutoRegClassifier" in code and "GridSearchCV" in code
    code = re.sub(r"n_trials=\d+", "n_trials=5", code)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["clf"].pick_["trial"] in set(namespace["clf"].front_["trial"])
    assert autoreg.load("pick.autoreg").predict_proba(namespace["X"][:5]).shape == (5, 2)
