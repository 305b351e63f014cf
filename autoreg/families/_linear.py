"""The ``linear`` family: linear regression and logistic regression from scikit-learn."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..cache import ArrayCache
from ..export import Quantized
from ..model import LinearPredictor, pow2_scale
from ..technique import LinearContext

_INTERCEPT_COLUMN = 1e3


def _is_logistic(est) -> bool:
    return hasattr(est, "predict_proba")


def _warm_startable(est) -> bool:
    # liblinear ignores warm starts. (Parameters are attributes of a scikit-learn estimator;
    # reading them spares ``get_params`` its signature inspection on every fit.)
    return hasattr(est, "warm_start") and getattr(est, "solver", None) != "liblinear"


def _quiet_fit(est, X, y) -> None:
    with warnings.catch_warnings():
        # Convergence and deprecation chatter from solvers is not the user's to read per
        # trial; the error objective shows a poorly converged model for what it is.
        warnings.simplefilter("ignore")
        est.fit(X, y)


#: Relaxed refits by training rows, kept features and refit estimator.
_REFITS = ArrayCache()
#: Unpenalized fits by training rows.
_PLAIN = ArrayCache(64)


@dataclass
class LinearFit:
    coef: np.ndarray  # features x outputs, on preprocessed features
    intercept: np.ndarray  # outputs
    quantized: Quantized | None = None  # coef as stored, when quantization made it codes
    #: Per feature, how much larger its weight is on standardized features than on features
    #: scaled by a power of two, the space compression works in (see ``pow2_scale``).
    pscale: np.ndarray | None = None

    def with_coef(self, coef, quantized=None) -> LinearFit:
        return LinearFit(coef, self.intercept, quantized, self.pscale)


class LinearFamily:
    name = "linear"
    #: What a technique of each stage must implement to act on this family.
    needs = {"penalty": "linear_estimator", "compression": "compress"}
    #: With a holdout split, the trial's model is refitted on all non-test rows.
    refit_after_holdout = True

    def context(self, X, y, task: str, n_classes: int, seed: int, groups=None,
                options=None) -> LinearContext:
        """Facts about the (preprocessed) training data that penalties scale by."""
        n = X.shape[0]
        if task == "regression":
            r = y - y.mean()
            alpha_max = float(np.max(np.abs(X.T @ r))) / n
        else:
            from sklearn.svm import l1_min_c

            alpha_max = 1.0 / (l1_min_c(X, y, loss="log") * n)
        return LinearContext(task=task, n_samples=n, n_features=X.shape[1], n_classes=n_classes,
                             alpha_max=max(alpha_max, 1e-12), sparse=sp.issparse(X), seed=seed,
                             groups=groups, X=X, y=y)

    @staticmethod
    def fold_context(ctx: LinearContext, X, y, groups) -> LinearContext:
        """``ctx`` for one fold's training rows; penalties keep the whole data's scale."""
        return dataclasses.replace(ctx, n_samples=X.shape[0], n_features=X.shape[1],
                                   groups=groups, X=X, y=y)

    @staticmethod
    def _n_out(ctx: LinearContext) -> int:
        return ctx.n_classes if ctx.task == "multiclass" else 1

    def train(self, recipe, ctx: LinearContext, X, y, X_val=None, y_val=None, init=None,
              fold_fits=()) -> LinearFit:
        if recipe.penalty is None:
            # The unpenalized model has nothing to vary: one fit per set of rows serves every
            # trial that compresses it.
            fitted = _PLAIN.get(X)
            if fitted is None:
                fitted = self.fit(self.estimator(None, ctx), X, y, self._n_out(ctx))
                _PLAIN.put(X, (), fitted)
        else:
            fitted = self.fit(self.estimator(recipe.penalty, ctx), X, y, self._n_out(ctx), init)
        if ctx.feature_scale is not None:
            fitted = dataclasses.replace(fitted, pscale=pow2_scale(ctx.feature_scale))
        return fitted

    @staticmethod
    def _factor(fitted: LinearFit) -> np.ndarray:
        n = fitted.coef.shape[0]
        return (np.ones(n) if fitted.pscale is None else fitted.pscale)[:, None]

    def get_weights(self, fitted: LinearFit) -> list[np.ndarray]:
        """The coefficients on power-of-two scaled features (within a factor of 1.42 of the
        standardized ones), which an exported model reproduces exactly when quantized."""
        return [fitted.coef / self._factor(fitted)]

    def set_weights(self, fitted: LinearFit, weights) -> LinearFit:
        (w,) = weights
        if isinstance(w, Quantized):
            return fitted.with_coef(w.dequantize().astype(np.float64) * self._factor(fitted), w)
        return fitted.with_coef(np.asarray(w, dtype=np.float64) * self._factor(fitted))

    def fine_tune(self, fitted: LinearFit, weights, epochs, recipe, ctx: LinearContext, X, y,
                  X_val=None, y_val=None) -> LinearFit:
        """Refit the recipe's penalty on the features that still carry weight; every weight
        that was zero stays zero. (``epochs`` is for networks.)"""
        w = np.asarray(weights[0], dtype=np.float64) * self._factor(fitted)
        support = np.flatnonzero(np.any(w != 0, axis=1))
        if not len(support):
            return fitted.with_coef(w)
        Xs = X[:, support]
        groups = None if ctx.groups is None else np.asarray(ctx.groups)[support]
        sub_ctx = dataclasses.replace(ctx, n_features=len(support), groups=groups, X=Xs)
        est = self.estimator(recipe.penalty, sub_ctx)
        sub = self.fit(est, X, y, w.shape[1], init=LinearFit(w[support], fitted.intercept),
                       support=support)
        coef = np.zeros_like(w)
        coef[support] = sub.coef
        coef[w == 0] = 0.0
        return LinearFit(coef, sub.intercept, None, fitted.pscale)

    def estimator(self, penalty, ctx: LinearContext):
        """The penalty's estimator, or the unpenalized baseline when ``penalty`` is None."""
        if penalty is not None:
            return penalty.linear_estimator(ctx)
        if ctx.task == "regression":
            from sklearn.linear_model import LinearRegression

            return LinearRegression()
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=np.inf, max_iter=1000)

    def fit(self, est, X, y, n_out: int, init: LinearFit | None = None,
            support: np.ndarray | None = None) -> LinearFit:
        """Fit ``est`` on the ``support`` columns of ``X`` (all if None); keep ``coef``
        (features x outputs) and ``intercept`` (outputs).

        ``init``, a solution of the same recipe at nearby strengths, starts the solver where
        the estimator supports ``warm_start`` (coordinate descent, saga, lbfgs): the fit then
        converges to the same optimum in a fraction of the passes.

        On small dense rows :func:`autoreg.fastfit.fit` solves the estimator's objective from
        work cached per array (which is why the columns are passed as ``support`` of the
        array they come from, not as a new array); otherwise the estimator fits itself.
        """
        from sklearn.linear_model import ElasticNet

        from .. import fastfit
        from ..solvers import RelaxedLinear

        if isinstance(est, RelaxedLinear):
            return self._fit_relaxed(est, X, y, n_out, init, support)
        fast = fastfit.fit(est, X, y, n_out, None if init is None
                           else (init.coef, init.intercept), support)
        if fast is not None:
            return LinearFit(*fast)
        if support is not None:
            X = X[:, support]
        if sp.issparse(X) and isinstance(est, ElasticNet) and est.fit_intercept:
            return self._fit_sparse_cd(est, X, y, init)
        if init is not None and _warm_startable(est):
            est.set_params(warm_start=True)
            coef = init.coef.T
            est.coef_ = coef[0].copy() if coef.shape[0] == 1 and not _is_logistic(est) \
                else coef.copy()
            est.intercept_ = init.intercept.copy()
        _quiet_fit(est, X, y)
        coef = np.asarray(est.coef_, dtype=np.float64)
        coef = coef.reshape(1, -1) if coef.ndim == 1 else coef
        intercept = np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64))
        if len(intercept) == 1 and coef.shape[0] > 1:
            intercept = np.repeat(intercept, coef.shape[0])
        if coef.shape[0] != n_out:
            raise ValueError(f"estimator gave {coef.shape[0]} outputs, expected {n_out}")
        return LinearFit(coef.T, intercept)

    def _fit_relaxed(self, est, X, y, n_out: int, init: LinearFit | None,
                     support: np.ndarray | None = None) -> LinearFit:
        """The relaxed lasso (:class:`autoreg.solvers.RelaxedLinear`): the penalized fit picks
        the features, a light ridge refits them, and the weights blend the two.

        The refit depends only on the rows and the kept features, which nearby strengths and
        later trials share: it is fitted once per (rows, features) and reused, starting from
        the penalized weights the first time.
        """
        from ..solvers import RelaxedLinear, kept_features

        # ``est`` is made for this one fit (``linear_estimator``), so its parts are fitted as
        # they are, without a ``clone``.
        first = self.fit(est.estimator, X, y, n_out, init, support)
        kept = kept_features(first.coef)
        if not len(kept):
            return first
        columns = kept if support is None else np.asarray(support)[kept]
        # An estimator's attributes before fitting are its parameters.
        key = (columns.tobytes(), type(est.refit).__name__, repr(vars(est.refit)))
        second = _REFITS.get(X, key)
        if second is None:
            second = self.fit(est.refit, X, y, n_out,
                              LinearFit(first.coef[kept], first.intercept), columns)
            _REFITS.put(X, key, second)
        coef, intercept = RelaxedLinear.blend(first.coef, first.intercept, second.coef,
                                              second.intercept, kept, est.relax)
        return LinearFit(coef, intercept)

    @staticmethod
    def _fit_sparse_cd(est, X, y, init: LinearFit | None) -> LinearFit:
        """Lasso / elastic net on sparse rows without implicit centering.

        scikit-learn's sparse coordinate descent fits the intercept by centering columns on the
        fly, which costs O(n_samples) per column on every fit: on a 40,000 x 100,000 matrix that
        is seconds before the first pass. Here the intercept is one more column holding a large
        constant, so its penalty (alpha / scale on the intercept) vanishes, and a pass costs
        O(non-zeros) as it should.
        """
        scale = _INTERCEPT_COLUMN
        y_mean = float(np.mean(y))
        Xa = sp.hstack([X, np.full((X.shape[0], 1), scale)], format="csc")
        est.set_params(fit_intercept=False)
        if init is not None:
            est.set_params(warm_start=True)
            est.coef_ = np.append(init.coef[:, 0], (init.intercept[0] - y_mean) / scale)
        _quiet_fit(est, Xa, y - y_mean)
        w = np.asarray(est.coef_, dtype=np.float64).ravel()
        return LinearFit(w[:-1].reshape(-1, 1), np.array([y_mean + w[-1] * scale]))

    @staticmethod
    def decision(fitted: LinearFit, X) -> np.ndarray:
        """Raw outputs on preprocessed rows: one column per output."""
        return np.asarray(X @ fitted.coef) + fitted.intercept

    @staticmethod
    def weights(fitted: LinearFit) -> list[np.ndarray]:
        """The weights whose zeros count toward sparsity (the intercept is not one)."""
        return [fitted.coef]

    @staticmethod
    def predictor(fitted: LinearFit, prep, task: str, classes) -> LinearPredictor:
        """The shippable model: preprocessing folded in, only kept features."""
        coef = fitted.coef if fitted.quantized is None else fitted.quantized
        return LinearPredictor.from_fit(prep, coef, fitted.intercept, task, classes)
