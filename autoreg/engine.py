"""The search: prepare data once, then let Optuna try recipes and measure each one."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import re
import signal
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from . import data as data_mod
from . import timelimit
from ._version import __version__
from .errors import DataError, StudyError, Terminated, UsageError, first_line
from .families import FAMILIES
from .objectives import Metric, check_objectives, directions, sparsity
from .prep import Prep
from .registry import load_techniques
from .result import SearchResult
from .space import SearchSpace
from .storage import MEMORY, ModelStore, open_storage, storage_fault, storage_faults
from .technique import CompressContext

SAMPLERS = ("tpe", "random")
_WORKER = f"{__import__('socket').gethostname()}:{os.getpid()}"  # which process ran a trial
AUTO_CV_MAX_ROWS = 10_000
AUTO_CV_MAX_NNZ = 5_000_000
DEFAULT_FOLDS = 5
SETTINGS_ATTR = "autoreg.settings"
SCHEMA_ATTR = "autoreg.schema"  # column names and types, for the MLflow dataset input


@dataclass
class Fold:
    X_train: object
    y_train: np.ndarray
    X_val: object
    y_val: np.ndarray
    groups: np.ndarray | None = None  # group id per preprocessed feature of this fold


@dataclass
class Workspace:
    """Everything prepared once per search: splits, fitted preprocessing, family contexts."""

    dataset: data_mod.Dataset
    y: np.ndarray  # target as fitted: floats, or class indices
    train_idx: np.ndarray
    test_idx: np.ndarray
    folds: list[Fold]
    validation: str
    prep: Prep
    X_full: object
    contexts: dict = field(default_factory=dict)
    groups: np.ndarray | None = None
    fold_preps: list = field(default_factory=list)  # each fold's preprocessing

    @property
    def y_full(self) -> np.ndarray:
        return self.y[self.train_idx]

    def test_rows(self):
        return self.dataset.rows(self.test_idx), self.y[self.test_idx]


def _encode_target(ds: data_mod.Dataset) -> np.ndarray:
    if ds.task == "regression":
        return ds.y.astype(np.float64)
    y = ds.y.astype(str) if ds.y.dtype == object else ds.y
    return np.searchsorted(ds.classes, y).astype(np.int64)


def _check_validation(validation) -> str | int:
    if isinstance(validation, str) and validation.isdigit():
        validation = int(validation)
    if isinstance(validation, bool) or not (validation in ("auto", "holdout")
                                            or isinstance(validation, int)):
        raise UsageError(f"validation must be 'auto', 'holdout' or a number of folds, "
                         f"got {validation!r}")
    if isinstance(validation, int) and validation < 2:
        raise UsageError(f"cross-validation needs at least 2 folds, got {validation}")
    return validation


def prepare(ds: data_mod.Dataset, validation="auto", test_size: float = 0.2,
            seed: int = 0, families=("linear",), groups=None, options=None) -> Workspace:
    """Split off the test rows, choose the validation scheme and fit preprocessing per fold.

    ``auto`` validation is K-fold on small data and a holdout split on large data; with the
    ``mlp`` family it is always a holdout split, which its early stopping watches.
    """
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    from .prep import column_groups

    validation = _check_validation(validation)
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) \
            or not 0 <= test_size < 1:
        raise UsageError(f"test_size must be 0 (no test split) or between 0 and 1, "
                         f"got {test_size!r}")
    y = _encode_target(ds)
    classify = ds.task != "regression"
    n = ds.n_rows
    n_test = math.ceil(n * test_size)
    if test_size and (n - n_test < 4 or n_test < 1):
        raise DataError(f"{n} rows are too few: autoreg needs at least 5 rows to hold out a "
                        "test split and validate")
    if n < 4:
        raise DataError(f"{n} rows are too few: autoreg needs at least 4 rows to validate")
    if classify and test_size:
        counts = np.bincount(y, minlength=len(ds.classes))
        if counts.min() < 2:
            rare = ds.classes[int(np.argmin(counts))]
            raise DataError(f"class {rare!r} has {counts.min()} row; every class needs at least "
                            "2 rows to be split into training and test")
    idx = np.arange(n)
    if test_size:
        train_idx, test_idx = train_test_split(idx, test_size=test_size, random_state=seed,
                                               stratify=y if classify else None)
        train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    else:  # no test split: every row trains and validates, no test_error is measured
        train_idx, test_idx = idx, idx[:0]
    n_train = len(train_idx)
    nnz = ds.X.nnz if ds.is_sparse else n * ds.n_columns
    col_groups = column_groups(groups, ds.n_columns,
                               list(ds.X.columns) if hasattr(ds.X, "columns") else None)
    y_train = y[train_idx]
    # A class with a single training row is trained on in every fold and never validated on
    # (it cannot be in both); the other rows are split as usual.
    alone = np.zeros(n_train, dtype=bool)
    least = n_train
    if classify:
        counts = np.bincount(y_train, minlength=len(ds.classes))
        single = counts == 1
        if single.any():
            if not (counts > 1).any():
                raise DataError("every class has a single row; classification needs at least "
                                "2 rows of some class to validate on")
            alone = single[y_train]
            names = ", ".join(repr(c.item() if isinstance(c, np.generic) else c)
                              for c in ds.classes[single][:3])
            warnings.warn(f"autoreg: class {names} has a single training row: it is trained "
                          "on in every fold but never validated on", RuntimeWarning,
                          stacklevel=4)
        least = int(counts[~single].min())
    rest = np.flatnonzero(~alone)
    y_rest = y_train[rest]
    if validation == "auto":
        small = n_train <= AUTO_CV_MAX_ROWS and nnz <= AUTO_CV_MAX_NNZ
        if small and "mlp" not in families:
            # As many folds as the data allow, up to the default: every fold trains on at
            # least one row per class and validates on at least two rows.
            validation = max(2, min(DEFAULT_FOLDS, len(rest) // 2, least))
        else:
            validation = "holdout"
    if validation == "holdout":
        tr, va = train_test_split(np.arange(len(rest)), test_size=0.2, random_state=seed,
                                  stratify=y_rest if classify else None)
        splits = [(tr, va)]
        scheme = "holdout"
    else:
        k = int(validation)
        if len(rest) < 2 * k:
            raise DataError(f"{len(rest)} training rows are too few for {k}-fold "
                            "cross-validation; use fewer folds or more data")
        if classify:
            if least < k:
                counts = np.bincount(y_rest, minlength=len(ds.classes))
                rare = ds.classes[int(np.argmin(np.where(counts > 0, counts, n_train)))]
                raise DataError(f"class {rare!r} has {least} training rows, fewer than the {k} "
                                f"folds; use --validation {max(least, 2)} or holdout")
            cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        else:
            cv = KFold(n_splits=k, shuffle=True, random_state=seed)
        splits = list(cv.split(np.zeros(len(rest)), y_rest if classify else None))
        scheme = f"{k}-fold"
    lone = np.flatnonzero(alone)
    splits = [(np.sort(np.concatenate([rest[tr], lone])), np.sort(rest[va]))
              for tr, va in splits]
    X_train_raw = ds.rows(train_idx)
    folds, fold_preps = [], []
    for tr, va in splits:
        rows_tr, rows_va = _take(X_train_raw, tr), _take(X_train_raw, va)
        prep = Prep().fit(rows_tr)
        fold_preps.append(prep)
        folds.append(Fold(prep.transform(rows_tr), y_train[tr], prep.transform(rows_va),
                          y_train[va], prep.feature_groups(col_groups)))
    prep = Prep().fit(X_train_raw)
    X_full = prep.transform(X_train_raw)
    ws = Workspace(ds, y, train_idx, test_idx, folds, scheme, prep, X_full,
                   groups=prep.feature_groups(col_groups), fold_preps=fold_preps)
    n_classes = 0 if ds.classes is None else len(ds.classes)
    for fam in families:
        ctx = FAMILIES[fam].context(X_full, y_train, ds.task, n_classes, seed, ws.groups,
                                    dict(options or {}))
        ws.contexts[fam] = dataclasses.replace(ctx, feature_scale=prep.feature_scale())
    return ws


def _take(X, idx):
    import pandas as pd

    return X.iloc[idx] if isinstance(X, pd.DataFrame) else X[idx]


def _sampler(name, seed: int):
    """An Optuna sampler by name, or the user's own sampler instance as given."""
    import optuna

    if isinstance(name, optuna.samplers.BaseSampler):
        return name
    if name == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UsageError(f"unknown sampler {name!r}; use one of {', '.join(SAMPLERS)} or pass an "
                     "Optuna sampler")


