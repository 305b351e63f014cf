"""The low-overhead fits of small dense data (``autoreg.fastfit``) land where scikit-learn's
estimators do, on real data: the same weights for the closed forms and coordinate descent, and
for logistic regression an objective at least as low as scikit-learn's own solver reaches."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import datasets
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from autoreg import fastfit
from autoreg.families import FAMILIES
from autoreg.solvers import ElasticNetClassifier, GroupLassoClassifier, GroupLassoRegressor


def _random(task: str, n: int = 300, p: int = 40, seed: int = 0):
    """Correlated features with a sparse signal: wider than the built-in data sets."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 0.5 * rng.standard_normal((n, 1))
    z = X[:, :6] @ rng.uniform(0.5, 1.5, 6)
    if task == "regression":
        return X, 3.0 + z + rng.standard_normal(n)
    return X, (z + rng.logistic(size=n) > 0).astype(np.int64)


def _load(name: str):
    if name == "random-regression":
        return _random("regression")
    if name == "random-binary":
        return _random("binary")
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    if name == "wine":  # two of its classes: the fast path is for two-class targets
        X, y = X[y < 2], y[y < 2]
    return StandardScaler().fit_transform(X), y


def _objective(X, y, coef, intercept, alpha, l1_ratio) -> float:
    """The penalized mean log-loss, written out independently of the solvers."""
    z = X @ np.ravel(coef) + float(np.ravel(intercept)[0])
    y01 = (y == y.max()).astype(float)
    return (np.mean(np.logaddexp(0, z) - y01 * z)
            + alpha * (l1_ratio * np.abs(coef).sum() + (1 - l1_ratio) / 2 * np.sum(coef ** 2)))


REGRESSORS = [
    lambda: Ridge(alpha=30.0),
    lambda: Ridge(alpha=1e-3),
    lambda: LinearRegression(),
    lambda: Lasso(alpha=0.5, tol=1e-10, max_iter=100_000),
    lambda: ElasticNet(alpha=0.2, l1_ratio=0.3, tol=1e-10, max_iter=100_000),
]


@pytest.mark.parametrize("name", ["diabetes", "random-regression"])
@pytest.mark.parametrize("make", REGRESSORS)
def test_regression_weights_are_scikit_learns(name, make):
    X, y = _load(name)
    ref = make().fit(X, y)
    coef, intercept = fastfit.fit(make(), X, y, 1)
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(coef[:, 0], ref.coef_, rtol=1e-6, atol=1e-8 * scale)
    assert intercept[0] == pytest.approx(ref.intercept_, rel=1e-8)
    np.testing.assert_array_equal(coef[:, 0] == 0, ref.coef_ == 0)  # the same exact zeros


@pytest.mark.parametrize("name", ["diabetes", "random-regression"])
def test_singleton_group_lasso_is_scikit_learns_lasso(name):
    X, y = _load(name)
    alpha = 0.3
    ref = Lasso(alpha=alpha, tol=1e-10, max_iter=100_000).fit(X, y)
    est = GroupLassoRegressor(alpha=alpha, groups=np.arange(X.shape[1]), tol=1e-10)
    coef, intercept = fastfit.fit(est, X, y, 1)
    np.testing.assert_allclose(coef[:, 0], ref.coef_, atol=1e-6 * np.abs(ref.coef_).max())
    assert intercept[0] == pytest.approx(ref.intercept_, rel=1e-8)


