"""autoreg side by side with what a user would do instead (issue 6): scikit-learn's CV estimators
and a hand-written Optuna multi-objective loop, on the same rows, measured in one run.

Datasets (seeded, generated in each child; nothing is downloaded): ``diabetes``,
``breast_cancer``, ``digits`` (autoreg's built-ins); ``wide``: 500 x 2,000 dense regression,
AR(1) columns (correlation 0.5 between neighbours, rho ** |i - j| overall), 20 informative
columns with random signs and magnitudes in [0.5, 2], Gaussian noise at SNR 4 (signal variance
over noise variance); ``sparse``: 100,000 x 20,000 CSR at 0.1% density (standard normal values,
2 M non-zeros), 50 informative columns (magnitudes in [1, 3]), noise at SNR 2.

Everyone gets the same split: test rows = ``train_test_split(arange(n), test_size=0.2,
random_state=seed, stratify=y or None)``, sorted, as ``autoreg.engine.prepare`` makes them (the
child checks ``result.test_index`` against it). autoreg gets all rows, the baselines the training
rows. Contenders, each in its own child process:

- ``autoreg``: ``autoreg.search(X, y, families=["linear"], seed=seed)``: 100 trials, every linear
  technique, MLflow on (a fresh SQLite store in the child's temp folder).
- scikit-learn CV estimators in a ``Pipeline`` after ``StandardScaler`` (``with_mean=False`` on
  sparse rows), ``n_jobs=1``, else defaults (``max_iter`` too; ConvergenceWarnings are counted):
  regression ``LassoCV``, ``ElasticNetCV`` (``l1_ratio`` .1 .5 .7 .9 .95 .99 1), ``cv=5``
  (``cv=3`` on ``sparse``), and ``RidgeCV`` (alphas ``logspace(-3, 5, 17)``, its default
  leave-one-out on dense rows, ``cv=3`` on ``sparse``, where leave-one-out would build a
  20,000 x 20,000 covariance); classification ``LogisticRegressionCV`` (``Cs=10``, ``cv=5``,
  ``scoring="neg_log_loss"``) with l1 (liblinear for binary, saga for multiclass) and l2 (lbfgs).
- ``optuna_loop``, as a practitioner writes it: ``optuna.create_study`` (minimize error,
  maximize sparsity, minimize size) with ``TPESampler(seed=seed)`` and as many trials as
  autoreg. A trial picks a penalty among elasticnet, l1, l2 and none with autoreg's strength
  ranges (l1 and elastic net strengths as fractions of the smallest all-zero penalty, l2 per
  training row) and optional magnitude pruning (amount 0.05-0.95); group_lasso and quantization
  are left out, scikit-learn having neither. Scaling in a Pipeline, 5-fold ``cross_val_score``
  (a 20% holdout where autoreg's ``auto`` validation takes one), then a fit on all training rows
  for sparsity and size (``len(pickle.dumps(pipeline))``), kept in memory; one nested MLflow run
  per trial (params, metrics) under a parent run. Its front is ``study.best_trials``.

Wall time covers the work only: each child imports numpy, pandas, scipy and scikit-learn (and
optuna where used) first; then the clock runs over ``search`` for autoreg (mlflow's import,
store and logging included), the pipeline's ``fit`` for a CV estimator, and the whole loop
(mlflow included) for the hand loop, less the time it spends measuring each finished trial for
the benchmark. Peak memory is the child's ``ru_maxrss`` at the end of that work.

Everything else is measured afterwards, on the test rows, the same way for everyone: errors in
autoreg's default metric (RMSE, log loss) through ``autoreg.objectives.Metric``; sparsity as the
fraction of exact-zero coefficients; ``size_bytes`` as the length of autoreg's compact export of
the linear model (``LinearPredictor.from_fit`` on the training rows' preprocessing, the same
standardization folded in), so sizes compare like for like (the loop's own pickle bytes are in
the JSON). "test err (best)" is the model of lowest validation error on the front (a CV
estimator: its model); the pick is ``result.pick()`` for autoreg, the same rule (within 1% of the
best validation error, then the smallest) on the loop's front, and a CV estimator's model.

Hypervolume (HV): the candidates are autoreg's front models, the points of a CV estimator's
regularization path refitted on the training rows (``enet_path`` at LassoCV's alphas, or at
ElasticNetCV's alphas for its chosen ``l1_ratio``; RidgeCV's alphas; one warm-started
LogisticRegression per C of LogisticRegressionCV), or the loop's front models. Each is the point
(test error / test error of the training mean or class prior, 1 - sparsity, size_bytes /
size_bytes of the dense export with every weight non-zero), and HV is that point set's
3-D hypervolume against the reference (1.1, 1.1, 1.1) (``bench_samplers.HV``: Optuna's exact
one). Larger is better, 1.331 at most.

Targets (on the medians over seeds): (1) autoreg's best-error test error <= 1.01 x that of the
best CV estimator (lowest test error); (2) ``wide``, ``sparse``: autoreg's pick has at most half
the non-zero weights of that CV model at a test error at most 1% worse; (3) autoreg's wall time
<= the summed wall time of the task's CV estimators (``wide``, ``sparse``), that sum + 3 s on the
small sets; against the loop at equal trials (4) HV at least equal and (5) wall time at most
half. A CV estimator still running after ``--max-seconds`` (default 150 s) is killed; the loop
stops after the trial running then (or is killed 240 s later, keeping the trials it finished).
Their times are then lower bounds, a time target that a lower bound cannot decide is reported
"undetermined", and the HV comparison uses autoreg's front over as many trials as the loop ran.
scikit-learn's coordinate descent on sparse rows with an intercept costs O(n_samples) per
coefficient update: on the 5,000 x 2,000 smoke-test set LassoCV took 41 s and ElasticNetCV
305 s here, so on ``sparse`` both are expected to run for hours and be stopped (raise
``--max-seconds`` to wait longer).

    python tests/benchmarks/bench_baselines.py            # all five, seed 0: ~30-45 min here
    python tests/benchmarks/bench_baselines.py --only diabetes,wide --seeds 0,1,2
    python tests/benchmarks/bench_baselines.py --quick    # smoke test, ~3 min here
    python tests/benchmarks/bench_baselines.py --skip-loop --trials 50 --max-seconds 600

``--quick`` shrinks ``wide`` to 200 x 500, ``sparse`` to 5,000 x 2,000, ``digits`` to a
stratified 540 rows, runs 12 trials and stops baselines after 10 s. Writes
tests/benchmarks/results/baselines.json and one plot per dataset, baselines_<dataset>.png:
test error against sparsity of every contender's candidates, marker area for size_bytes, picks
starred (``baselines_quick*`` with --quick).
"""