def _study_key(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:48]
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


class WarmStarts:
    """Solutions of earlier trials, so a new fit can start from the nearest one.

    Keyed by (fold, recipe); nearness is the distance between parameter vectors, with positive
    values compared on a log scale (strengths span decades). Only the latest ``keep`` solutions
    per key are held, which bounds memory on wide data.
    """

    def __init__(self, keep: int = 32):
        self.keep = keep
        # Vector and fit as one pair: a trial stopped by its time limit mid-``add`` leaves no
        # half-entry behind.
        self._seen: dict[tuple, list[tuple[list, object]]] = {}

    @staticmethod
    def _vector(params: dict) -> list[float]:
        return [math.log(v) if v > 0 else float(v) for _, v in sorted(params.items())
                if isinstance(v, (int, float)) and not isinstance(v, bool)]

    def nearest(self, key: tuple, params: dict):
        seen = self._seen.get(key)
        if not seen:
            return None
        vec = self._vector(params)
        best, best_d = None, math.inf
        for v, fit in seen:
            if len(v) == len(vec):
                d = sum((a - b) ** 2 for a, b in zip(v, vec, strict=True))
                if d < best_d:
                    best, best_d = fit, d
        return best

    def add(self, key: tuple, params: dict, fitted) -> None:
        seen = self._seen.setdefault(key, [])
        seen.append((self._vector(params), fitted))
        del seen[: -self.keep]


