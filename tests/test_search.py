"""End-to-end behaviour of autoreg.search on tiny data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import autoreg
from autoreg.engine import prepare
from autoreg.errors import DataError, StudyError, UsageError

FAST = dict(n_trials=12, log_mlflow=False)


def _front_key(result):
    return result.front[["trial", "recipe", "error", "sparsity", "size_bytes"]].round(12)


def test_search_returns_measured_front(tiny_regression):
    X, y = tiny_regression
    result = autoreg.search(X, y, **FAST)
    assert len(result.trials) == 12
    assert set(result.front["trial"]) <= set(result.trials["trial"])
    assert result.front["test_error"].notna().all()
    # Non-front trials are never scored on the test split.
    others = result.trials[~result.trials["pareto"]]
    assert others["test_error"].isna().all()
    # The front is Pareto-optimal: no trial beats a front trial on every objective.
    for _, f in result.front.iterrows():
        dominated = ((result.trials["error"] <= f["error"])
                     & (result.trials["sparsity"] >= f["sparsity"])
                     & (result.trials["size_bytes"] <= f["size_bytes"])
                     & ((result.trials["error"] < f["error"])
                        | (result.trials["sparsity"] > f["sparsity"])
                        | (result.trials["size_bytes"] < f["size_bytes"])))
        assert not dominated.any()
    # Two of six features carry the signal: the front reaches a 2-feature model.
    assert (result.front["n_features_used"] <= 2).any()


def test_size_is_the_export_file_and_predictions_round_trip(tiny_regression, tmp_path):
    X, y = tiny_regression
    result = autoreg.search(X, y, **FAST)
    for _, row in result.front.iterrows():
        blob = result.model_bytes(row["trial"])
        assert len(blob) == row["size_bytes"]
        path = tmp_path / f"{row['trial']}.autoreg"
        path.write_bytes(blob)
        loaded = autoreg.load(path)
        np.testing.assert_array_equal(loaded.predict(X), result.model(row).predict(X))
        # Raw rows, not preprocessed ones: the export carries its own preprocessing.
        assert loaded.n_features_used == row["n_features_used"]


def test_sparsity_counts_exact_zeros(tiny_regression):
    X, y = tiny_regression
    result = autoreg.search(X, y, techniques=["l1"], **FAST)
    p = X.shape[1]
    for _, row in result.trials.iterrows():
        assert round(row["sparsity"] * p) == p - row["n_features_used"]


def test_test_error_is_measured_on_held_out_rows(tiny_regression):
    X, y = tiny_regression
    result = autoreg.search(X, y, seed=3, **FAST)
    ws = prepare(autoreg.data.load(X, y), seed=3)
    X_test, y_test = ws.test_rows()
    row = result.front.iloc[0]
    pred = result.model(row).predict(X_test)
    assert row["test_error"] == pytest.approx(np.sqrt(np.mean((pred - y_test) ** 2)), rel=1e-9)


def test_same_seed_same_front(tiny_regression):
    X, y = tiny_regression
    a = autoreg.search(X, y, seed=7, **FAST)
    b = autoreg.search(X, y, seed=7, **FAST)
    assert a.study_name != b.study_name
    pd.testing.assert_frame_equal(_front_key(a), _front_key(b))


def test_resume_continues_to_the_total(tiny_regression):
    X, y = tiny_regression
    first = autoreg.search(X, y, study_name="resume-me", n_trials=5, log_mlflow=False)
    assert len(first.trials) == 5
    second = autoreg.search(X, y, study_name="resume-me", n_trials=9, log_mlflow=False)
    assert second.resumed and len(second.trials) == 9
    assert set(first.trials["trial"]) < set(second.trials["trial"])
    third = autoreg.search(X, y, study_name="resume-me", n_trials=9, log_mlflow=False)
    assert len(third.trials) == 9


def test_resume_with_other_settings_is_refused(tiny_regression):
    X, y = tiny_regression
    autoreg.search(X, y, study_name="fixed", n_trials=3, log_mlflow=False)
    with pytest.raises(StudyError, match="seed"):
        autoreg.search(X, y, study_name="fixed", n_trials=3, seed=1, log_mlflow=False)


def test_rdb_storage_url(tiny_regression, tmp_path):
    X, y = tiny_regression
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    result = autoreg.search(X, y, storage=url, study_name="rdb", n_trials=4, log_mlflow=False)
    import optuna

    study = optuna.load_study(study_name="rdb", storage=url)
    assert len(study.trials) == 4 and result.study_name == "rdb"


def test_constraints_bound_the_front(tiny_regression):
    X, y = tiny_regression
    free = autoreg.search(X, y, **FAST)
    limit = int(free.trials["size_bytes"].median())
    result = autoreg.search(X, y, max_size=limit, min_sparsity=0.3, **FAST)
    assert len(result.front) >= 1
    assert (result.front["size_bytes"] <= limit).all()
    assert (result.front["sparsity"] >= 0.3).all()
    # Infeasible trials are kept in trials but flagged.
    assert not result.trials.loc[result.trials["size_bytes"] > limit, "feasible"].any()


def test_two_objectives(tiny_regression):
    X, y = tiny_regression
    result = autoreg.search(X, y, objectives=("error", "size"), **FAST)
    assert len(result.study.directions) == 2
    assert result.front["size_bytes"].is_monotonic_decreasing or len(result.front) == 1


def test_holdout_and_folds(tiny_regression):
    X, y = tiny_regression
    holdout = autoreg.search(X, y, validation="holdout", n_trials=3, log_mlflow=False)
    assert holdout.trials["error_se"].isna().all()
    assert holdout.settings["validation"] == "holdout"
    cv = autoreg.search(X, y, validation=3, n_trials=3, log_mlflow=False)
    assert cv.settings["validation"] == "3-fold" and cv.trials["error_se"].notna().all()
    auto = autoreg.search(X, y, n_trials=2, log_mlflow=False)
    assert auto.settings["validation"] == "5-fold"


def test_binary_dataframe_with_categories(tiny_mixed):
    result = autoreg.search(tiny_mixed, target="label", n_trials=10, log_mlflow=False)
    assert result.settings["task"] == "binary"
    model = result.model(result.pick())
    raw = tiny_mixed.drop(columns=["label"])
    assert set(model.predict(raw)) <= {"yes", "no"}
    proba = model.predict_proba(raw)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_multiclass_with_scorer_metric():
    result = autoreg.search("wine", metric="accuracy", n_trials=6, log_mlflow=False)
    assert result.settings["task"] == "multiclass"
    assert ((result.trials["error"] >= 0) & (result.trials["error"] <= 1)).all()
    assert result.front["error"].min() < 0.2  # wine is easy: accuracy above 80%


def test_unknown_metric_and_mismatched_metric(tiny_regression):
    X, y = tiny_regression
    with pytest.raises(UsageError, match="unknown metric"):
        autoreg.search(X, y, metric="nope", **FAST)
    with pytest.raises(UsageError, match="roc_auc"):
        autoreg.search(X, y, metric="roc_auc", **FAST)


def test_task_override(tiny_regression):
    X, _ = tiny_regression
    y = np.arange(len(X)) % 3  # integer labels look like classes ...
    result = autoreg.search(X, y, task="regression", n_trials=3, log_mlflow=False)
    assert result.settings["task"] == "regression"  # ... unless told otherwise


def test_sparse_input_is_never_densified(monkeypatch):
    X, y = autoreg.datasets.sparse_csr_regression(n_samples=600, n_features=3000,
                                                   density=0.005, n_informative=10)

    def refuse(*args, **kwargs):
        raise AssertionError("sparse matrix densified")

    for cls in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array):
        monkeypatch.setattr(cls, "toarray", refuse)
        monkeypatch.setattr(cls, "todense", refuse)
    result = autoreg.search(X, y, techniques=["l1"], n_trials=6, log_mlflow=False)
    assert result.settings["validation"] == "5-fold"
    assert result.front["sparsity"].max() > 0.9
    model = result.model(result.pick())
    assert model.predict(X[:5]).shape == (5,)


def test_failing_technique_is_recorded_and_search_goes_on(tiny_regression, tmp_path,
                                                          monkeypatch):
    (tmp_path / "raising_fit_plugin.py").write_text(
        "from autoreg import Float, Technique, hookimpl\n"
        "class Boom(Technique):\n"
        "    name = 'boom'\n    stage = 'penalty'\n    families = ('linear',)\n"
        "    space = {'x': Float(0.1, 1.0)}\n"
        "    def linear_estimator(self, ctx):\n"
        "        raise RuntimeError('boom cannot fit')\n"
        "@hookimpl\n"
        "def register_techniques(register):\n    register(Boom)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    X, y = tiny_regression
    result = autoreg.search(X, y, techniques=["boom", "l1"], plugins=["raising_fit_plugin"],
                            n_trials=12, log_mlflow=False)
    assert len(result.failed) >= 1
    assert (result.failed["reason"] == "RuntimeError: boom cannot fit (technique 'boom')").all()
    assert len(result.trials) + len(result.failed) == 12
    with pytest.raises(StudyError, match="all 4 trials failed: 4 x RuntimeError: boom"):
        autoreg.search(X, y, techniques=["boom"], plugins=["raising_fit_plugin"], n_trials=4,
                       log_mlflow=False)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_trials=0), UsageError, "n_trials"),
    (dict(n_trials=-3), UsageError, "n_trials"),
    (dict(timeout=0), UsageError, "timeout"),
    (dict(techniques=["nope"]), UsageError, "unknown technique 'nope'"),
    (dict(families=["tree"]), UsageError, "unknown family 'tree'"),
    (dict(objectives=("error", "speed")), UsageError, "unknown objective 'speed'"),
    (dict(objectives=("size",)), UsageError, "must include error"),
    (dict(validation=1), UsageError, "at least 2 folds"),
    (dict(validation="kfold"), UsageError, "validation"),
    (dict(sampler="cmaes"), UsageError, "unknown sampler"),
    (dict(min_sparsity=2), UsageError, "min_sparsity"),
    (dict(storage="redis://localhost/0"), UsageError, "unsupported storage URL"),
])
def test_bad_arguments(tiny_regression, kwargs, error, match):
    X, y = tiny_regression
    with pytest.raises(error, match=match):
        autoreg.search(X, y, log_mlflow=False, **{"n_trials": 2, **kwargs})


def test_too_few_rows_for_folds():
    X = np.arange(16, dtype=float).reshape(8, 2)
    y = np.arange(8, dtype=float) * 1.5
    with pytest.raises(DataError, match="6 training rows are too few for 5-fold"):
        autoreg.search(X, y, validation=5, n_trials=2, log_mlflow=False)
    # auto takes as many folds as 6 rows allow
    result = autoreg.search(X, y, n_trials=2, log_mlflow=False)
    assert result.settings["validation"] == "3-fold"


def test_sampler_object_is_used(tiny_regression):
    import optuna

    X, y = tiny_regression
    result = autoreg.search(X, y, sampler=optuna.samplers.RandomSampler(seed=5), **FAST)
    assert result.settings["sampler"] == "RandomSampler"
    assert isinstance(result.study.sampler, optuna.samplers.RandomSampler)


# -- no test split, a study in memory, tiny classes ---------------------------------------------
def test_test_size_zero_trains_on_every_row_and_measures_no_test_error(tiny_regression):
    X, y = tiny_regression
    result = autoreg.search(X, y, test_size=0, **FAST)
    assert len(result.test_index) == 0
    assert result.front["test_error"].isna().all()
    assert result.settings["validation"] == "5-fold"
    # The pick was fitted on all 60 rows: refitting on 48 of them gives another model.
    held = autoreg.search(X, y, test_size=0.2, **FAST)
    assert len(held.test_index) == 12
    assert not np.allclose(result.model(0).predict(X), held.model(0).predict(X))


def test_memory_storage_writes_nothing_and_pickles_whole(tiny_regression, isolated):
    import pickle

    X, y = tiny_regression
    before = sorted(p.name for p in isolated.rglob("*"))
    result = autoreg.search(X, y, storage=":memory:", **FAST)
    assert sorted(p.name for p in isolated.rglob("*")) == before
    back = pickle.loads(pickle.dumps(result))
    pick = result.pick()
    assert back.pick()["trial"] == pick["trial"]
    np.testing.assert_array_equal(back.model(pick).predict(X), result.model(pick).predict(X))
    assert len(back.study.trials) == 12
    with pytest.raises(UsageError, match="n_jobs > 1 needs storage the worker processes share"):
        autoreg.search(X, y, storage=":memory:", n_jobs=2, **FAST)


def test_a_result_on_a_journal_file_pickles_and_reopens_its_study(tiny_regression, tmp_path):
    import pickle

    X, y = tiny_regression
    result = autoreg.search(X, y, storage=str(tmp_path / "s.journal"), **FAST)
    back = pickle.loads(pickle.dumps(result))
    assert back._study is None  # not carried along: opened from its file when asked for
    assert [t.number for t in back.study.best_trials] == \
        [t.number for t in result.study.best_trials]
    np.testing.assert_array_equal(back.model(result.pick()).predict(X),
                                  result.model(result.pick()).predict(X))


def test_auto_validation_uses_as_many_folds_as_tiny_classes_allow():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 3))
    y = np.array(["a"] * 25 + ["b"] * 12 + ["c"] * 3)
    result = autoreg.search(X, y, test_size=0, **FAST)
    assert result.settings["validation"] == "3-fold"
    # One row of a class: trained on in every fold, never validated on, with a warning.
    y1 = np.array(["a"] * 26 + ["b"] * 13 + ["c"])
    with pytest.warns(RuntimeWarning, match="class 'c' has a single training row"):
        one = autoreg.search(X, y1, test_size=0, **FAST)
    assert one.settings["validation"] == "5-fold"
    assert set(one.model(one.pick()).classes_) == {"a", "b", "c"}
    with pytest.raises(DataError, match="every class has a single row"):
        autoreg.search(X[:5], list("abcde"), test_size=0, **FAST)


def test_a_pickled_result_finds_its_default_storage_from_another_folder(tiny_regression,
                                                                        isolated, monkeypatch):
    import pickle

    X, y = tiny_regression
    monkeypatch.setenv("AUTOREG_HOME", ".autoreg")  # relative to the working folder, as by default
    result = autoreg.search(X, y, **FAST)
    blob = pickle.dumps(result)
    expected = result.model(result.pick()).predict(X)
    elsewhere = isolated / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    back = pickle.loads(blob)
    assert len(back.study.trials) == 12
    np.testing.assert_array_equal(back.model(back.pick()).predict(X), expected)
    assert not (elsewhere / ".autoreg").exists()
