"""The linear family's estimators fitted without their per-fit overhead, on small dense data.

A search fits thousands of tiny models on the same few arrays (each fold's rows). At a few
hundred rows the numerics take microseconds and a scikit-learn ``fit`` spends most of its
millisecond validating the same arrays again, reading its parameters through
``inspect.signature`` and running Python-level solver loops. Here the work that depends on the
rows alone (column means, the centered Gram matrix, ``X^T y``) is computed once per array, and
each fit solves the estimator's own objective from it:

- ``Ridge``: the normal equations of the centered rows, solved directly.
- ``LinearRegression``: ``scipy.linalg.lstsq`` of the centered rows, as scikit-learn does.
- ``Lasso`` / ``ElasticNet`` / a group lasso whose groups are single features: scikit-learn's
  coordinate descent (``enet_path``) on the cached Gram matrix, with its input checks off.
- Two-class logistic regression with an l2, l1 or elastic-net penalty (scikit-learn's
  ``LogisticRegression``, :class:`~autoreg.solvers.ElasticNetClassifier`, a singleton-group
  :class:`~autoreg.solvers.GroupLassoClassifier`): a proximal Newton method, hand-written here
  because on p of a few dozen a Newton step is a (p x p) solve and the iteration converges in a
  handful of steps, where lbfgs and FISTA take tens to hundreds of Python-level iterations.
  Each step minimizes the loss's quadratic model plus the penalty exactly (a linear solve for
  l2, ``enet_path`` for l1), and a backtracking line search keeps every step a descent.

Anything else -- sparse rows, wide rows, multinomial targets, real groups, an unpenalized
logistic model (whose optimum may lie at infinity) -- returns None and is fitted by the
estimator itself.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning

from .cache import ArrayCache

#: The fast path holds a copy of the rows and a p x p Gram matrix per array: only on data this
#: small (8 MB a copy), where per-fit overhead dominates anyway, and with more rows than
#: features, where a pass over the Gram matrix is cheaper than one over the rows.
MAX_CELLS = 1_000_000
MAX_FEATURES = 500
#: A proximal Newton fit stops when its step moves the weights and intercept by less than this,
#: relative to their norm, or when the step promises to lower the objective by less than
#: ``NEWTON_FTOL`` relative (the objective is then at its optimum to rounding, while on
#: ill-conditioned rows the weights can still drift along directions it hardly sees). Newton
#: steps shrink quadratically near the optimum, so either costs a step or two more than a loose
#: tolerance.
NEWTON_RTOL = 1e-6
NEWTON_FTOL = 1e-12
#: Relative duality gap of the Newton steps' l1 subproblems (scikit-learn's ``tol`` of
#: ``enet_path``): loose while the steps are long, as tight as ``INNER_TOL`` as they vanish, where
#: an inexact subproblem would make the step, and so the stopping rule, unreliable.
INNER_TOL = 1e-10
FIRST_INNER_TOL = 1e-4
#: Curvature of the logistic loss per row is at least this in the quadratic models: a row
#: predicted with certainty contributes almost none, and the floor keeps the working response
#: finite. Any positive curvature gives a descent direction; the line search does the rest.
MIN_CURVATURE = 1e-6
_ARMIJO = 1e-4


class Rows:
    """What fits on one array of rows share: column means, the centered rows, their Gram
    matrix and, for a numeric target, the centered target and ``X^T y``."""

    def __init__(self, X: np.ndarray, y: np.ndarray):
        self.X, self.y = X, y
        self.n = X.shape[0]
        self.x_mean = X.mean(axis=0)
        self.Xc = np.asfortranarray(X - self.x_mean)
        self.gram = self.Xc.T @ self.Xc
        self.y_mean = float(y.mean())
        self.yc = np.asarray(y, dtype=np.float64) - self.y_mean
        self.xy = self.Xc.T @ self.yc

    def sub(self, support):
        """Centered rows, Gram matrix and ``X^T y`` of the ``support`` columns (all if None)."""
        if support is None:
            return self.Xc, self.gram, self.xy
        return (self.Xc[:, support], np.ascontiguousarray(self.gram[np.ix_(support, support)]),
                self.xy[support])


_ROWS = ArrayCache(64)


def _rows(X, y) -> Rows:
    """The cached :class:`Rows` of ``X``, for this target (compared by value: the caller may
    hand the same target as a new array)."""
    hit = _ROWS.get(X)
    if hit is not None and (hit.y is y or (hit.y.shape == y.shape and np.array_equal(hit.y, y))):
        return hit
    rows = Rows(X, y)
    _ROWS.put(X, (), rows)
    return rows


def applies(X) -> bool:
    """Whether ``X`` is small dense float64 rows, more than columns: the data this module is
    for."""
    return (not sp.issparse(X) and isinstance(X, np.ndarray) and X.ndim == 2
            and X.dtype == np.float64 and X.size <= MAX_CELLS and X.shape[1] <= MAX_FEATURES
            and X.shape[0] > X.shape[1])


def fit(est, X, y, n_out: int, init=None, support=None):
    """Fit ``est``'s objective on the ``support`` columns of ``X`` (all if None), starting
    from ``init`` (coef as features x 1, intercept) where the solver is iterative.

    Returns ``(coef, intercept)`` as features x 1 and (1,), or None when ``est`` is not one
    this module solves (the caller then fits it as usual).
    """
    if n_out != 1 or not applies(X) or not getattr(est, "fit_intercept", False):
        return None
    problem = _problem(est, y)
    if problem is None:
        return None
    kind, params = problem
    if kind == "logistic":
        return _fit_logistic(X, y, support, init, **params)
    rows = _rows(X, y)
    Xc, gram, xy = rows.sub(support)
    if kind == "ridge":
        w = np.linalg.solve(gram + params["alpha"] * np.eye(len(xy)), xy)
    elif kind == "ols":
        w = scipy.linalg.lstsq(Xc, rows.yc, cond=params["cond"])[0]
    else:
        w0 = None if init is None else np.asarray(init[0], dtype=np.float64)[:, 0]
        w = enet(Xc, rows.yc, gram, xy, w0=w0, **params)
    x_mean = rows.x_mean if support is None else rows.x_mean[support]
    return w.reshape(-1, 1), np.array([rows.y_mean - float(x_mean @ w)])


def _singletons(groups) -> bool:
    if groups is None:
        return True
    groups = np.asarray(groups).ravel()
    return len(np.unique(groups)) == len(groups)


def _binary(y) -> bool:
    return np.asarray(y).ndim == 1 and len(np.unique(y)) == 2


def _problem(est, y):
    """``(kind, parameters)`` of the objective ``est`` minimizes, if this module solves it.

    Parameters are read as attributes (scikit-learn estimators store them as given) rather than
    through ``get_params``, which inspects the constructor's signature on every call.
    """
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge

    from .solvers import ElasticNetClassifier, GroupLassoClassifier, GroupLassoRegressor

    kind = type(est)
    if kind is Ridge and not est.positive:
        return "ridge", {"alpha": float(est.alpha)}
    if kind is LinearRegression and not est.positive:
        return "ols", {"cond": est.tol}
    if kind in (Lasso, ElasticNet) and not est.positive and est.selection == "cyclic" \
            and est.precompute is False:
        return "enet", {"alpha": float(est.alpha),
                        "l1_ratio": 1.0 if kind is Lasso else float(est.l1_ratio),
                        "tol": est.tol, "max_iter": est.max_iter}
    if kind is GroupLassoRegressor and _singletons(est.groups):
        return "enet", {"alpha": float(est.alpha), "l1_ratio": 1.0, "tol": est.tol,
                        "max_iter": est.max_iter}
    if not _binary(y):
        return None
    if kind is LogisticRegression and est.penalty in ("deprecated", "l2") \
            and est.l1_ratio in (0, None) and est.class_weight is None and np.isfinite(est.C) \
            and est.C > 0:
        return "logistic", {"alpha": 1.0 / (est.C * len(y)), "l1_ratio": 0.0,
                            "max_iter": est.max_iter}
    if kind is ElasticNetClassifier:
        return "logistic", {"alpha": float(est.alpha), "l1_ratio": float(est.l1_ratio),
                            "max_iter": est.max_iter}
    if kind is GroupLassoClassifier and _singletons(est.groups):
        return "logistic", {"alpha": float(est.alpha), "l1_ratio": 1.0,
                            "max_iter": est.max_iter}
    return None


def enet(X, y, gram, xy, *, alpha: float, l1_ratio: float, tol: float, max_iter: int,
         w0=None) -> np.ndarray:
    """``Lasso`` / ``ElasticNet`` weights of centered ``X`` and ``y`` (no intercept), by
    scikit-learn's coordinate descent on the precomputed ``gram`` and ``xy``.

    ``check_input=False`` and skipped parameter validation take out what ``Lasso.fit`` spends
    checking the same arrays again; the solver, its objective and its stopping rule (a relative
    duality gap of ``tol``) are scikit-learn's own.
    """
    with _quiet():
        return _enet(X, y, gram, xy, alpha, l1_ratio, tol, max_iter, w0)


@contextlib.contextmanager
def _quiet():
    """scikit-learn's parameter validation off, and its convergence warnings: an unconverged
    fit shows in its validation error, the warning is not the user's to read per trial."""
    import sklearn

    with sklearn.config_context(skip_parameter_validation=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _enet(X, y, gram, xy, alpha, l1_ratio, tol, max_iter, w0) -> np.ndarray:
    from sklearn.linear_model import enet_path

    coef = np.zeros(gram.shape[0]) if w0 is None else np.array(w0, dtype=np.float64)
    _, coefs, _ = enet_path(X, y, l1_ratio=l1_ratio, alphas=[alpha], precompute=gram, Xy=xy,
                            coef_init=coef, tol=tol, max_iter=max_iter, check_input=False)
    return coefs[:, 0]


def _logistic_objective(z, y01, w, n, l1, l2) -> float:
    return (float(np.sum(np.logaddexp(0.0, z)) - y01 @ z) / n + l1 * float(np.abs(w).sum())
            + 0.5 * l2 * float(w @ w))


def _fit_logistic(X, y, support, init, *, alpha, l1_ratio, max_iter):
    Xs = X if support is None else X[:, support]
    y01 = (np.asarray(y) == np.max(y)).astype(np.float64)
    if init is not None:
        w, b = np.asarray(init[0], dtype=np.float64)[:, 0].copy(), float(init[1][0])
    else:
        mean = min(max(y01.mean(), 1e-10), 1 - 1e-10)
        w, b = np.zeros(Xs.shape[1]), float(np.log(mean / (1 - mean)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # as the estimators' own fits
        w, b, _ = logistic(Xs, y01, alpha, l1_ratio, w, b, max_iter=max_iter)
    return w.reshape(-1, 1), np.array([b])


def logistic(X, y01, alpha: float, l1_ratio: float, w, b: float, *,
             rtol: float = NEWTON_RTOL, max_iter: int = 100):
    """Two-class logistic regression with an elastic-net penalty, by proximal Newton::

        (1/n) * sum_i [log(1 + exp(z_i)) - y_i z_i]  +  alpha * (l1_ratio * |w|_1
                                                                 + (1 - l1_ratio) / 2 * |w|^2)

    with ``z = X w + b`` and ``y01`` in {0, 1}: scikit-learn's ``LogisticRegression`` with
    ``C = 1 / (alpha * n)``. Starts from ``(w, b)``; returns the weights, the intercept and
    the number of Newton steps.

    Each step replaces the loss by its second-order model at the current point, a weighted
    least-squares problem in the rows centered by the curvature weights (so the unpenalized
    intercept drops out), minimizes that model plus the penalty exactly -- the normal equations
    for ``l1_ratio`` 0, coordinate descent (:func:`enet`) otherwise -- and moves towards its
    solution as far as the Armijo rule allows. It stops when the full step is below ``rtol``
    relative to the solution or promises no decrease the objective can show (``NEWTON_FTOL``),
    and returns that step's solution itself, whose zeros are exact.
    """
    with _quiet():  # once for all the steps' subproblems
        w, b, it, converged = _newton(X, y01, alpha, l1_ratio, w, b, rtol, max_iter)
    if not converged:
        warnings.warn(f"logistic regression did not converge in {max_iter} Newton steps",
                      ConvergenceWarning, stacklevel=2)
    return w, b, it


def _newton(X, y01, alpha, l1_ratio, w, b, rtol, max_iter):
    """The iteration of :func:`logistic`; also returns whether it converged."""
    n = X.shape[0]
    l1, l2 = alpha * l1_ratio, alpha * (1.0 - l1_ratio)
    z = X @ w + b
    f = _logistic_objective(z, y01, w, n, l1, l2)
    inner_tol = FIRST_INNER_TOL
    for it in range(1, max_iter + 1):
        prob = expit(z)
        h = np.maximum(prob * (1.0 - prob), MIN_CURVATURE)
        r = prob - y01
        total = h.sum()
        x_bar = (h @ X) / total
        u = z - r / h  # the working response: the model is (1/2n) sum h_i (u_i - z'_i)^2
        u_bar = float(h @ u) / total
        root = np.sqrt(h)
        Xw = (X - x_bar) * root[:, None]
        uw = (u - u_bar) * root
        gram, xy = Xw.T @ Xw, Xw.T @ uw
        if l1 == 0.0:
            w_new = np.linalg.solve(gram + (n * l2) * np.eye(len(w)), xy)
        else:
            w_new = _enet(Xw, uw, gram, xy, alpha, l1_ratio, inner_tol, 10_000, w)
        b_new = u_bar - float(x_bar @ w_new)
        d, db = w_new - w, b_new - b
        # Directional derivative of the objective along the step (the l1 part by convexity).
        grad = (X.T @ r) / n
        decrease = float(grad @ d + r.mean() * db) + l1 * float(np.abs(w_new).sum()
                                                                - np.abs(w).sum()) \
            + l2 * float(w @ d)
        step = np.sqrt(d @ d + db * db) / max(np.sqrt(w_new @ w_new + b_new * b_new), 1e-300)
        if (step <= rtol or -decrease <= NEWTON_FTOL * f) and (l1 == 0.0 or inner_tol <= INNER_TOL):
            return w_new, b_new, it, True
        # Newton steps shrink quadratically: the next subproblem is solved to about the
        # accuracy the next step can use.
        inner_tol = min(inner_tol, max(INNER_TOL, step ** 4))
        dz = X @ d + db
        t = 1.0
        while True:
            f_new = _logistic_objective(z + t * dz, y01, w + t * d, n, l1, l2)
            if f_new <= f + _ARMIJO * t * decrease or t < 1e-10:
                break
            t /= 2.0
        if f_new > f:
            return w, b, it, True  # no descent left at machine precision: the optimum
        w, b, z, f = w + t * d, b + t * db, z + t * dz, f_new
    return w, b, max_iter, False
