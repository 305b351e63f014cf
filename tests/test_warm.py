"""Warm starts: a fit that starts from a nearby solution lands on the same model, faster."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Lasso, LogisticRegression

from autoreg.engine import WarmStarts
from autoreg.families import FAMILIES


def test_nearest_is_on_a_log_scale():
    warm = WarmStarts(keep=3)
    for s in (1e-3, 1e-2, 1e-1):
        warm.add(("k",), {"strength": s}, s)
    assert warm.nearest(("k",), {"strength": 3e-3}) == 1e-3
    assert warm.nearest(("k",), {"strength": 4e-2}) == 1e-1
    assert warm.nearest(("other",), {"strength": 1e-2}) is None
    warm.add(("k",), {"strength": 0.5}, 0.5)  # keep=3 drops the oldest
    assert warm.nearest(("k",), {"strength": 1e-3}) == 1e-2


def _wide(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((200, 400))
    y = X[:, :10] @ rng.uniform(1, 2, 10) + 0.5 * rng.standard_normal(200)
    return X, y


def test_warm_lasso_matches_cold_in_fewer_passes():
    X, y = _wide()
    fam = FAMILIES["linear"]
    near = fam.fit(Lasso(alpha=0.06), X, y, 1)
    cold_est, warm_est = Lasso(alpha=0.05), Lasso(alpha=0.05)
    cold = fam.fit(cold_est, X, y, 1)
    warm = fam.fit(warm_est, X, y, 1, init=near)
    np.testing.assert_allclose(warm.coef, cold.coef, atol=2e-3)
    assert (warm.coef != 0).sum() == pytest.approx((cold.coef != 0).sum(), abs=2)
    assert warm_est.n_iter_ < cold_est.n_iter_


def test_warm_multinomial_saga_matches_cold():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 20))
    y = np.argmax(X[:, :3] + 0.3 * rng.standard_normal((300, 3)), axis=1)
    fam = FAMILIES["linear"]
    kw = dict(l1_ratio=1.0, solver="saga", tol=1e-4, max_iter=5000, random_state=0)
    near = fam.fit(LogisticRegression(C=0.12, **kw), X, y, 3)
    cold_est, warm_est = LogisticRegression(C=0.1, **kw), LogisticRegression(C=0.1, **kw)
    cold = fam.fit(cold_est, X, y, 3)
    warm = fam.fit(warm_est, X, y, 3, init=near)
    np.testing.assert_allclose(warm.coef, cold.coef, atol=5e-3)
    assert warm_est.n_iter_[0] <= cold_est.n_iter_[0]


def test_sparse_lasso_matches_scikit_learn_without_implicit_centering():
    import scipy.sparse as sp

    from autoreg.datasets import sparse_csr_regression

    X, y = sparse_csr_regression(n_samples=800, n_features=2000, density=0.01, n_informative=10)
    fam = FAMILIES["linear"]
    for alpha in (0.05, 0.01):
        ref = Lasso(alpha=alpha, tol=1e-8, max_iter=10_000).fit(X, y)
        ours = fam.fit(Lasso(alpha=alpha, tol=1e-8, max_iter=10_000), X, y, 1)
        np.testing.assert_allclose(ours.coef[:, 0], ref.coef_, atol=1e-4)
        assert ours.intercept[0] == pytest.approx(ref.intercept_, abs=1e-4)
        assert ((ours.coef[:, 0] != 0) == (ref.coef_ != 0)).mean() > 0.99
    assert sp.issparse(X)
