"""The relaxed lasso (``relax`` of l1, elasticnet and group_lasso on ``linear``): the penalty
picks the features, a light ridge refits them, and the model keeps the penalty's zeros."""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pytest
import scipy.sparse as sp
from sklearn.linear_model import Lasso, LogisticRegression, Ridge

import autoreg
from autoreg.families import FAMILIES
from autoreg.solvers import RelaxedLinear, kept_features


def _data(task: str, n: int = 240, p: int = 12, seed: int = 0):
    """Four informative columns out of ``p``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    z = X[:, :4] @ np.array([2.0, -1.5, 1.0, 0.8])
    if task == "regression":
        return X, z + 0.3 * rng.standard_normal(n)
    return X, (z + 0.3 * rng.logistic(size=n) > 0).astype(int)


def _search(X, y, params: dict, techniques=("l1",)):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.PartialFixedSampler(params,
                                                      optuna.samplers.RandomSampler(seed=0))
        return autoreg.search(X, y, techniques=list(techniques), n_trials=1, sampler=sampler,
                              log_mlflow=False)


@pytest.mark.parametrize("task", ["regression", "binary"])
@pytest.mark.parametrize("penalty", ["l1", "group_lasso"])
def test_relaxing_a_strong_lasso_keeps_its_features_and_lowers_the_error(task, penalty):
    """A strong lasso keeps the right few features but shrinks their weights; relaxed, the
    same features predict better on the validation rows."""
    X, y = _data(task)
    rows = {}
    for relax in (0.0, 1.0):
        result = _search(X, y, {"penalty": penalty, f"{penalty}.strength": 0.5,
                                f"{penalty}.relax": relax}, techniques=(penalty,))
        rows[relax] = result.trials.iloc[0]
    plain, relaxed = rows[0.0], rows[1.0]
    assert 1 <= plain["n_features_used"] <= 4
    assert relaxed["n_features_used"] == plain["n_features_used"]
    assert relaxed["sparsity"] == plain["sparsity"]
    assert relaxed["error"] < 0.8 * plain["error"]


def test_pruned_and_refitted_relaxed_model_keeps_the_pruned_zeros():
    X, y = _data("binary")
    result = _search(X, y, {"penalty": "l1", "l1.strength": 0.01, "l1.relax": 1.0,
                            "pruning": True, "pruning.amount": 0.75, "pruning.refit": True},
                     techniques=("l1", "pruning"))
    row = result.trials.iloc[0]
    assert row["recipe"] == "l1+pruning"
    assert row["sparsity"] >= 0.75
    assert row["n_features_used"] <= 3


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
@pytest.mark.parametrize("relax", [0.4, 1.0])
def test_relaxed_weights_blend_the_lasso_and_a_ridge_refit_of_its_features(task, relax):
    X, y = _data("regression")
    if task == "regression":
        lasso, ridge = Lasso(alpha=0.3), Ridge(alpha=0.5)
    else:
        y = (y > 0).astype(int) if task == "binary" else np.digitize(y, [-1.0, 1.0])
        lasso = LogisticRegression(l1_ratio=1.0, C=0.05, solver="saga", max_iter=5000,
                                   tol=1e-8)
        ridge = LogisticRegression(C=2.0, max_iter=5000, tol=1e-10)
    est = RelaxedLinear(lasso, ridge, relax=relax).fit(X, y)
    first = lasso.fit(X, y)
    W0 = np.atleast_2d(first.coef_).T
    support = kept_features(W0)
    assert 0 < len(support) < X.shape[1]
    second = ridge.fit(X[:, support], y)
    W = np.atleast_2d(est.coef_).T
    assert np.all(W[np.setdiff1d(np.arange(X.shape[1]), support)] == 0)
    expected = (1 - relax) * W0[support] + relax * np.atleast_2d(second.coef_).T
    np.testing.assert_allclose(W[support], expected, rtol=1e-5, atol=1e-7)
    b = (1 - relax) * np.atleast_1d(first.intercept_) + relax * np.atleast_1d(second.intercept_)
    np.testing.assert_allclose(np.atleast_1d(est.intercept_), b, rtol=1e-5, atol=1e-7)
    assert np.shape(est.coef_) == np.shape(first.coef_)

    # The linear family fits the same model (its own code path, with its fast solvers).
    n_out = 3 if task == "multiclass" else 1
    for rows in (X, sp.csr_matrix(X)):
        fit = FAMILIES["linear"].fit(RelaxedLinear(lasso, ridge, relax=relax), rows, y, n_out)
        np.testing.assert_allclose(fit.coef, W, rtol=1e-4, atol=1e-6)