class Objective:
    """Fits and measures one recipe per trial."""

    def __init__(self, ws: Workspace, space: SearchSpace, metric: Metric, objectives,
                 models: ModelStore, study_key: str, constraints: dict, seed: int = 0,
                 trial_timeout: float | None = None):
        self.ws, self.space, self.metric = ws, space, metric
        self.trial_timeout = trial_timeout
        self.objectives, self.models, self.study_key = objectives, models, study_key
        self.constraints = constraints
        ds = ws.dataset
        self.n_out = 1 if ds.task in ("regression", "binary") else len(ds.classes)
        self.warm = WarmStarts()
        self.seed = seed

    def __call__(self, trial):
        try:
            return self._run(trial)
        except Exception as exc:
            trial.set_user_attr("fail_reason", _fail_reason(exc, self.space.registered))
            raise

    def _fit(self, family, recipe, ctx, key, X, y, X_val=None, y_val=None, fold_fits=()):
        """Train the recipe on (X, y), then run its compression techniques in order."""
        penalty_params = {k: v for k, v in recipe.params.items()
                          if recipe.penalty is not None and k.startswith(recipe.penalty.name + ".")}
        warm_key = (key, recipe.family, recipe.penalty.name if recipe.penalty else "none",
                    tuple(t.name for t in recipe.training))
        trainers = ([recipe.penalty] if recipe.penalty is not None else []) + recipe.training
        with _blaming(trainers):
            fitted = family.train(recipe, ctx, X, y, X_val, y_val,
                                  init=self.warm.nearest(warm_key, penalty_params),
                                  fold_fits=fold_fits)
            if not all(np.all(np.isfinite(w)) for w in family.weights(fitted)):
                raise FloatingPointError("the fit gave non-finite weights (NaN or inf): it "
                                         "diverged")
        self.warm.add(warm_key, penalty_params, fitted)
        trained = fitted
        for tech in recipe.compression:
            state = {"fit": fitted}

            def fine_tune(weights, epochs=None, _state=state):
                _state["fit"] = family.fine_tune(_state["fit"], weights, epochs, recipe, ctx, X,
                                                 y, X_val, y_val)
                return family.get_weights(_state["fit"])

            cctx = CompressContext(family=recipe.family, task=self.ws.dataset.task,
                                   seed=self.seed, fine_tune=fine_tune)
            before = family.get_weights(fitted)
            with _blaming([tech]):
                after = tech.compress(family.get_weights(fitted), cctx)
                _check_compressed(tech.name, before, after)
            fitted = family.set_weights(state["fit"], after)
        return fitted, trained

    def _run(self, trial):
        recipe = self.space.sample(trial)
        with _blaming(recipe):
            values, attrs, constraints = self.evaluate(
                recipe, ModelStore.artifact_id(self.study_key, trial.number))
        trial.set_user_attr("autoreg", attrs)
        for key, value in constraints.items():
            trial.set_constraint(key, value)
        return values

    def evaluate(self, recipe, artifact: str) -> tuple[list, dict, dict]:
        """Fit and measure ``recipe``; store its model as ``artifact``. Returns the objective
        values, the ``autoreg`` trial attributes and the constraint values.

        The per-trial time limit covers all the fitting and measuring: every fold, the refit on
        all rows, compression and the export; not the storage writes around them.
        """
        ws = self.ws
        family = FAMILIES[recipe.family]
        ctx = ws.contexts[recipe.family]
        t0 = time.perf_counter()
        fold_errors, fold_fits, fitted = [], [], None
        with timelimit.time_limit(self.trial_timeout) as check:
            for i, fold in enumerate(ws.folds):
                fctx = dataclasses.replace(
                    family.fold_context(ctx, fold.X_train, fold.y_train, fold.groups),
                    feature_scale=ws.fold_preps[i].feature_scale())
                fitted, trained = self._fit(family, recipe, fctx, i, fold.X_train,
                                            fold.y_train, fold.X_val, fold.y_val)
                fold_fits.append(trained)
                # A diverged fit is reported below, not as numpy's overflow warnings.
                with np.errstate(over="ignore", invalid="ignore"):
                    decision = family.decision(fitted, fold.X_val)
                    if not np.all(np.isfinite(decision)):
                        raise FloatingPointError("the model's predictions on the validation "
                                                 "rows are not finite (NaN or inf): the fit "
                                                 "diverged")
                    fold_errors.append(self.metric.loss(
                        fold.y_val, decision[:, 0] if self.n_out == 1 else decision))
                check()
            error = float(np.mean(fold_errors))
            if not math.isfinite(error):
                raise FloatingPointError("the validation error is not finite (the fit "
                                         "diverged)")
            se = float(np.std(fold_errors, ddof=1) / math.sqrt(len(fold_errors))) \
                if len(fold_errors) > 1 else float("nan")
            if len(ws.folds) > 1 or family.refit_after_holdout:
                fitted, _ = self._fit(family, recipe, ctx, "full", ws.X_full, ws.y_full,
                                      fold_fits=fold_fits)
                prep = ws.prep
            else:
                # The model measured on the holdout rows is the model shipped.
                prep = ws.fold_preps[0]
            fit_seconds = time.perf_counter() - t0
            model = family.predictor(fitted, prep, ws.dataset.task, ws.dataset.classes)
            blob = model.to_bytes()
            check()
        self.models.put(artifact, blob)
        measured = {
            "error": error,
            "sparsity": sparsity(family.weights(fitted)),
            "size": len(blob),
        }
        attrs = {
            "recipe": recipe.name,
            "family": recipe.family,
            "penalty": recipe.penalty.name if recipe.penalty is not None else "none",
            "error_se": se,
            "fold_errors": [float(e) for e in fold_errors],
            "sparsity": measured["sparsity"],
            "size_bytes": measured["size"],
            "n_features_used": model.n_features_used,
            "fit_seconds": fit_seconds,
            "model": artifact,
            "worker": _WORKER,
        }
        constraints = {}
        for key, limit in self.constraints.items():
            objective, sign = {"max_size": ("size", 1), "min_sparsity": ("sparsity", -1),
                               "max_error": ("error", 1)}[key]
            constraints[key] = sign * (measured[objective] - limit)
        return [measured[o] for o in self.objectives], attrs, constraints

    def run_paths(self, study, n_points: int, deadline: float | None = None,
                  on_point=None) -> int:
        """Walk the regularization path of every linear penalty that has one, and add each
        point to ``study`` as a finished trial; return how many were added.

        A path goes from the strongest penalty down, so every fit starts from the solution
        at the next stronger strength on the same rows, a few passes from its own optimum;
        no sampler is consulted. The points cover each penalty's range evenly, the error end
        included, which the sampler then refines from. ``deadline`` is a ``time.monotonic``
        value to stop at.
        """
        import optuna

        from . import workers
        from .space import _Given

        added = 0
        for params, distributions in self.space.path_points(n_points):
            if deadline is not None and time.monotonic() >= deadline:
                break
            recipe = self.space.sample(_Given(params))
            artifact = f"{self.study_key}-path{added:04d}.autoreg"
            # Like a sampled trial, a walked one records the process that measured it.
            tags = {workers.PROCESS_ATTR: workers.process_tag(), workers.WALKED_ATTR: True}
            try:
                with _blaming(recipe):
                    values, attrs, constraints = self.evaluate(recipe, artifact)
                trial = optuna.trial.create_trial(
                    params=params, distributions=distributions, values=values,
                    user_attrs={"autoreg": attrs, **tags}, constraints=constraints or None)
            except Exception as exc:  # recorded as a failed trial, as the sampler's would be
                trial = optuna.trial.create_trial(
                    state=optuna.trial.TrialState.FAIL, params=params,
                    distributions=distributions,
                    user_attrs={"fail_reason": _fail_reason(exc, self.space.registered),
                                **tags})
            study.add_trial(trial)
            added += 1
            if on_point is not None:
                on_point()
        return added