from __future__ import annotations

import argparse
import math
import resource
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS,
    Timers,
    emit,
    environment,
    median,
    progress,
    run_child,
    table,
    write_json,
)
from bench_samplers import HV, HV_NAME  # noqa: E402

SCRIPT = Path(__file__).resolve()
DATASETS = ("diabetes", "breast_cancer", "digits", "wide", "sparse")
TASKS = {"diabetes": "regression", "breast_cancer": "binary", "digits": "multiclass",
         "wide": "regression", "sparse": "regression"}
SIZES = {False: {"wide": (500, 2000), "sparse": (100_000, 20_000)},
         True: {"wide": (200, 500), "sparse": (5_000, 2_000)}}
WIDE = {"informative": 20, "rho": 0.5, "snr": 4.0}
SPARSE = {"density": 0.001, "informative": 50, "snr": 2.0}
CV_ESTIMATORS = {"regression": ("lasso_cv", "enet_cv", "ridge_cv"),
                 "classification": ("logreg_cv_l1", "logreg_cv_l2")}
CV_ALL = CV_ESTIMATORS["regression"] + CV_ESTIMATORS["classification"]
L1_RATIOS = (0.1, 0.5, 0.7, 0.9, 0.95, 0.99, 1.0)
RIDGE_ALPHAS = tuple(np.logspace(-3, 5, 17))
LOOP_PENALTIES = ("elasticnet", "l1", "l2", "none")
REFERENCE = 1.1
PICK_TOLERANCE = 0.01
# autoreg's ``auto`` validation: K-fold up to these sizes, a holdout beyond (engine.prepare).
AUTO_CV_MAX_ROWS, AUTO_CV_MAX_NNZ = 10_000, 5_000_000
SMALL_SLACK_S = 3.0
QUICK_TRIALS, FULL_TRIALS = 12, 100
QUICK_DIGITS_ROWS = 540
# Seconds after which a CV estimator is killed and the loop stops (after its running trial).
FULL_BUDGET_S, QUICK_BUDGET_S = 150.0, 10.0
LOOP_GRACE_S = 240.0  # how long the loop's last trial may run past the budget


# ==============================================================================================
# data, shared by both sides
# ==============================================================================================
def make_data(name: str, seed: int, quick: bool):
    """(X, y) of one dataset; y holds class labels for classification."""
    rng = np.random.default_rng(seed)
    if name == "wide":
        n, p = SIZES[quick]["wide"]
        Z = rng.standard_normal((n, p))
        X = np.empty_like(Z)
        X[:, 0] = Z[:, 0]
        c = math.sqrt(1.0 - WIDE["rho"] ** 2)
        for j in range(1, p):  # AR(1) across columns: corr(x_i, x_j) = rho ** |i - j|
            X[:, j] = WIDE["rho"] * X[:, j - 1] + c * Z[:, j]
        coef = np.zeros(p)
        idx = rng.choice(p, WIDE["informative"], replace=False)
        coef[idx] = rng.uniform(0.5, 2.0, len(idx)) * rng.choice([-1.0, 1.0], len(idx))
        signal = X @ coef
        noise_sd = math.sqrt(signal.var() / WIDE["snr"])
        return X, signal + noise_sd * rng.standard_normal(n)
    if name == "sparse":
        import scipy.sparse as sp

        n, p = SIZES[quick]["sparse"]
        X = sp.random(n, p, density=SPARSE["density"], format="csr", random_state=rng,
                      data_rvs=rng.standard_normal, dtype=np.float64)
        coef = np.zeros(p)
        idx = rng.choice(p, SPARSE["informative"], replace=False)
        coef[idx] = rng.uniform(1.0, 3.0, len(idx)) * rng.choice([-1.0, 1.0], len(idx))
        # Entries are N(0, 1) with probability `density`: Var(x @ coef) = density * |coef|^2.
        noise_sd = math.sqrt(SPARSE["density"] * float(coef @ coef) / SPARSE["snr"])
        return X, X @ coef + noise_sd * rng.standard_normal(n)
    from autoreg.datasets import BUILTIN

    X, y = BUILTIN[name]()
    if quick and name == "digits":  # a smoke test: multiclass all the same, in less time
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(np.arange(len(y)), train_size=QUICK_DIGITS_ROWS,
                                   random_state=seed, stratify=y)
        keep = np.sort(keep)
        X, y = X.iloc[keep].reset_index(drop=True), y[keep]
    return X, y


def split(y, task: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """autoreg's test split (engine.prepare): 20% of the rows, stratified for classification."""
    from sklearn.model_selection import train_test_split

    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, random_state=seed,
                              stratify=y if task != "regression" else None)
    return np.sort(tr), np.sort(te)


def rows(X, idx):
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


# ==============================================================================================
# child side
# ==============================================================================================
def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _preimport(with_optuna: bool) -> float:
    t0 = time.perf_counter()
    import pandas  # noqa: F401
    import scipy.sparse  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.model_selection  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import sklearn.preprocessing  # noqa: F401

    if with_optuna:
        import optuna  # noqa: F401

    return time.perf_counter() - t0


class Yardstick:
    """Measures every candidate model the same way, after the timed work: test error in
    autoreg's default metric, exact zeros, bytes of autoreg's compact export, and its
    normalized point for the hypervolume."""

    def __init__(self, X, y, task: str, train_idx, test_idx):
        from autoreg.objectives import Metric
        from autoreg.prep import Prep

        self.task = task
        self.classes = None if task == "regression" else np.unique(y)
        self.y = (np.asarray(y, dtype=np.float64) if task == "regression"
                  else np.searchsorted(self.classes, y))
        self.metric = Metric(task, None, self.classes)
        self.X_test, self.y_test = rows(X, test_idx), self.y[test_idx]
        self.prep = Prep().fit(rows(X, train_idx))
        self.n_out = len(self.classes) if task == "multiclass" else 1
        y_train = self.y[train_idx]
        if task == "regression":
            null = np.full(len(test_idx), y_train.mean())
        else:
            prior = np.bincount(y_train, minlength=len(self.classes)) / len(y_train)
            null = (np.full(len(test_idx), math.log(prior[1] / prior[0])) if task == "binary"
                    else np.tile(np.log(np.maximum(prior, 1e-300)), (len(test_idx), 1)))
        self.null_error = self.error(null)
        self.dense_bytes = self.size(np.ones((self.prep.n_features, self.n_out)),
                                     np.zeros(self.n_out))

    def error(self, decision) -> float:
        d = np.asarray(decision, dtype=np.float64)
        if self.n_out == 1:
            d = d.reshape(-1)
        return float(self.metric.loss(self.y_test, d))

    def size(self, coef, intercept) -> int:
        """Bytes of autoreg's compact export of the model (coef: features x outputs)."""
        from autoreg.model import LinearPredictor

        coef = np.asarray(coef, dtype=np.float64).reshape(self.prep.n_features, -1)
        model = LinearPredictor.from_fit(self.prep, coef, np.atleast_1d(intercept), self.task,
                                         self.classes)
        return len(model.to_bytes())

    def candidate(self, coef, intercept, Xs_test, **extra) -> dict:
        """A linear model on standardized features, measured."""
        coef = np.asarray(coef, dtype=np.float64).reshape(self.prep.n_features, -1)
        decision = np.asarray(Xs_test @ coef) + np.atleast_1d(intercept)
        return {"test_error": self.error(decision), "sparsity": float(np.mean(coef == 0)),
                "size_bytes": self.size(coef, intercept), **extra}

    def point(self, c: dict) -> list[float]:
        return [c["test_error"] / self.null_error, 1.0 - c["sparsity"],
                c["size_bytes"] / self.dense_bytes]

    def describe(self) -> dict:
        return {"null_test_error": self.null_error, "dense_size_bytes": self.dense_bytes,
                "n_test": int(len(self.y_test)), "n_features": int(self.prep.n_features)}


