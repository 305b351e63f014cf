"""Regularization paths walked before sampling, and the work a search reuses across trials."""

from __future__ import annotations

import gc

import numpy as np
import optuna
import pytest

import autoreg
from autoreg.cache import ArrayCache
from autoreg.engine import path_size
from autoreg.registry import load_techniques
from autoreg.space import SearchSpace

PATHED = ("elasticnet", "group_lasso", "l1", "l2")


def _space(task="regression", techniques=None):
    return SearchSpace(load_techniques(), task, ("linear",), techniques)


def test_path_points_cover_each_range_from_the_strongest():
    points = _space().path_points(4)
    penalties = [p["penalty"] for p, _ in points]
    assert penalties == [name for name in PATHED for _ in range(4)] + ["none"]
    l1 = [p["l1.strength"] for p, _ in points if p["penalty"] == "l1"]
    np.testing.assert_allclose(l1, [1.0, 0.1, 0.01, 0.001])
    l2 = [p["l2.strength"] for p, _ in points if p["penalty"] == "l2"]
    assert l2[0] == 100.0 and l2[-1] == pytest.approx(1e-5)
    params, dists = points[0]
    # Every parameter the recipe asks for is given, with the distribution it is sampled from,
    # and nothing is switched on but the penalty.
    assert params == {"penalty": "elasticnet", "elasticnet.strength": 1.0,
                      "elasticnet.l1_ratio": 0.5, "elasticnet.relax": 0.0,
                      "pruning": False, "quantization": False}
    assert set(dists) == set(params)
    assert dists["elasticnet.strength"] == optuna.distributions.FloatDistribution(
        1e-3, 1.0, log=True)


def test_path_size_is_about_half_the_budget():
    space = _space()
    assert path_size(space, 100) == 12  # 4 x 12 + "none" = 49 of 100
    assert path_size(space, 1000) == 16
    assert path_size(space, 12) == 0  # too few to walk a path: the sampler alone
    assert path_size(_space(techniques=["l2", "pruning"]), 12) == 5


def test_search_walks_the_paths_then_samples(tiny_regression):
    X, y = tiny_regression
    result = autoreg.search(X, y, n_trials=30, log_mlflow=False)
    trials = result.trials.sort_values("trial")
    assert len(trials) == 30
    walked = trials.head(13)  # path_size(space, 30) == 3 points for each of 4 penalties, "none"
    assert list(walked["recipe"]) == [name for name in PATHED for _ in range(3)] + ["none"]
    assert list(walked["l1.strength"].dropna()) == pytest.approx([1.0, 10 ** -1.5, 1e-3])
    # The strongest lasso zeroes every weight; the weakest keeps the two true features.
    l1 = walked[walked["recipe"] == "l1"]
    assert l1["sparsity"].iloc[0] == 1.0 and l1["n_features_used"].iloc[-1] >= 2
    assert l1["error"].iloc[-1] < l1["error"].iloc[0] / 5
    # Each walked point is a complete trial whose model is the one measured.
    for number in walked["trial"]:
        model = result.model(int(number))
        assert model.n_features_used == int(
            trials.loc[trials["trial"] == number, "n_features_used"].iloc[0])
    sampled = trials.iloc[13:]
    assert sampled["recipe"].str.contains(r"\+").any()  # compression only comes from sampling


def test_paths_are_walked_once_per_study(tiny_regression):
    X, y = tiny_regression
    kw = dict(study_name="walk-once", log_mlflow=False)
    first = autoreg.search(X, y, n_trials=30, **kw)
    more = autoreg.search(X, y, n_trials=40, **kw)
    assert more.resumed and len(more.trials) == 40
    assert (more.trials["recipe"] == "none").sum() == (first.trials["recipe"] == "none").sum()
    off = autoreg.search(X, y, n_trials=30, log_mlflow=False, paths=False)
    assert len(off.trials) == 30
    assert not (off.trials.sort_values("trial").head(13)["recipe"]
                == list(first.trials.sort_values("trial").head(13)["recipe"])).all()