def _fail_reason(exc: Exception, registered=None) -> str:
    """Why a trial failed, as its ``fail_reason`` attribute records it: what happened and in
    which technique (or recipe), e.g. ``ValueError: boom (technique 'boomer')``."""
    text = first_line(exc) if isinstance(exc, timelimit.TrialTimeout) \
        else f"{type(exc).__name__}: {first_line(exc)}"
    where = _culprit(exc, registered or {})
    if where and where not in text:
        text = f"{text[:400]} ({where})"
    return text[:500]


#: The exception attribute naming the techniques (or the recipe) that were running.
_BLAME_ATTR = "autoreg_blame"


@contextlib.contextmanager
def _blaming(what):
    """Mark an exception from the block with ``what`` (techniques, or a recipe) unless an
    inner block marked it already."""
    try:
        yield
    except BaseException as exc:  # also the time limit's interruption
        if getattr(exc, _BLAME_ATTR, None) is None:
            with contextlib.suppress(Exception):  # an exception type that takes no attributes
                setattr(exc, _BLAME_ATTR, what)
        raise


def _culprit(exc: BaseException, registered: dict) -> str | None:
    """``technique 'name'`` for the technique whose code raised ``exc``, else the one (or the
    recipe) that was running; None if unknown.

    The traceback tells first: the innermost frame inside a technique's method or its
    plugin's module (an estimator class the plugin defines, say). ``exc``'s causes count too:
    a :class:`~autoreg.timelimit.TrialTimeout` is caused by the interruption inside the trial.
    """
    import traceback

    from .technique import Technique

    chain = []
    while exc is not None and exc not in chain and len(chain) < 5:
        chain.append(exc)
        exc = exc.__cause__
    modules: dict[str, list[str]] = {}
    for name, reg in registered.items():
        modules.setdefault(reg.technique.__module__, []).append(name)
    found = None
    for link in chain:
        for frame, _ in traceback.walk_tb(link.__traceback__):
            owner = frame.f_locals.get("self")
            if isinstance(owner, Technique) and owner.name in registered:
                found = owner.name
            elif len(modules.get(frame.f_globals.get("__name__"), ())) == 1:
                found = modules[frame.f_globals["__name__"]][0]
    if found is not None:
        return f"technique {found!r}"
    blamed = next((getattr(link, _BLAME_ATTR) for link in reversed(chain)
                   if getattr(link, _BLAME_ATTR, None) is not None), None)
    if isinstance(blamed, list) and len(blamed) == 1:
        return f"technique {blamed[0].name!r}"
    if isinstance(blamed, list) and blamed:
        return "techniques " + ", ".join(repr(t.name) for t in blamed)
    techniques = getattr(blamed, "techniques", None)  # a recipe
    if techniques and len(techniques) == 1:
        return f"technique {techniques[0]!r}"
    if techniques:
        return f"recipe {blamed.name!r}"
    return None


#: Points per penalty path: at most, and the fewest worth a path (below it, the sampler alone).
PATH_MAX_POINTS = 16
PATH_MIN_POINTS = 3