def hypervolume(points) -> float:
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    ref = np.full(3, REFERENCE)
    pts = pts[np.all(pts < ref, axis=1)]  # points on or past the reference add nothing
    return float(HV(pts, ref)) if len(pts) else 0.0


def non_dominated(values: np.ndarray) -> np.ndarray:
    """Mask of the rows no other row dominates (every column minimized)."""
    keep = np.ones(len(values), dtype=bool)
    for i, v in enumerate(values):
        keep[i] = not np.any(np.all(values <= v, axis=1) & np.any(values < v, axis=1))
    return keep


def within_pick(front: list[dict]) -> dict:
    """autoreg's default rule: within 1% of the best validation error, then the smallest."""
    best = min(c["error"] for c in front)
    ok = [c for c in front if c["error"] <= best + PICK_TOLERANCE * abs(best)]
    return min(ok, key=lambda c: (c["size_bytes"], -c["sparsity"], c["error"]))


# -- autoreg -----------------------------------------------------------------------------------
def child_autoreg(X, y, task, train_idx, test_idx, seed, trials) -> dict:
    import autoreg
    from autoreg import tracking

    timers = Timers()
    # What the MLflow record adds after the trials (its recorder process works beside them).
    timers.wrap(tracking, "log_search", "record")
    t0 = time.perf_counter()
    result = autoreg.search(X, y, families=["linear"], seed=seed, n_trials=trials)
    wall = time.perf_counter() - t0
    peak = peak_mib()
    if not np.array_equal(np.sort(result.test_index), test_idx):
        raise AssertionError("autoreg's test rows differ from the benchmark's split")
    ys = Yardstick(X, y, task, train_idx, test_idx)
    trials_out, mismatch = [], 0.0
    front_ids = set(int(t) for t in result.front["trial"])
    for _, row in result.trials.iterrows():
        number = int(row["trial"])
        model = result.model(number)
        test_error = ys.error(model.decision_function(ys.X_test))
        if number in front_ids and math.isfinite(row["test_error"]):
            mismatch = max(mismatch, abs(test_error - row["test_error"])
                           / max(abs(row["test_error"]), 1e-12))
        trials_out.append({"trial": number, "recipe": row["recipe"], "error": row["error"],
                           "sparsity": float(row["sparsity"]),
                           "size_bytes": int(row["size_bytes"]), "test_error": test_error,
                           "front": number in front_ids})
    front = [t for t in trials_out if t["front"]]
    # autoreg's front must be exactly the non-dominated objective vectors of its trials.
    vals = np.array([[t["error"], -t["sparsity"], t["size_bytes"]] for t in trials_out])
    front_vals = {tuple(v) for v, keep in zip(vals.tolist(), non_dominated(vals), strict=True)
                  if keep}
    front_ok = front_vals == {(t["error"], -t["sparsity"], t["size_bytes"]) for t in front}
    best = min(front, key=lambda t: (t["error"], t["size_bytes"]))
    pick_row = result.pick()
    pick = next(t for t in front if t["trial"] == int(pick_row["trial"]))
    return {
        "wall_s": wall, "record_s": timers.seconds["record"], "peak_mib": peak,
        "task": result.settings.get("task"),
        "validation": result.settings.get("validation"),
        "n_complete": int(len(result.trials)), "n_failed": int(len(result.failed)),
        "mlflow_run_id": result.mlflow_run_id, "tracking_error": result.tracking_error,
        "best": best, "pick": pick, "front_size": len(front),
        "candidates": front, "trials": trials_out,
        "hypervolume": hypervolume([ys.point(c) for c in front]),
        "test_error_check_max_rel_diff": mismatch, "front_matches_trials": front_ok,
        "yardstick": ys.describe(),
    }


# -- scikit-learn CV estimators ----------------------------------------------------------------
def _cv_estimator(name: str, task: str, folds: int, sparse: bool, seed: int):
    from sklearn import linear_model as lm

    if name == "lasso_cv":
        return lm.LassoCV(cv=folds, n_jobs=1, random_state=seed)
    if name == "enet_cv":
        return lm.ElasticNetCV(l1_ratio=list(L1_RATIOS), cv=folds, n_jobs=1, random_state=seed)
    if name == "ridge_cv":
        return lm.RidgeCV(alphas=RIDGE_ALPHAS, cv=folds if sparse else None)
    l1 = name == "logreg_cv_l1"
    solver = ("liblinear" if task == "binary" else "saga") if l1 else "lbfgs"
    return lm.LogisticRegressionCV(Cs=10, l1_ratios=(1.0 if l1 else 0.0,), solver=solver,
                                   cv=folds, scoring="neg_log_loss", n_jobs=1,
                                   random_state=seed, use_legacy_attributes=False)


def _coef(est) -> tuple[np.ndarray, np.ndarray]:
    """coef as features x outputs and the intercept vector of a fitted linear estimator."""
    coef = np.asarray(est.coef_, dtype=np.float64)
    coef = coef.reshape(1, -1) if coef.ndim == 1 else coef
    return coef.T.copy(), np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64))


