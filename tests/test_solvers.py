"""The group-lasso solver: the lasso as a special case, whole groups zeroed, the alpha_max
boundary, sparse input, warm starts and the optimality conditions at the solution."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import Lasso

from autoreg.solvers import GroupLassoClassifier, GroupLassoRegressor, group_alpha_max

# Group ids on purpose neither contiguous nor sorted: 10 groups of 3 features.
GROUPS = np.repeat(np.array([70, 10, 40, 0, 90, 20, 50, 30, 80, 60]), 3)


def _data(task: str, n: int = 200, p: int = 30, seed: int = 0):
    """Correlated features, a signal on the first 4 groups."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 0.3 * rng.standard_normal((n, 1))
    beta = np.zeros(p)
    beta[:12] = rng.uniform(0.5, 1.5, 12) * rng.choice([-1, 1], 12)
    z = X @ beta
    if task == "regression":
        return X, 2.0 + z + 0.5 * rng.standard_normal(n)
    if task == "binary":
        return X, (z + rng.logistic(size=n) > 0.5).astype(int)
    scores = np.column_stack([z, X[:, 3:9] @ beta[3:9] * 0.7, -z]) + rng.gumbel(size=(n, 3))
    return X, scores.argmax(axis=1)


def _estimator(task: str, **params):
    return GroupLassoRegressor(**params) if task == "regression" else GroupLassoClassifier(**params)


def _weights(est) -> np.ndarray:
    """Weights as features x outputs."""
    return np.atleast_2d(est.coef_).T