def path_size(space, n_trials: int) -> int:
    """Points per penalty path: together about half the budget, the rest for the sampler."""
    walked = space.path_penalties()
    if not walked:
        return 0
    per = min(PATH_MAX_POINTS, (n_trials // 2 - 1) // walked)
    return per if per >= PATH_MIN_POINTS else 0


def _check_compressed(name: str, before: list, after) -> None:
    """A compression technique must hand back one tensor of the same shape per weight."""
    from .export import Quantized

    if not isinstance(after, (list, tuple)) or len(after) != len(before):
        raise ValueError(f"technique {name!r}: compress() returned {type(after).__name__} "
                         f"of length {len(after) if hasattr(after, '__len__') else '?'}, "
                         f"expected a list of {len(before)} weight tensors")
    for i, (b, a) in enumerate(zip(before, after, strict=True)):
        shape = a.shape if isinstance(a, Quantized) else np.shape(a)
        if tuple(shape) != tuple(b.shape):
            raise ValueError(f"technique {name!r}: compress() changed weight {i} from shape "
                             f"{tuple(b.shape)} to {tuple(shape)}")
        if not isinstance(a, Quantized) and not np.all(np.isfinite(a)):
            raise FloatingPointError(f"technique {name!r}: compress() returned non-finite "
                                     "weights")


def _settings(ds, space, objectives, metric, validation, seed, sampler, test_size,
              constraints) -> dict:
    return {
        "dataset": ds.name,
        "dataset_digest": ds.digest,
        "task": ds.task,
        "n_rows": ds.n_rows,
        "n_columns": ds.n_columns,
        "families": ",".join(space.families),
        "techniques": ",".join(space.techniques),
        "objectives": ",".join(objectives),
        "metric": metric.name,
        "validation": validation,
        "test_size": test_size,
        "seed": seed,
        "sampler": sampler,
        "constraints": ",".join(f"{k}={v:g}" for k, v in sorted(constraints.items())) or "none",
        "autoreg_version": __version__,
    }


_DEFAULTS = {"hidden": "-", "groups": "columns"}

# Settings that must agree when a study is resumed; the others are informational.
_MUST_MATCH = ("dataset_digest", "task", "families", "techniques", "objectives", "metric",
               "validation", "test_size", "seed", "constraints", "hidden", "groups")


def _open_study(storage, study_name, settings, objectives, sampler):
    """Create the study, or load it to resume (then its settings must match).

    Several processes may start one study at once (workers on many machines): one creates it,
    the others find it and wait a moment for its settings to appear.
    """
    import optuna

    dirs = directions(objectives)
    if study_name is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        study_name = f"{settings['dataset']}-{stamp}-{uuid.uuid4().hex[:4]}"
    else:
        # A study made by another worker a moment ago may not have its settings yet.
        study = _load_existing(storage, study_name, settings, sampler, wait=10.0)
        if study is not None:
            return study, True
    try:
        study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                    directions=dirs)
    except optuna.exceptions.DuplicatedStudyError:
        # Another worker created it between our look and our create.
        return _load_existing(storage, study_name, settings, sampler, wait=30.0), True
    try:
        study.set_user_attr(SETTINGS_ATTR, settings)
    except Exception:
        # A study without its settings could never be resumed ("not made by autoreg"):
        # take it back if the storage lets us.
        with contextlib.suppress(Exception):
            optuna.delete_study(study_name=study.study_name, storage=storage)
        raise
    return study, False


def _load_existing(storage, study_name, settings, sampler, wait: float = 0.0):
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    except KeyError:
        return None
    deadline = time.monotonic() + wait
    old = study.user_attrs.get(SETTINGS_ATTR)
    while old is None and time.monotonic() < deadline:
        time.sleep(0.2)  # its creator writes the settings right after creating it
        old = study.user_attrs.get(SETTINGS_ATTR)
    if old is None:
        raise StudyError(f"study {study_name!r} exists but was not made by autoreg")
    # Studies from before a setting existed ran with its default.
    clash = [k for k in _MUST_MATCH
             if str(old.get(k, _DEFAULTS.get(k))) != str(settings.get(k))]
    if clash:
        k = clash[0]
        raise StudyError(f"study {study_name!r} exists with {k}={old.get(k)!r}, not "
                         f"{settings.get(k)!r}; use the same settings to resume it or "
                         "choose another --study name")
    return study


def _check_trial_timeout(seconds) -> float | None:
    """The per-trial time limit as a positive number of seconds (or None); warns where it
    cannot interrupt a running trial."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
            or not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(f"trial_timeout must be a positive number of seconds, got {seconds!r}")
    if not timelimit.interrupts():
        where = ("this platform has no SIGALRM" if not hasattr(signal, "SIGALRM")
                 else "the search runs outside the main thread")
        warnings.warn(f"autoreg: the per-trial time limit cannot interrupt a trial here "
                      f"({where}): a trial over {seconds:g} s is failed only once it ends",
                      RuntimeWarning, stacklevel=3)
    return float(seconds)


def search(data=None, y=None, *, target=None, task="auto", techniques=None, families=None,
           objectives=("error", "sparsity", "size"), metric=None, validation="auto",
           n_trials=100, timeout=None, storage=None, study_name=None, tracking_uri=None,
           experiment=None, n_jobs=1, seed=0, sampler="tpe", test_size=0.2, max_size=None,
           min_sparsity=None, max_error=None, groups=None, hidden=None, disable_plugins=(),
           plugins=(), artifacts=None, log_mlflow=True, log_trials="front", register=None,
           progress=False, paths=True, trial_timeout=None) -> SearchResult:
    """Search regularization recipes on ``data`` and return the Pareto front.

    See the README for every argument; the names follow autoreg's design contract.

    ``trial_timeout`` (seconds) stops a trial whose fitting and measuring (every fold, the
    refit, compression) runs longer, fails it with the reason ``exceeded the per-trial time
    limit of N s`` and goes on with the next. It interrupts Python code and sleeps at once;
    native code that never returns to the interpreter (one long solver call) only when it
    returns. It needs ``SIGALRM`` and the main thread: elsewhere (Windows, a search run in
    another thread) a warning says that an over-long trial is failed only once it ends.
    """
    import optuna

    objectives = check_objectives(objectives)
    trial_timeout = _check_trial_timeout(trial_timeout)
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise UsageError(f"n_trials must be a positive whole number, got {n_trials!r}")
    if timeout is not None and (not isinstance(timeout, (int, float))
                                or isinstance(timeout, bool) or not timeout > 0):
        raise UsageError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise UsageError(f"seed must be a whole number from 0 to {2**32 - 1}, got {seed!r}")
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or not 1 <= n_jobs <= 256:
        raise UsageError(f"n_jobs must be a whole number of worker processes from 1 to 256, "
                         f"got {n_jobs!r}")
    if n_jobs > 1:
        _worker_start()  # a bad $AUTOREG_WORKER_START fails before anything is made
    if n_jobs > 1 and MEMORY in (storage, artifacts):
        raise UsageError(f"n_jobs > 1 needs storage the worker processes share; a study or "
                         f"models in {MEMORY} live in this process alone: give a storage "
                         "path or URL")
    if n_jobs > 1 and not isinstance(sampler, str):
        raise UsageError("n_jobs > 1 needs a sampler by name (tpe or random): each worker "
                         "process builds its own, seeded apart")
    if log_trials not in ("front", "all"):
        raise UsageError(f"log_trials must be 'front' or 'all', got {log_trials!r}")
    if register is not None and (not isinstance(register, str) or not register.strip()):
        raise UsageError(f"register needs a model name, got {register!r}")
    if register is not None and not log_mlflow:
        raise UsageError("register needs MLflow logging; drop --no-mlflow / log_mlflow=False")
    if log_mlflow:
        from .tracking import check_uri

        check_uri(tracking_uri)  # a malformed one fails now, not after every trial has run
    sampler_obj = _sampler(sampler, seed)
    build = dict(target=target, task=task, techniques=techniques, families=families,
                 objectives=objectives, metric=metric, validation=validation, seed=seed,
                 sampler=sampler if isinstance(sampler, str) else type(sampler).__name__,
                 test_size=test_size, max_size=max_size, min_sparsity=min_sparsity,
                 max_error=max_error, groups=groups, hidden=hidden,
                 disable_plugins=disable_plugins, plugins=plugins)
    ds, space, metric, ws, settings, constraints = _build(data, y, **build)
    recorder = None
    try:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        # A folder that cannot be made fails before any study.
        models = ModelStore.open(artifacts, storage)
        store = open_storage(storage)
        from . import workers

        if workers.server_dialect(store) is None and storage != MEMORY:
            with workers.file_lock(workers.lock_path(storage)):
                pass  # a claim lock that cannot be taken fails here, before a study is made
        study, resumed = _open_study(store, study_name, settings, objectives, sampler_obj)
        key = _study_key(study.study_name)
        if models.root is not None:
            study.set_user_attr("autoreg.artifacts", str(models.root.resolve()))
        objective = Objective(ws, space, metric, objectives, models, key, constraints, seed,
                              trial_timeout)
        claim = workers.claim_lock(store, storage, study.study_name)
        joined = _join(study, claim)
        if log_mlflow and n_jobs < (os.cpu_count() or 1) \
                and not (joined and workers.others_at_work(study)):
            from .tracking import Recorder

            # Another process gets MLflow ready while the trials run, on a core they leave
            # free, then writes the record. (A process joining others at work on a study
            # rarely writes it: the last to finish does, then in-process.)
            recorder = Recorder(tracking_uri, experiment)
        if joined and isinstance(sampler, str):
            # Processes joining one study sample apart; the first (a lone search) keeps --seed.
            study.sampler = _sampler(sampler, seed + joined)
        done = workers.finished(study)
        remaining = max(0, n_trials - done)
        bar = _progress(progress, remaining, done, n_trials)
        callbacks = [bar.callback] if bar else []
        interrupted = None
        tagged = _Tagged(objective)
        try:
            with workers.limit_threads():  # one BLAS thread per process (see there)
                if paths and not joined and not done:
                    # The first process of a new study walks the penalties' paths (under the claim
                    # lock, so that workers elsewhere wait and the budget stays exact).
                    started = time.monotonic()
                    with claim():
                        objective.run_paths(
                            study, path_size(space, n_trials),
                            None if timeout is None else started + timeout,
                            on_point=lambda: bar.set(workers.finished(study)) if bar else None)
                    if timeout is not None:
                        timeout = max(timeout - (time.monotonic() - started), 1e-3)
                    remaining = max(0, n_trials - workers.finished(study))
                if remaining and n_jobs > 1:
                    _run_parallel(study, objective, n_jobs, n_trials, timeout, store, storage, bar,
                                  data, y, dict(build, n_trials=n_trials, timeout=timeout,
                                                storage=storage, study_name=study.study_name,
                                                artifacts=str(models.root),
                                                trial_timeout=trial_timeout))
                elif remaining and workers.server_dialect(store):
                    # Other machines may be running this study too: claim trials one at a time under
                    # the database's lock, so that together they stop at the budget.
                    workers.run_trials(study, objective, n_trials, timeout=timeout, lock=claim,
                                       on_trial=lambda s, t: bar.set(workers.finished(s)) if bar
                                       else None)
                elif remaining:
                    with claim():
                        workers.reap(study)  # trials of an earlier run that died: fail and requeue
                    remaining = max(0, n_trials - workers.finished(study))
                    study.optimize(tagged, n_trials=remaining, timeout=timeout, catch=(Exception,),
                                   callbacks=callbacks, gc_after_trial=False)
        except KeyboardInterrupt as exc:
            interrupted = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
            if tagged.abandoned is not None:
                workers.retry(study, study._storage.get_trial(tagged.abandoned))
        finally:
            if bar:
                bar.close()
        with claim():
            workers.reap(study)  # local workers stopped with this one
        result = SearchResult(study, store=store, models=models, storage_url=storage)
        if not result.trials.shape[0]:
            raise StudyError(_all_failed_message(result, space.registered))
        result.measure_test_error(ws, metric)
        result.test_index = ws.test_idx
        result.interrupted = interrupted is not None
        result.signal = interrupted
        result.running_elsewhere = workers.running_elsewhere(study)
        if log_mlflow and result.running_elsewhere:
            # The study goes on in other workers; the last of them to finish logs the front.
            result.mlflow_run_id = None
        elif log_mlflow:
            from .tracking import TrackingError, dataset_schema, log_search

            schema = dataset_schema(ds)
            if study.user_attrs.get(SCHEMA_ATTR) != schema:
                study.set_user_attr(SCHEMA_ATTR, schema)
            try:
                result.mlflow_run_id = log_search(result, settings, tracking_uri=tracking_uri,
                                                  experiment=experiment, storage_url=storage,
                                                  log_trials=log_trials, register=register,
                                                  schema=schema, once=True, recorder=recorder)
            except TrackingError as exc:
                # The trials are in the study already; the record can be written later.
                result.tracking_error = str(exc)
                warnings.warn(f"autoreg: not logged to MLflow: {exc}; the trials are safe in the "
                              f"study: log them later with autoreg front {study.study_name} --log",
                              RuntimeWarning, stacklevel=2)
        result.resumed = resumed
        return result
    except Exception as exc:
        fault = storage_fault(exc, storage)
        if fault is None:
            raise
        raise fault from None
    finally:
        if recorder is not None:
            # Ended already when it wrote the record; else (an error, Ctrl-C) given a moment
            # to mark a record it was writing as failed.
            recorder.close(wait=2.0)


class _Tagged:
    """The objective as ``study.optimize`` calls it: each trial tagged with this process
    first, and a trial abandoned by Ctrl-C remembered so that it can be queued again."""

    def __init__(self, objective):
        self.objective = objective
        self.abandoned = None

    def __call__(self, trial):
        from . import workers

        workers.tag_trial(trial)
        try:
            return self.objective(trial)
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", workers.INTERRUPTED)
            self.abandoned = trial._trial_id
            raise


JOINED_ATTR = "autoreg.joined"


def _join(study, claim) -> int:
    """How many processes joined ``study`` before this one (under the claim lock)."""
    with claim():
        joined = int(study.user_attrs.get(JOINED_ATTR, 0))
        study.set_user_attr(JOINED_ATTR, joined + 1)
    return joined


def _build(data, y, *, target, task, techniques, families, objectives, metric, validation,
           seed, sampler, test_size, max_size, min_sparsity, max_error, groups, hidden,
           disable_plugins, plugins):
    """Everything a search (or a worker of one) prepares before it opens the study."""
    constraints = {k: float(v) for k, v in (("max_size", max_size),
                                            ("min_sparsity", min_sparsity),
                                            ("max_error", max_error)) if v is not None}
    if "min_sparsity" in constraints and not 0 <= constraints["min_sparsity"] <= 1:
        raise UsageError("min_sparsity is a fraction between 0 and 1")
    if constraints.get("max_size", 1) <= 0:
        raise UsageError(f"max_size must be a positive number of bytes, got {max_size!r}")
    if constraints.get("max_error", 0) < 0:
        raise UsageError(f"max_error must be zero or more, got {max_error!r}")
    registered = load_techniques(disable=disable_plugins, modules=plugins)
    ds = data_mod.load(data, y, target=target, task=task)
    space = SearchSpace(registered, ds.task, families, techniques)
    metric = Metric(ds.task, metric, ds.classes)
    options = _family_options(space.families, hidden)
    ws = prepare(ds, validation, test_size, seed, space.families, groups, options)
    metric.check(ws.y_full)
    settings = _settings(ds, space, objectives, metric, ws.validation, seed, sampler, test_size,
                         constraints)
    settings["hidden"] = ",".join(map(str, options["hidden"])) if "hidden" in options else "-"
    settings["groups"] = _groups_label(groups)
    return ds, space, metric, ws, settings, constraints


#: How extra worker processes start: ``fork`` (Linux default) or ``spawn`` (elsewhere).
WORKER_START_ENV = "AUTOREG_WORKER_START"


def _worker_start() -> str:
    """``fork`` where it is safe and fast, else ``spawn`` (or what ``$AUTOREG_WORKER_START``
    asks for)."""
    asked = os.environ.get(WORKER_START_ENV, "").strip().lower()
    if asked and asked not in ("fork", "spawn"):
        raise UsageError(f"{WORKER_START_ENV} must be fork or spawn, got {asked!r}")
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return "spawn"  # macOS's system libraries are not fork-safe; Windows has no fork
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "spawn"  # a forked process cannot use the CUDA context it inherits
    return asked or "fork"


class _Forked:
    """A worker forked from this process, with the part of ``subprocess.Popen``'s interface
    that :func:`_run_parallel` uses."""

    def __init__(self, index: int, run, err_path: str):
        self.err_path = err_path
        self.returncode = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: threads exist
            self.pid = os.fork()
        if self.pid == 0:  # the worker: it never returns into its parent's code
            code = 1
            try:
                code = _in_fork(index, run, err_path)
            finally:
                os._exit(code)

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        import subprocess

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"autoreg worker {self.pid}", timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, sig) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _in_fork(index: int, run, err_path: str) -> int:
    """The body of a forked worker; returns its exit code (the caller leaves with os._exit,
    so nothing of the parent -- its open connections, its ``atexit`` work -- is touched)."""
    global _WORKER
    code = 1
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 1)
        os.dup2(err, 2)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives as long as the fork
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        warnings.simplefilter("ignore")
        from . import workers
        from .errors import stop_on_sigterm

        stop_on_sigterm()
        _WORKER = f"{__import__('socket').gethostname()}:{os.getpid()}"
        code = workers.exit_code(index, run)
    except BaseException:  # noqa: BLE001 - reported through the exit code and the error file
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    return code


def _run_parallel(study, objective, n_jobs, n_trials, timeout, store, storage, bar, data, y,
                  kwargs):
    """This process and ``n_jobs - 1`` others run trials until the study's budget.

    On Linux the others are forks of this process made once its workspace is prepared: they
    start within milliseconds, share its memory (the data's pages are copied only if written)
    and run nothing of the caller's ``__main__`` again. Each opens the storage anew and runs
    the same objective. Elsewhere (or with ``AUTOREG_WORKER_START=spawn``) they are fresh
    interpreters (``python -m autoreg.workers``) that import autoreg and prepare the workspace
    themselves, a few seconds each.
    """
    import pickle
    import subprocess
    import tempfile

    from . import workers

    how = _worker_start()
    with tempfile.TemporaryDirectory(prefix="autoreg-workers-") as tmp:
        procs = []
        if how == "fork":
            for i in range(1, n_jobs):
                run = _forked_run(objective, **kwargs)
                procs.append(_Forked(i, run, os.path.join(tmp, f"worker-{i}.err")))
        else:
            payload = os.path.join(tmp, "job.pickle")
            with open(payload, "wb") as fh:
                pickle.dump({"data": data, "y": y, "kwargs": kwargs, "sys_path": sys.path}, fh)
            # One BLAS/OpenMP thread per worker from the start (threadpoolctl later limits
            # only the libraries already loaded): N workers on N cores, not N x N threads.
            threads = {k: "1" for k in workers.THREAD_ENV if k not in os.environ}
            env = {**os.environ, **threads, "PYTHONWARNINGS": "ignore"}
            for i in range(1, n_jobs):
                err = os.path.join(tmp, f"worker-{i}.err")
                with open(err, "wb") as fh:
                    proc = subprocess.Popen([sys.executable, "-c", _RUN_WORKER, payload,
                                             str(i)], env=env, stdout=subprocess.DEVNULL,
                                            stderr=fh)
                proc.err_path = err
                procs.append(proc)

        def on_trial(study, trial):
            if bar is not None:
                bar.set(workers.finished(study))

        try:
            workers.run_trials(study, objective, n_trials, timeout=timeout,
                               lock=workers.claim_lock(store, storage, study.study_name),
                               on_trial=on_trial)
            errors = []
            for proc in procs:
                while True:
                    try:
                        proc.wait(timeout=0.5)
                        break
                    except subprocess.TimeoutExpired:
                        on_trial(study, None)
                if proc.returncode:
                    errors.append(_last_line(proc.err_path))
        except BaseException:
            # Ctrl-C reaches the whole process group; a signal to this process alone is passed
            # on, so that each worker abandons its trial cleanly (failed, queued again).
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            raise
    if errors:
        warnings.warn(f"autoreg: {len(errors)} of {n_jobs - 1} worker processes failed "
                      f"({errors[0] or 'no message'}); the others finished the budget",
                      RuntimeWarning, stacklevel=3)


# What a spawned worker runs: "python -m autoreg.workers" would put the working directory
# first on sys.path (a numpy.py there would run); the caller's sys.path comes with the job.
_RUN_WORKER = ("import sys; sys.path[:] = [p for p in sys.path if p]; "
               "from autoreg.workers import _main; sys.exit(_main(sys.argv[1:]))")


def _last_line(path: str) -> str:
    try:
        with open(path, errors="replace") as fh:
            lines = fh.read().strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _forked_run(objective, *, n_trials, timeout, storage, study_name, seed, sampler, **_):
    """What a forked worker runs: the parent's objective, on a study opened anew."""
    def run():
        _work(objective, n_trials=n_trials, timeout=timeout, storage=storage,
              study_name=study_name, seed=seed, sampler=sampler)
    return run


def _work(objective, *, n_trials, timeout, storage, study_name, seed, sampler) -> None:
    """Join ``study_name`` (sampling with its own seed) and run its trials to the budget."""
    import optuna

    from . import workers

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with storage_faults(storage):
        store = open_storage(storage)
        study = optuna.load_study(study_name=study_name, storage=store)
        claim = workers.claim_lock(store, storage, study_name)
        study.sampler = _sampler(sampler, seed + _join(study, claim))
        with workers.limit_threads():
            workers.run_trials(study, objective, n_trials, timeout=timeout, lock=claim)


def worker(index: int, data, y, *, n_trials, timeout, storage, study_name, artifacts,
           trial_timeout=None, **build) -> None:
    """One spawned worker of a parallel search: the same workspace, its own sampler seed."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    ds, space, metric, ws, settings, constraints = _build(data, y, **build)
    objective = Objective(ws, space, metric, build["objectives"], ModelStore(artifacts),
                          _study_key(study_name), constraints, build["seed"], trial_timeout)
    _work(objective, n_trials=n_trials, timeout=timeout, storage=storage,
          study_name=study_name, seed=build["seed"], sampler=build["sampler"])


def parse_hidden(hidden) -> tuple[int, ...]:
    """Hidden layer sizes from ``(128, 64)``, ``[32]``, ``64`` or ``"128,64"``."""
    if isinstance(hidden, str):
        parts = [p.strip() for p in hidden.split(",")]
        if not all(p.isdigit() for p in parts):
            raise UsageError(f"hidden sizes must be positive whole numbers like 128,64; got "
                             f"{hidden!r}")
        hidden = [int(p) for p in parts]
    elif isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = [hidden]
    if not isinstance(hidden, (list, tuple)) or not hidden or not all(
            isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden):
        raise UsageError(f"hidden sizes must be a non-empty list of positive whole numbers, "
                         f"got {hidden!r}")
    if max(hidden) > 65536 or len(hidden) > 16:
        raise UsageError(f"hidden sizes {tuple(hidden)} are too large (at most 16 layers of "
                         "65536 units)")
    return tuple(hidden)


def _family_options(families, hidden) -> dict:
    if "mlp" not in families:
        if hidden is not None:
            raise UsageError("hidden sizes are for the mlp family; add it with --family mlp")
        return {}
    default = getattr(FAMILIES["mlp"], "default_hidden", (128, 64))
    return {"hidden": parse_hidden(hidden) if hidden is not None else tuple(default)}


def _groups_label(groups) -> str:
    """A short, stable label of the user's groups for the study settings."""
    if groups is None:
        return "columns"
    import json

    try:
        text = json.dumps(groups, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(groups)
    return "user:" + hashlib.sha1(text.encode()).hexdigest()[:12]


def _all_failed_message(result, registered=None) -> str:
    """One line on why no trial completed: the failures grouped by reason, most frequent
    first, and what to do about them."""
    failed = result.failed
    if failed.empty:
        return "the search finished no trial (was the timeout too short?)"
    reasons = failed["reason"].value_counts()
    text = f"all {len(failed)} trials failed: " + "; ".join(
        f"{n} x {r}" for r, n in reasons.head(3).items())
    if len(reasons) > 3:
        text += f"; and {len(reasons) - 3} other reasons"
    registered = registered or {}
    named = {n for r in reasons.index
             for n in re.findall(r"(?:technique|recipe) '([a-z0-9_+]+)'", r)}
    named.update(n for r in reasons.index
                 for group in re.findall(r"techniques ((?:'[a-z0-9_]+'(?:, )?)+)", r)
                 for n in re.findall(r"'([a-z0-9_]+)'", group))
    techs = sorted({t for n in named for t in n.split("+") if t in registered})
    plugins = sorted({registered[t].plugin for t in techs})
    advice = []
    if plugins:
        advice.append(f"to search without {'it' if len(techs) == 1 else 'them'}: "
                      + " ".join(f"--disable-plugin {p}" for p in plugins)
                      + " (or leave " + ", ".join(map(repr, techs)) + " out of --techniques)")
    if any(r.startswith("exceeded the per-trial time limit") for r in reasons.index):
        advice.append("to give each trial more time, raise --trial-timeout")
    return "; ".join([text, *advice])


class _Progress:
    def __init__(self, remaining, done, total):
        import shutil

        from tqdm import tqdm

        # A terminal that reports no size (a bare pty) still gets a bar of a usual size.
        size = shutil.get_terminal_size((100, 24))
        self.bar = tqdm(total=total, initial=done, unit="trial", file=sys.stderr,
                        ncols=size.columns or 100, nrows=size.lines or 24, desc="autoreg")

    def callback(self, study, trial):
        self.bar.update(1)
        if trial.values:
            self.bar.set_postfix_str(f"last error {trial.values[0]:.4g}", refresh=False)

    def set(self, finished: int) -> None:
        """Show ``finished`` trials (all workers'), when several processes run them."""
        if finished > self.bar.n:
            self.bar.update(finished - self.bar.n)

    def close(self):
        self.bar.close()


def _progress(enabled, remaining, done, total):
    if not enabled or not remaining:
        return None
    return _Progress(remaining, done, total)


__all__ = ["search", "prepare"]