def _cd_path(Xs, y, l1_ratio: float, alphas) -> list[tuple[np.ndarray, float]]:
    """One coordinate-descent path on the training rows, with the intercept as the CV
    estimators fit it (centering; implicit on sparse input)."""
    import scipy.sparse as sp
    from sklearn.linear_model import enet_path

    y_mean = float(np.mean(y))
    if sp.issparse(Xs):
        offset = np.asarray(Xs.mean(axis=0)).ravel()
        extra = {"X_offset": offset, "X_scale": np.ones(Xs.shape[1])}
        Xp = Xs.tocsc()
    else:
        offset = Xs.mean(axis=0)
        extra, Xp = {}, Xs - offset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, coefs, _ = enet_path(Xp, y - y_mean, l1_ratio=l1_ratio, alphas=np.asarray(alphas),
                                **extra)
    return [(coefs[:, k], y_mean - float(offset @ coefs[:, k])) for k in range(coefs.shape[1])]


def _path(name: str, est, Xs, y) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    """The estimator's regularization path refitted on the training rows: (params, coef,
    intercept) per point."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression, Ridge

    if name == "lasso_cv":
        return [({"alpha": float(a)}, c, np.array([b]))
                for a, (c, b) in zip(est.alphas_, _cd_path(Xs, y, 1.0, est.alphas_),
                                     strict=True)]
    if name == "enet_cv":
        ratios = list(L1_RATIOS)
        k = ratios.index(min(ratios, key=lambda r: abs(r - est.l1_ratio_)))
        alphas = est.alphas_[k]
        return [({"alpha": float(a), "l1_ratio": ratios[k]}, c, np.array([b]))
                for a, (c, b) in zip(alphas, _cd_path(Xs, y, ratios[k], alphas), strict=True)]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "ridge_cv" and sp.issparse(Xs):
            for a in RIDGE_ALPHAS:
                m = Ridge(alpha=a).fit(Xs, y)
                out.append(({"alpha": float(a)}, *_coef(m)))
            return out
        if name == "ridge_cv":  # dense: every alpha from one SVD of the centered rows
            offset, y_mean = Xs.mean(axis=0), float(np.mean(y))
            U, sv, Vt = np.linalg.svd(Xs - offset, full_matrices=False)
            Uty = U.T @ (y - y_mean)
            for a in RIDGE_ALPHAS:
                coef = Vt.T @ (sv / (sv ** 2 + a) * Uty)
                out.append(({"alpha": float(a)}, coef, np.array([y_mean - offset @ coef])))
            return out
        model = LogisticRegression(l1_ratio=est.l1_ratio_, solver=est.solver, tol=est.tol,
                                   max_iter=est.max_iter, random_state=est.random_state,
                                   warm_start=True)
        for C in est.Cs_:  # from strong to weak penalty, each fit starting from the last
            model.set_params(C=float(C))
            model.fit(Xs, y)
            out.append(({"C": float(C)}, *_coef(model)))
    return out


def child_cv(name, X, y, task, train_idx, test_idx, seed, folds, budget_s) -> dict:
    import pickle

    import scipy.sparse as sp
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    sparse = sp.issparse(X)
    y_fit = y if task == "regression" else np.searchsorted(np.unique(y), y)
    X_tr, y_tr = rows(X, train_idx), y_fit[train_idx]
    est = _cv_estimator(name, task, folds, sparse, seed)
    pipe = Pipeline([("scale", StandardScaler(with_mean=not sparse)), ("model", est)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        # scikit-learn's solvers cannot be interrupted from Python: past the budget, SIGALRM's
        # default action ends this process, which the parent reports as stopped.
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(max(1, math.ceil(budget_s)))
        t0 = time.perf_counter()
        pipe.fit(X_tr, y_tr)
        wall = time.perf_counter() - t0
        signal.alarm(0)
    peak = peak_mib()
    n_conv = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    ys = Yardstick(X, y, task, train_idx, test_idx)
    coef, intercept = _coef(est)
    decision = (pipe.predict(ys.X_test) if task == "regression"
                else pipe.decision_function(ys.X_test))
    chosen = {"test_error": ys.error(decision), "sparsity": float(np.mean(coef == 0)),
              "size_bytes": ys.size(coef, intercept), "pickle_bytes": len(pickle.dumps(pipe)),
              "params": {k: float(np.ravel(getattr(est, k))[0])
                         for k in ("alpha_", "l1_ratio_", "C_") if hasattr(est, k)}}
    t0 = time.perf_counter()
    Xs_tr, Xs_te = pipe["scale"].transform(X_tr), pipe["scale"].transform(ys.X_test)
    path = [ys.candidate(c, b, Xs_te, params=p) for p, c, b in _path(name, est, Xs_tr, y_tr)]
    return {
        "wall_s": wall, "peak_mib": peak, "convergence_warnings": n_conv, "folds": folds,
        "best": chosen, "pick": chosen, "candidates": path,
        "hypervolume": hypervolume([ys.point(c) for c in path]),
        "path_seconds": time.perf_counter() - t0, "yardstick": ys.describe(),
    }


# -- the hand-written Optuna loop ----------------------------------------------------------------
class _Pruned(BaseEstimator):
    """Zeroes the smallest ``amount`` of a fitted estimator's weights (magnitude pruning), as a
    scikit-learn estimator a hand loop can cross-validate and pickle."""

    def __init__(self, estimator=None, amount=0.5):
        self.estimator, self.amount = estimator, amount

    def fit(self, X, y):
        from sklearn.base import clone

        self.estimator_ = clone(self.estimator).fit(X, y)
        w = self.estimator_.coef_  # pruned in place, so the inner model predicts with it
        k = int(self.amount * w.size)
        if k:
            w[np.abs(w) <= np.partition(np.abs(w).ravel(), k - 1)[k - 1]] = 0.0
        self.coef_, self.intercept_ = w, self.estimator_.intercept_
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X):
        return self.estimator_.predict(X)

    def decision_function(self, X):
        return self.estimator_.decision_function(X)

    def predict_proba(self, X):
        return self.estimator_.predict_proba(X)


class PrunedRegressor(RegressorMixin, _Pruned):
    pass


class PrunedClassifier(ClassifierMixin, _Pruned):
    pass


def child_loop(X, y, task, train_idx, test_idx, seed, trials, budget_s) -> dict:
    """The hand-written loop. Each finished trial is also measured on the test rows (off the
    clock) and appended to ``$BENCH_PARTIAL``, so a loop killed mid-trial still reports the
    trials it finished."""
    import json
    import os
    import pickle

    import optuna
    import scipy.sparse as sp
    from sklearn import linear_model as lm
    from sklearn.model_selection import (
        KFold,
        StratifiedKFold,
        cross_val_score,
        train_test_split,
    )
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sparse = sp.issparse(X)
    classify = task != "regression"
    y_fit = np.searchsorted(np.unique(y), y) if classify else y
    X_tr, y_tr = rows(X, train_idx), y_fit[train_idx]
    n = X_tr.shape[0]
    nnz = X_tr.nnz if sparse else X_tr.size
    Pruned = PrunedClassifier if classify else PrunedRegressor
    ys = Yardstick(X, y, task, train_idx, test_idx)
    partial = os.environ.get("BENCH_PARTIAL")
    records: dict[int, dict] = {}
    off_clock = [0.0]  # seconds spent measuring for the benchmark, taken out of the wall time
    t0 = time.perf_counter()
    import mlflow

    mlflow.set_experiment("optuna-loop")
    warnings.simplefilter("ignore")
    Xs = StandardScaler(with_mean=not sparse).fit_transform(X_tr)
    if classify:
        from sklearn.svm import l1_min_c

        alpha_max = 1.0 / (l1_min_c(Xs, y_tr, loss="log") * n)
    else:
        alpha_max = float(np.max(np.abs(Xs.T @ (y_tr - y_tr.mean())))) / n
    del Xs
    if n <= AUTO_CV_MAX_ROWS and nnz <= AUTO_CV_MAX_NNZ:
        cv = (StratifiedKFold if classify else KFold)(5, shuffle=True, random_state=seed)
    else:
        tr, va = train_test_split(np.arange(n), test_size=0.2, random_state=seed,
                                  stratify=y_tr if classify else None)
        cv = [(tr, va)]
    scoring = "neg_log_loss" if classify else "neg_root_mean_squared_error"
    models = {}

    def estimator(trial, penalty):
        if penalty == "none":
            return lm.LogisticRegression(C=np.inf) if classify else lm.LinearRegression()
        if penalty == "l2":
            s = trial.suggest_float("l2.strength", 1e-5, 1e2, log=True)
            return lm.LogisticRegression(C=1.0 / (s * n)) if classify else lm.Ridge(alpha=s * n)
        s = trial.suggest_float(f"{penalty}.strength", 1e-3, 1.0, log=True)
        r = 1.0 if penalty == "l1" else trial.suggest_float("elasticnet.l1_ratio", 0.05, 0.95)
        alpha = s * alpha_max / r
        if not classify:
            return lm.Lasso(alpha=alpha) if penalty == "l1" else \
                lm.ElasticNet(alpha=alpha, l1_ratio=r)
        solver = "liblinear" if penalty == "l1" and task == "binary" else "saga"
        return lm.LogisticRegression(C=1.0 / (alpha * n), l1_ratio=r, solver=solver)

    failures: dict[str, int] = {}

    def objective(trial):
        try:
            return run_trial(trial)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
            failures[reason] = failures.get(reason, 0) + 1
            raise

    def run_trial(trial):
        est = estimator(trial, trial.suggest_categorical("penalty", list(LOOP_PENALTIES)))
        if trial.suggest_categorical("pruning", [False, True]):
            est = Pruned(est, trial.suggest_float("pruning.amount", 0.05, 0.95))
        pipe = make_pipeline(StandardScaler(with_mean=not sparse), est)
        error = -float(np.mean(cross_val_score(pipe, X_tr, y_tr, cv=cv, scoring=scoring)))
        pipe.fit(X_tr, y_tr)
        models[trial.number] = pipe
        zeros = float(np.mean(pipe[-1].coef_ == 0))
        size = len(pickle.dumps(pipe))
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.log_params(trial.params)
            mlflow.log_metrics({"error": error, "sparsity": zeros, "size_bytes": size})
        record(trial, pipe, [error, zeros, size])
        return error, zeros, size

    def record(trial, pipe, values):
        m0 = time.perf_counter()
        elapsed = m0 - t0 - off_clock[0]  # the loop's own time to the end of this trial
        coef, intercept = _coef(pipe[-1])
        cand = ys.candidate(coef, intercept, pipe[0].transform(ys.X_test), trial=trial.number,
                            error=values[0], pickle_bytes=int(values[2]),
                            params=dict(trial.params))
        rec = {"trial": trial.number, "values": values, "candidate": cand, "elapsed_s": elapsed,
               "setup_s": setup_s, "yardstick": ys.describe()}
        records[trial.number] = rec
        if partial:
            with open(partial, "a") as fh:
                fh.write(json.dumps(rec, default=float) + "\n")
        off_clock[0] += time.perf_counter() - m0

    def deadline(study, trial):
        if time.perf_counter() - t0 - off_clock[0] > budget_s:
            study.stop()

    with mlflow.start_run(run_name="optuna-loop"):
        study = optuna.create_study(directions=["minimize", "maximize", "minimize"],
                                    sampler=optuna.samplers.TPESampler(seed=seed))
        setup_s = time.perf_counter() - t0
        study.optimize(objective, n_trials=trials, catch=(Exception,), callbacks=[deadline])
        front_trials = study.best_trials
        best_trial = min(front_trials, key=lambda t: t.values[0])
        best_model = models[best_trial.number]  # fitted on all training rows in its trial
        best_decision = (best_model.decision_function(ys.X_test) if classify
                         else best_model.predict(ys.X_test))
        mlflow.log_metrics({"front_size": len(front_trials), "best_error": best_trial.values[0]})
    wall = time.perf_counter() - t0 - off_clock[0]
    peak = peak_mib()
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    out = loop_summary([records[t.number] for t in front_trials], len(study.trials))
    return {
        **out, "wall_s": wall, "setup_s": setup_s, "peak_mib": peak,
        "validation": "holdout" if isinstance(cv, list) else "5-fold",
        "n_complete": len(complete), "failures": failures,
        "stopped_early": len(study.trials) < trials,
        "best_test_error_in_loop": ys.error(best_decision), "measure_s": off_clock[0],
    }


def loop_summary(front_records: list[dict], n_trials_run: int) -> dict:
    """The loop's numbers from the records of its front trials."""
    front = [r["candidate"] for r in front_records]
    ys = front_records[0]["yardstick"]
    points = [[c["test_error"] / ys["null_test_error"], 1.0 - c["sparsity"],
               c["size_bytes"] / ys["dense_size_bytes"]] for c in front]
    return {"best": min(front, key=lambda c: (c["error"], c["size_bytes"])),
            "pick": within_pick(front), "front_size": len(front), "candidates": front,
            "n_trials_run": n_trials_run, "hypervolume": hypervolume(points), "yardstick": ys}