def _loss_gradient(est, X, y, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of the mean loss with respect to the weights (features x outputs) and the
    intercepts, written out independently of the solver."""
    n = X.shape[0]
    Z = X @ _weights(est) + est.intercept_
    if task == "regression":
        R = Z - y.reshape(-1, 1)
    elif task == "binary":
        R = 1 / (1 + np.exp(-Z)) - y.reshape(-1, 1)
    else:
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        R = P / P.sum(axis=1, keepdims=True) - np.eye(Z.shape[1])[y]
    return X.T @ R / n, R.mean(axis=0)


def test_singleton_groups_are_the_lasso():
    X, y = _data("regression")
    alpha = 0.1 * group_alpha_max(X, y, None, "regression")
    ours = GroupLassoRegressor(alpha=alpha, tol=1e-10, max_iter=20000).fit(X, y)
    ref = Lasso(alpha=alpha, tol=1e-12, max_iter=100000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4)
    assert ours.intercept_ == pytest.approx(ref.intercept_, abs=1e-4)
    assert np.array_equal(ours.coef_ == 0, ref.coef_ == 0)
    assert isinstance(ours.intercept_, float) and ours.coef_.shape == (30,)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_groups_are_zeroed_whole(task):
    X, y = _data(task)
    alpha = 0.3 * group_alpha_max(X, y, GROUPS, task)
    est = _estimator(task, alpha=alpha, groups=GROUPS, tol=1e-8, max_iter=20000).fit(X, y)
    nonzero = np.abs(_weights(est)).sum(axis=1) != 0  # per feature, across outputs
    per_group = [nonzero[GROUPS == g] for g in np.unique(GROUPS)]
    assert all(f.all() or not f.any() for f in per_group)  # no group partly zero
    n_active = sum(f.all() for f in per_group)
    assert 0 < n_active < len(per_group)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_alpha_max_is_where_every_group_turns_zero(task):
    X, y = _data(task)
    alpha_max = group_alpha_max(X, y, GROUPS, task)
    above = _estimator(task, alpha=1.01 * alpha_max, groups=GROUPS, tol=1e-8).fit(X, y)
    below = _estimator(task, alpha=0.9 * alpha_max, groups=GROUPS, tol=1e-8).fit(X, y)
    assert not np.any(above.coef_)
    assert np.any(below.coef_)


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_sparse_rows_give_the_dense_solution(task):
    rng = np.random.default_rng(3)
    # Non-negative, uncentered columns at 10% density: the intercept cannot hide in centering.
    X = sp.random(300, 30, density=0.1, format="csr", random_state=3, data_rvs=rng.random)
    dense = X.toarray()
    _, y = _data(task, n=300)
    y = dense[:, :6].sum(axis=1) + 0.1 * rng.standard_normal(300) if task == "regression" else y
    alpha = 0.1 * group_alpha_max(X, y, GROUPS, task)
    params = dict(alpha=alpha, groups=GROUPS, tol=1e-9, max_iter=50000)
    fits = [_estimator(task, **params).fit(data, y) for data in (X, X.tocsc(), dense)]
    for fit in fits[:2]:
        np.testing.assert_allclose(fit.coef_, fits[2].coef_, atol=1e-6)
        np.testing.assert_allclose(fit.intercept_, fits[2].intercept_, atol=1e-6)
    np.testing.assert_allclose(fits[0].predict(X), fits[2].predict(dense), atol=1e-6)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_warm_start_converges_in_fewer_iterations(task):
    X, y = _data(task)
    X = X + np.random.default_rng(0).standard_normal((200, 1))  # strongly correlated: slow
    alpha = 0.05 * group_alpha_max(X, y, GROUPS, task)
    params = dict(groups=GROUPS, tol=1e-6, max_iter=20000)
    cold = _estimator(task, alpha=alpha, **params).fit(X, y)
    near = _estimator(task, alpha=1.05 * alpha, **params).fit(X, y)
    # An estimator never fitted, handed the nearby solution by its caller.
    warm = _estimator(task, alpha=alpha, warm_start=True, **params)
    warm.coef_, warm.intercept_ = near.coef_.copy(), near.intercept_
    warm.fit(X, y)
    np.testing.assert_allclose(warm.coef_, cold.coef_, atol=1e-3)
    assert warm.n_iter_ < 0.6 * cold.n_iter_
    # Refitting at the same strength from its own solution is nearly free.
    assert warm.fit(X, y).n_iter_ <= 3


def test_multinomial_shapes_and_probabilities():
    X, y = _data("multiclass")
    labels = np.array(["ant", "bee", "cat"])[y]  # any labels, not just 0..K-1
    alpha = 0.1 * group_alpha_max(X, y, GROUPS, "multiclass")
    est = GroupLassoClassifier(alpha=alpha, groups=GROUPS).fit(X, labels)
    assert est.coef_.shape == (3, 30) and est.intercept_.shape == (3,)
    assert list(est.classes_) == ["ant", "bee", "cat"]
    proba = est.predict_proba(X[:50])
    assert proba.shape == (50, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert est.decision_function(X[:50]).shape == (50, 3)
    assert set(est.predict(X)) <= set(est.classes_)
    assert est.score(X, labels) > 0.6
    binary = GroupLassoClassifier(alpha=alpha, groups=GROUPS).fit(X, (y == 0).astype(int))
    assert binary.coef_.shape == (1, 30) and binary.intercept_.shape == (1,)
    assert binary.decision_function(X[:5]).shape == (5,)
    np.testing.assert_allclose(binary.predict_proba(X[:5]).sum(axis=1), 1.0)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_solution_satisfies_the_optimality_conditions(task):
    X, y = _data(task)
    alpha = 0.2 * group_alpha_max(X, y, GROUPS, task)
    est = _estimator(task, alpha=alpha, groups=GROUPS, tol=1e-10, max_iter=50000).fit(X, y)
    grad, grad_intercept = _loss_gradient(est, X, y, task)
    W = _weights(est)
    np.testing.assert_allclose(grad_intercept, 0.0, atol=1e-7)
    n_zero = 0
    for g in np.unique(GROUPS):
        rows = GROUPS == g
        bound = alpha * np.sqrt(rows.sum())
        norm = np.linalg.norm(W[rows])
        if norm == 0:
            # A zero group: its gradient lies in the ball the penalty's subgradient spans.
            assert np.linalg.norm(grad[rows]) <= bound * (1 + 1e-6)
            n_zero += 1
        else:
            # An active group: the gradient balances the penalty exactly.
            np.testing.assert_allclose(grad[rows], -bound * W[rows] / norm, atol=1e-6 * bound)
    assert 0 < n_zero < 10


def test_parameters_follow_scikit_learn_conventions():
    est = GroupLassoClassifier(alpha=0.5, groups=GROUPS, warm_start=True)
    copy = clone(est).get_params()
    assert copy.keys() == est.get_params().keys() and copy["alpha"] == 0.5
    assert np.array_equal(copy["groups"], GROUPS) and copy["warm_start"]
    with pytest.raises(ValueError, match="groups"):
        GroupLassoRegressor(groups=GROUPS[:10]).fit(*_data("regression"))


# -- elastic-net logistic regression on the same solver -----------------------------------------

def _enet_objective(est, X, y, alpha, l1_ratio):
    from sklearn.metrics import log_loss

    W = np.atleast_2d(est.coef_)
    return (log_loss(y, est.predict_proba(X))
            + alpha * (l1_ratio * np.abs(W).sum() + (1 - l1_ratio) / 2 * (W ** 2).sum()))


@pytest.mark.parametrize("loader", ["load_breast_cancer", "load_wine"])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_elastic_net_classifier_solves_scikit_learns_problem(loader, l1_ratio):
    import warnings

    from sklearn import datasets
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from autoreg.solvers import ElasticNetClassifier

    X, y = getattr(datasets, loader)(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    alpha = 0.01
    ours = ElasticNetClassifier(alpha=alpha, l1_ratio=l1_ratio).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = LogisticRegression(l1_ratio=l1_ratio, C=1 / (alpha * len(y)), solver="saga",
                                 tol=1e-6, max_iter=20000).fit(X, y)
    # The same objective as scikit-learn's, minimized at least as well (to 1e-4).
    assert _enet_objective(ours, X, y, alpha, l1_ratio) <= \
        _enet_objective(ref, X, y, alpha, l1_ratio) + 1e-4
    assert np.mean(ours.predict(X) == ref.predict(X)) > 0.98
    assert np.any(ours.coef_ == 0)  # exact zeros, not small values
    assert ours.coef_.shape == ref.coef_.shape


def test_elastic_net_classifier_refuses_a_bad_mix():
    from autoreg.solvers import ElasticNetClassifier

    with pytest.raises(ValueError, match="l1_ratio must be in"):
        ElasticNetClassifier(l1_ratio=1.5).fit(np.eye(4), [0, 1, 0, 1])