def test_a_column_subset_is_fitted_as_its_own_array():
    X, y = _load("diabetes")
    support = np.array([0, 2, 3, 8])
    for make in REGRESSORS:
        ref = make().fit(X[:, support], y)
        coef, intercept = fastfit.fit(make(), X, y, 1, support=support)
        np.testing.assert_allclose(coef[:, 0], ref.coef_, rtol=1e-6, atol=1e-8)
        assert intercept[0] == pytest.approx(ref.intercept_, rel=1e-8)


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "random-binary"])
@pytest.mark.parametrize("C", [1e-3, 0.1, 10.0])
def test_ridge_logistic_is_scikit_learns_optimum(name, C):
    X, y = _load(name)
    alpha = 1 / (C * len(y))
    ref = LogisticRegression(C=C, max_iter=1000).fit(X, y)
    tight = LogisticRegression(C=C, tol=1e-10, max_iter=100_000).fit(X, y)
    coef, intercept = fastfit.fit(LogisticRegression(C=C, max_iter=1000), X, y, 1)
    # At least as low an objective as lbfgs's own default fit, and its tight fit's weights.
    assert _objective(X, y, coef, intercept, alpha, 0.0) <= \
        _objective(X, y, ref.coef_, ref.intercept_, alpha, 0.0) + 1e-12
    scale = np.abs(tight.coef_).max()
    np.testing.assert_allclose(coef[:, 0], tight.coef_[0], atol=1e-4 * scale)


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "random-binary"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("strength", [0.3, 0.01])
def test_sparse_logistic_solves_scikit_learns_problem(name, l1_ratio, strength):
    from autoreg.solvers import group_alpha_max

    X, y = _load(name)
    alpha = strength * group_alpha_max(X, y, None, "binary") / l1_ratio
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = LogisticRegression(l1_ratio=l1_ratio, C=1 / (alpha * len(y)), solver="saga",
                                 tol=1e-8, max_iter=50_000).fit(X, y)
    est = ElasticNetClassifier(alpha=alpha, l1_ratio=l1_ratio)
    coef, intercept = fastfit.fit(est, X, y, 1)
    ours = _objective(X, y, coef, intercept, alpha, l1_ratio)
    assert ours <= _objective(X, y, ref.coef_, ref.intercept_, alpha, l1_ratio) + 1e-9
    # The estimator's own solver (FISTA) ends no lower; its weights agree to its tolerance.
    fista = ElasticNetClassifier(alpha=alpha, l1_ratio=l1_ratio).fit(X, y)
    assert ours <= _objective(X, y, fista.coef_, fista.intercept_, alpha, l1_ratio) + 1e-12
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(coef[:, 0], ref.coef_[0], atol=1e-3 * scale)
    assert np.any(coef == 0) and np.any(coef != 0)  # exact zeros, not small values
    assert np.array_equal(coef[:, 0] != 0, np.abs(ref.coef_[0]) > 1e-6 * scale)


def test_singleton_group_lasso_classifier_is_the_lasso():
    X, y = _load("breast_cancer")
    alpha = 0.01
    lasso = fastfit.fit(ElasticNetClassifier(alpha=alpha, l1_ratio=1.0), X, y, 1)
    group = fastfit.fit(GroupLassoClassifier(alpha=alpha), X, y, 1)
    np.testing.assert_allclose(group[0], lasso[0])


def test_warm_start_takes_fewer_newton_steps_to_the_same_optimum():
    X, y = _load("breast_cancer")
    y01 = y.astype(float)
    near, b_near, _ = fastfit.logistic(X, y01, 0.02, 1.0, np.zeros(X.shape[1]), 0.0)
    cold, b_cold, cold_steps = fastfit.logistic(X, y01, 0.015, 1.0, np.zeros(X.shape[1]), 0.0)
    warm, b_warm, warm_steps = fastfit.logistic(X, y01, 0.015, 1.0, near, b_near)
    assert warm_steps < cold_steps
    np.testing.assert_allclose(warm, cold, atol=1e-6)


@pytest.mark.parametrize("case", ["sparse", "wide", "multiclass", "groups", "unpenalized"])
def test_what_the_fast_path_leaves_to_the_estimator(case):
    X, y = _load("breast_cancer")
    est = ElasticNetClassifier(alpha=0.01)
    if case == "sparse":
        X = sp.csr_matrix(X)
    elif case == "wide":
        X, y = X[:20], y[:20]
    elif case == "multiclass":
        X, y = datasets.load_wine(return_X_y=True)
        X = StandardScaler().fit_transform(X)
    elif case == "groups":
        est = GroupLassoClassifier(alpha=0.01, groups=np.repeat(np.arange(10), 3))
    else:
        est = LogisticRegression(C=np.inf)
    assert fastfit.fit(est, X, y, 1) is None


def test_the_family_fits_dense_and_sparse_rows_alike():
    """The fast path (dense) and the estimators' own (sparse rows) give one model, to the
    tolerance of lbfgs, which refits the relaxed lasso's features on sparse rows."""
    from autoreg.solvers import relaxed

    X, y = _load("breast_cancer")
    fam = FAMILIES["linear"]

    def make():
        return relaxed(ElasticNetClassifier(alpha=0.01, tol=1e-8, max_iter=20_000), "binary",
                       len(y), 0.5)

    dense = fam.fit(make(), X, y, 1)
    sparse = fam.fit(make(), sp.csr_matrix(X), y, 1)
    np.testing.assert_allclose(dense.coef, sparse.coef, atol=1e-2)
    np.testing.assert_array_equal(dense.coef == 0, sparse.coef == 0)
    np.testing.assert_array_equal(fam.decision(dense, X) > 0, fam.decision(sparse, X) > 0)