def loop_from_partial(path: Path) -> dict | None:
    """A killed loop's result from the trials it finished (its time: a lower bound)."""
    import json

    if not path.exists():
        return None
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not recs:
        return None
    vals = np.array([[r["values"][0], -r["values"][1], r["values"][2]] for r in recs])
    front = [r for r, keep in zip(recs, non_dominated(vals), strict=True) if keep]
    return {**loop_summary(front, len(recs)), "wall_s": recs[-1]["elapsed_s"],
            "setup_s": recs[0]["setup_s"], "peak_mib": math.nan, "n_complete": len(recs),
            "stopped_early": True, "killed": True}


def child_main(argv: list[str]) -> None:
    dataset, contender, seed, trials, quick, budget = argv
    seed, trials, quick, budget = int(seed), int(trials), quick == "1", float(budget)
    task = TASKS[dataset]
    import_s = _preimport(with_optuna=contender in ("autoreg", "optuna_loop"))
    t0 = time.perf_counter()
    X, y = make_data(dataset, seed, quick)
    generate_s = time.perf_counter() - t0
    train_idx, test_idx = split(y, task, seed)
    base = {"dataset": dataset, "contender": contender, "seed": seed, "quick": quick,
            "shape": list(X.shape), "nnz": int(X.nnz) if hasattr(X, "nnz") else None,
            "import_s": import_s, "generate_s": generate_s, "peak_mib_after_data": peak_mib()}
    progress(f"{dataset} {contender}: data {X.shape} in {generate_s:.1f} s")
    if contender == "autoreg":
        out = child_autoreg(X, y, task, train_idx, test_idx, seed, trials)
    elif contender == "optuna_loop":
        out = child_loop(X, y, task, train_idx, test_idx, seed, trials, budget)
    else:
        folds = 3 if dataset == "sparse" else 5
        out = child_cv(contender, X, y, task, train_idx, test_idx, seed, folds, budget)
    emit({**base, **out})