def test_paths_keep_a_timeout(tiny_regression):
    X, y = tiny_regression
    result = autoreg.search(X, y, n_trials=200, timeout=0.05, log_mlflow=False)
    # The deadline falls inside the walk: it stops there, and the sampler adds at most one.
    assert len(result.trials) < 20


def test_paths_with_workers_keep_the_budget():
    result = autoreg.search("diabetes", n_trials=40, n_jobs=2, log_mlflow=False)
    assert len(result.trials) == 40
    assert (result.trials["recipe"] == "none").sum() >= 1


def test_array_cache_matches_only_the_same_live_array():
    cache = ArrayCache(size=2)
    a = np.ones(3)
    cache.put(a, "k", 1)
    assert cache.get(a, "k") == 1 and cache.get(a, "other") is None
    assert cache.get(np.ones(3), "k") is None  # equal values, another array
    ident = id(a)
    del a
    gc.collect()
    reused = [np.zeros(3) for _ in range(50)]
    same_id = [b for b in reused if id(b) == ident]
    for b in same_id:  # an id handed on to a new array never finds the old entry
        assert cache.get(b, "k") is None
    assert len(cache) == 0  # a freed array's entries went with it
    b, c, d = np.ones(1), np.ones(1), np.ones(1)
    cache.put(b, "k", 2)
    cache.put(c, "k", 3)
    cache.get(b, "k")  # b is now the most recently used
    cache.put(d, "k", 4)
    assert cache.get(b, "k") == 2 and cache.get(c, "k") is None and cache.get(d, "k") == 4


def test_relaxed_refit_is_reused_and_matches_a_fresh_one(tiny_regression, monkeypatch):
    from sklearn.linear_model import Lasso

    from autoreg.families import FAMILIES, _linear
    from autoreg.solvers import RelaxedLinear, ridge_estimator

    X, y = tiny_regression
    X = np.asarray(X)
    fam = FAMILIES["linear"]
    est = RelaxedLinear(Lasso(alpha=0.05), ridge_estimator("regression", len(y)), relax=1.0)
    monkeypatch.setattr(_linear, "_REFITS", ArrayCache())
    first = fam.fit(est, X, y, 1)
    assert len(_linear._REFITS) == 1
    again = fam.fit(RelaxedLinear(Lasso(alpha=0.06), ridge_estimator("regression", len(y)),
                                  relax=1.0), X, y, 1)
    assert len(_linear._REFITS) == 1  # the same kept features: reused
    fresh = RelaxedLinear(Lasso(alpha=0.05), ridge_estimator("regression", len(y)),
                          relax=1.0).fit(X, y)
    np.testing.assert_allclose(first.coef[:, 0], fresh.coef_, atol=1e-8)
    np.testing.assert_allclose(again.coef, first.coef, atol=1e-8)


def test_unpenalized_fit_is_made_once_per_rows(tiny_regression, monkeypatch):
    from autoreg.families import FAMILIES, _linear
    from autoreg.space import Recipe

    X, y = tiny_regression
    X = np.asarray(X)
    fam = FAMILIES["linear"]
    ctx = fam.context(X, y, "regression", 0, 0)
    monkeypatch.setattr(_linear, "_PLAIN", ArrayCache())
    calls = []
    real = type(fam).fit
    monkeypatch.setattr(type(fam), "fit", lambda self, *a, **k: calls.append(1) or real(
        self, *a, **k))
    first = fam.train(Recipe("linear"), ctx, X, y)
    again = fam.train(Recipe("linear"), ctx, X, y)
    other = fam.train(Recipe("linear"), ctx, X.copy(), y)
    assert len(calls) == 2  # once for X, once for its copy
    np.testing.assert_array_equal(first.coef, again.coef)
    np.testing.assert_allclose(other.coef, first.coef)