# ==============================================================================================
# parent side
# ==============================================================================================
def contenders(dataset: str, skip_loop: bool) -> list[str]:
    kind = "regression" if TASKS[dataset] == "regression" else "classification"
    return ["autoreg", *CV_ESTIMATORS[kind], *([] if skip_loop else ["optuna_loop"])]


def run_one(dataset, contender, seed, trials, quick, budget) -> dict:
    # A CV estimator's child ends itself when its fit passes the budget (SIGALRM); the limit
    # here is a safety net that leaves time for measuring its path. The loop stops itself
    # after the trial running at the budget, and is killed if that trial runs on for long;
    # the trials it finished are kept.
    if contender == "autoreg":
        limit = 600.0 if quick else 7200.0
    elif contender == "optuna_loop":
        limit = budget + LOOP_GRACE_S
    else:
        limit = budget + (120.0 if quick else 1800.0)
    args = [dataset, contender, str(seed), str(trials), str(int(quick)), str(budget)]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-baselines-") as tmp:
        partial = Path(tmp) / "loop_trials.jsonl"
        try:
            return run_child(SCRIPT, args, timeout=limit, env={"BENCH_PARTIAL": str(partial)})
        except RuntimeError as exc:
            elapsed = time.perf_counter() - t0
            timed_out = f"(exit -{signal.SIGALRM.value})" in str(exc) or elapsed >= 0.98 * limit
            kept = loop_from_partial(partial) if contender == "optuna_loop" else None
            if kept:
                print(f"    {contender} killed after {elapsed:.0f} s; the "
                      f"{kept['n_trials_run']} trials it finished are kept", flush=True)
                return {"dataset": dataset, "contender": contender, "seed": seed, **kept}
            if timed_out:
                print(f"    {contender} stopped at its budget of {budget:.0f} s", flush=True)
            else:
                print(f"    {contender} failed after {elapsed:.0f} s: {str(exc)[-300:]}",
                      flush=True)
            return {"dataset": dataset, "contender": contender, "seed": seed, "failed": True,
                    "timed_out": timed_out, "wall_s": budget if timed_out else math.nan,
                    "error_message": str(exc)[-2000:]}


def _ok(run: dict | None) -> bool:
    return bool(run) and not run.get("failed")


def combine(runs: dict[str, dict], dataset: str) -> dict:
    """The rows of one dataset's table (one seed, or medians over seeds)."""
    kind = "regression" if TASKS[dataset] == "regression" else "classification"
    cv_names = [c for c in CV_ESTIMATORS[kind] if c in runs]
    done = [c for c in cv_names if _ok(runs[c])]
    best_cv = min(done, key=lambda c: runs[c]["best"]["test_error"]) if done else None
    walls = [runs[c]["wall_s"] for c in cv_names]
    return {"best_cv": best_cv, "cv_wall_sum": float(np.nansum(walls)),
            "cv_wall_lower_bound": any(runs[c].get("timed_out") for c in cv_names),
            "cv_complete": len(done) == len(cv_names)}


def row_of(name: str, run: dict, wall=None, peak=None) -> list:
    if not _ok(run):
        status = "timed out" if run and run.get("timed_out") else "failed"
        return [name, f">{run['wall_s']:.0f}" if run and run.get("timed_out") else "-",
                "-", status, "", "", "", "", ""]
    wall_s = run["wall_s"] if wall is None else wall
    return [name, wall_s, run["peak_mib"] if peak is None else peak, run["best"]["test_error"],
            run["pick"]["sparsity"], run["pick"]["size_bytes"], run["pick"]["test_error"],
            run["hypervolume"], len(run["candidates"])]


HEADERS = ["contender", "wall s", "peak MiB", "test err (best)", "pick sparsity", "pick size B",
           "pick test err", "HV", "n cand"]


def dataset_table(dataset: str, runs: dict[str, dict]) -> str:
    c = combine(runs, dataset)
    lines = [row_of("autoreg", runs.get("autoreg"))]
    kind = "regression" if TASKS[dataset] == "regression" else "classification"
    for name in CV_ESTIMATORS[kind]:
        if name in runs:
            lines.append(row_of(name, runs[name]))
    if c["best_cv"]:
        best = runs[c["best_cv"]]
        bound = ">" if c["cv_wall_lower_bound"] else ""
        row = row_of(f"best CV = {c['best_cv']} (wall: sum)", best)
        row[1] = f"{bound}{c['cv_wall_sum']:.4g}"
        row[2] = max(runs[n]["peak_mib"] for n in runs if n in CV_ESTIMATORS[kind]
                     and _ok(runs[n]))
        lines.append(row)
    if "optuna_loop" in runs:
        loop = runs["optuna_loop"]
        name = "optuna_loop"
        if _ok(loop) and loop.get("stopped_early"):
            how = "killed after" if loop.get("killed") else "stopped at"
            name += f" ({how} {loop['n_trials_run']} trials)"
        lines.append(row_of(name, loop))
    return table(HEADERS, lines)


def notes(runs: dict[str, dict]) -> list[str]:
    """What a reader of the table should know besides its numbers."""
    out = []
    a = runs.get("autoreg")
    if _ok(a):
        if a["n_failed"]:
            out.append(f"autoreg: {a['n_failed']} failed trials")
        if not a["front_matches_trials"]:
            out.append("autoreg: its front is not the non-dominated set of its trials")
        if a["test_error_check_max_rel_diff"] > 1e-6:
            out.append(f"autoreg: its own test_error differs from the benchmark's by up to "
                       f"{a['test_error_check_max_rel_diff']:.2g} (relative)")
    for name, run in runs.items():
        if _ok(run) and run.get("convergence_warnings"):
            out.append(f"{name}: {run['convergence_warnings']} ConvergenceWarnings")
        if _ok(run) and run.get("failures"):
            out.append(f"{name}: failed trials {run['failures']}")
    return out


def median_run(runs: list[dict]) -> dict:
    """One run whose numbers are the medians over seeds (runs that failed are left out, and
    a contender failed on every seed stays failed)."""
    ok = [r for r in runs if _ok(r)]
    if not ok:
        timed = [r for r in runs if r.get("timed_out")]
        return {**runs[0], "wall_s": median([r["wall_s"] for r in timed]) if timed else math.nan}
    out = dict(ok[0])
    for key in ("wall_s", "record_s", "peak_mib", "hypervolume", "hv_at_loop_trials"):
        if all(key in r for r in ok):
            out[key] = median([r[key] for r in ok])
    for part in ("best", "pick"):
        out[part] = {k: median([r[part][k] for r in ok])
                     for k in ("test_error", "sparsity", "size_bytes")}
    out["n_seeds"] = len(ok)
    out["stopped_early"] = any(r.get("stopped_early") for r in ok)
    return out


def prefix_hypervolume(autoreg_run: dict, n_trials: int) -> float:
    """HV of the front autoreg had after its first ``n_trials`` trials (validation objectives
    decide the front, test rows score it), for a loop that stopped early."""
    trials = [t for t in autoreg_run["trials"] if t["trial"] < n_trials]
    if not trials:
        return 0.0
    vals = np.array([[t["error"], -t["sparsity"], t["size_bytes"]] for t in trials])
    ys = autoreg_run["yardstick"]
    front = [t for t, keep in zip(trials, non_dominated(vals), strict=True) if keep]
    return hypervolume([[t["test_error"] / ys["null_test_error"], 1.0 - t["sparsity"],
                         t["size_bytes"] / ys["dense_size_bytes"]] for t in front])


def judge(dataset: str, runs: dict[str, dict]) -> list[dict]:
    """Every target for one dataset (runs: one per contender, medians when several seeds)."""
    out = []
    a = runs.get("autoreg")
    c = combine(runs, dataset)

    def add(target, value, limit, met, note=""):
        out.append({"dataset": dataset, "target": target, "value": value, "limit": limit,
                    "met": met, "note": note})

    if not _ok(a):
        add("autoreg ran", "failed", "", False)
        return out
    best_cv = runs[c["best_cv"]] if c["best_cv"] else None
    if best_cv:
        ratio = a["best"]["test_error"] / best_cv["best"]["test_error"]
        missing = [n for n in runs if n in CV_ALL and not _ok(runs[n])]
        unfinished = f"best of the finished: {', '.join(missing)} did not finish" if missing else ""
        add("test error (best) <= 1.01 x best CV", f"{a['best']['test_error']:.5g} vs "
            f"{best_cv['best']['test_error']:.5g} ({c['best_cv']})", f"ratio {ratio:.4f} <= 1.01",
            bool(ratio <= 1.01), unfinished)
        if dataset in ("wide", "sparse"):
            nz_pick, nz_cv = 1 - a["pick"]["sparsity"], 1 - best_cv["best"]["sparsity"]
            factor = nz_cv / nz_pick if nz_pick > 0 else math.inf
            err = a["pick"]["test_error"] / best_cv["best"]["test_error"]
            add("pick >= 2x sparser than best CV at <= 1% worse test error",
                f"non-zeros {nz_pick:.4f} vs {nz_cv:.4f}; test error ratio {err:.4f}",
                f"{factor:.2f}x >= 2, ratio <= 1.01", bool(factor >= 2 and err <= 1.01),
                unfinished)
    else:
        add("test error (best) <= 1.01 x best CV", f"{a['best']['test_error']:.5g}",
            "no CV estimator finished", None)
    slack = 0.0 if dataset in ("wide", "sparse") else SMALL_SLACK_S
    bound = c["cv_wall_lower_bound"]
    limit = c["cv_wall_sum"] + slack
    add("wall <= sum of CV estimators" + (f" + {slack:.0f} s" if slack else ""),
        f"{a['wall_s']:.1f} s (MLflow record after the trials {a.get('record_s', math.nan):.1f} s)",
        f"<= {limit:.1f} s",
        _at_most(a["wall_s"], limit, bound or not c["cv_complete"]),
        "an estimator was stopped: the sum is a lower bound" if bound else
        ("" if c["cv_complete"] else "an estimator failed: the sum leaves it out"))
    loop = runs.get("optuna_loop")
    if loop is not None:
        if not _ok(loop):
            why = "was stopped with no result" if loop.get("timed_out") else "failed"
            add("HV >= hand loop (equal trials)", f"{a['hypervolume']:.4f}", f"loop {why}", None)
        else:
            hv_a, note = a.get("hv_at_loop_trials", a["hypervolume"]), ""
            if loop.get("stopped_early"):
                note = f"loop stopped at {loop['n_trials_run']} trials: autoreg's front then"
            add("HV >= hand loop (equal trials)", f"{hv_a:.4f}",
                f">= {loop['hypervolume']:.4f}", bool(hv_a >= loop["hypervolume"]), note)
        lower = bool(loop.get("timed_out") or loop.get("stopped_early"))
        note = ""
        if _ok(loop) and loop.get("stopped_early"):
            per_trial = (loop["wall_s"] - loop["setup_s"]) / max(loop["n_trials_run"], 1)
            full = loop["setup_s"] + per_trial * a["n_complete"]
            note = (f"loop stopped at {loop['n_trials_run']} trials (a lower bound); "
                    f"{a['n_complete']} would take ~{full:.0f} s")
        elif lower:
            note = "loop killed: its time is a lower bound"
        add("wall <= 0.5 x hand loop", f"{a['wall_s']:.1f} s",
            f"<= {0.5 * loop['wall_s']:.1f} s",
            _at_most(a["wall_s"], 0.5 * loop["wall_s"], lower), note)
    add("MLflow record + whole front delivered",
        f"run {str(a.get('mlflow_run_id'))[:8]}, front {a['front_size']}", "",
        bool(a.get("mlflow_run_id")) and not a.get("tracking_error"))
    return out


def _at_most(value: float, limit: float, limit_is_lower_bound: bool) -> bool | None:
    """value <= limit: met; else not met, or undetermined when the limit is only a lower
    bound of what the baseline would have taken."""
    if value <= limit:
        return True
    return None if limit_is_lower_bound else False


def verdict_text(met: bool | None) -> str:
    return {True: "met", False: "NOT MET", None: "undetermined"}[met]


def text_table(headers: list[str], rows: list[list]) -> str:
    """A left-aligned table for text cells."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in cells]
    return "\n".join(lines)


def plot(dataset: str, runs: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osv^DP"
    dense = next((r["yardstick"]["dense_size_bytes"] for r in runs.values() if _ok(r)), 1)
    for i, (name, run) in enumerate(runs.items()):
        if not _ok(run):
            continue
        colour = colours[i % len(colours)]
        cands = sorted(run["candidates"], key=lambda c: c["sparsity"])
        x = [c["sparsity"] for c in cands]
        y = [c["test_error"] for c in cands]
        s = [15 + 120 * min(c["size_bytes"] / dense, 1.5) for c in cands]
        if name not in ("autoreg", "optuna_loop"):
            ax.plot(x, y, "-", color=colour, alpha=0.4, lw=1)
        ax.scatter(x, y, s=s, color=colour, alpha=0.55, marker=markers[i % len(markers)],
                   label=f"{name} (HV {run['hypervolume']:.3f})")
        ax.scatter([run["pick"]["sparsity"]], [run["pick"]["test_error"]], marker="*", s=320,
                   color=colour, edgecolor="black", linewidth=1.2, zorder=5)
    ys = [c["test_error"] for r in runs.values() if _ok(r) for c in r["candidates"]]
    if ys and max(ys) / max(min(ys), 1e-12) > 5:
        ax.set_yscale("log")
    ax.set_xlabel("sparsity (fraction of exact-zero weights)")
    ax.set_ylabel("test error (autoreg's default metric)")
    ax.set_title(f"{dataset}: candidates (marker area ~ size_bytes); picks starred")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--only", help=f"comma list among {','.join(DATASETS)}")
    ap.add_argument("--seeds", default="0", help="comma list (medians reported)")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke test: small synthetic sizes, {QUICK_TRIALS} trials")
    ap.add_argument("--skip-loop", action="store_true", help="leave out the hand-written loop")
    ap.add_argument("--tag", help="write results/baselines_TAG.json (and its plots), so that "
                    "runs over different datasets or seeds do not overwrite each other")
    ap.add_argument("--trials", type=int, help=f"trials for autoreg and the loop "
                    f"(default {FULL_TRIALS}, {QUICK_TRIALS} with --quick)")
    ap.add_argument("--max-seconds", type=float,
                    help="stop a CV estimator or the loop past this, reported as a lower bound "
                    f"(default {FULL_BUDGET_S:.0f}, {QUICK_BUDGET_S:.0f} with --quick)")
    args = ap.parse_args()
    if args.child:
        child_main(args.child)
        return
    datasets = args.only.split(",") if args.only else list(DATASETS)
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        ap.error(f"unknown dataset {unknown[0]!r}; choose among {', '.join(DATASETS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    trials = args.trials or (QUICK_TRIALS if args.quick else FULL_TRIALS)
    budget = args.max_seconds or (QUICK_BUDGET_S if args.quick else FULL_BUDGET_S)
    name = "baselines_quick" if args.quick else "baselines"
    if args.tag:
        name += f"_{args.tag}"
    print(f"datasets {datasets}, seeds {seeds}, {trials} trials, hypervolume by {HV_NAME}",
          flush=True)
    t_start = time.perf_counter()
    runs: list[dict] = []
    for seed in seeds:
        for ds in datasets:
            by_contender = {}
            for contender in contenders(ds, args.skip_loop):
                run = run_one(ds, contender, seed, trials, args.quick, budget)
                by_contender[contender] = run
                runs.append(run)
                if contender == "optuna_loop" and _ok(run) and _ok(by_contender["autoreg"]):
                    # The loop at equal trials: autoreg's front over as many trials as it ran.
                    n_loop = run["n_trials_run"] if run["stopped_early"] else trials
                    by_contender["autoreg"]["hv_at_loop_trials"] = prefix_hypervolume(
                        by_contender["autoreg"], n_loop)
                if _ok(run):
                    print(f"  {ds:13s} {contender:13s} seed {seed}: {run['wall_s']:7.1f} s, "
                          f"test error {run['best']['test_error']:.5g}, HV "
                          f"{run['hypervolume']:.4f}  (elapsed "
                          f"{time.perf_counter() - t_start:.0f} s)", flush=True)
            print(f"\n{ds}, seed {seed}, {trials} trials")
            print(dataset_table(ds, by_contender))
            print("".join(f"  note: {n}\n" for n in notes(by_contender)), flush=True)
            if seed == seeds[0]:
                RESULTS.mkdir(parents=True, exist_ok=True)
                plot(ds, by_contender, RESULTS / f"{name}_{ds}.png")
    verdicts, medians = [], {}
    for ds in datasets:
        per = {}
        for contender in contenders(ds, args.skip_loop):
            mine = [r for r in runs if r["dataset"] == ds and r["contender"] == contender]
            per[contender] = median_run(mine)
        medians[ds] = per
        if len(seeds) > 1:
            print(f"{ds}: medians over seeds {seeds}")
            print(dataset_table(ds, per) + "\n")
        verdicts.extend(judge(ds, per))
    total = time.perf_counter() - t_start
    print("targets" + (f" (medians over seeds {seeds})" if len(seeds) > 1 else ""))
    print(text_table(["dataset", "target", "autoreg", "needed", "verdict", "note"],
                     [[v["dataset"], v["target"], v["value"], v["limit"],
                       verdict_text(v["met"]), v["note"]] for v in verdicts]))
    print(f"\ntotal {total:.0f} s")
    path = write_json(name, {
        "benchmark": "baselines", "quick": args.quick,
        "config": {"datasets": datasets, "seeds": seeds, "trials": trials,
                   "max_seconds": budget, "sizes": SIZES[args.quick],
                   "wide": WIDE, "sparse": SPARSE, "l1_ratios": L1_RATIOS,
                   "ridge_alphas": RIDGE_ALPHAS, "loop_penalties": LOOP_PENALTIES},
        "method": {"hypervolume": HV_NAME, "reference_point": [REFERENCE] * 3,
                   "space": ["test_error / null test error", "1 - sparsity",
                             "size_bytes / dense export size_bytes"],
                   "size_bytes": "autoreg compact export of each linear model"},
        "targets": verdicts, "medians": medians, "runs": runs, "total_s": total,
        "environment": environment()})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
