"""scikit-learn estimators: ``fit`` runs a search and keeps the model its pick rule chooses.

``AutoRegRegressor`` and ``AutoRegClassifier`` work wherever a scikit-learn estimator does
(``Pipeline``, ``cross_val_score``, ``GridSearchCV``, ``clone``, pickling). By default a fit
writes nothing to disk: its study and trial models live in memory (``storage=None``) and
MLflow logging is off (``log_mlflow=False``), since model selection fits many times.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import assert_all_finite, check_array, check_consistent_length, column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from .storage import MEMORY, MemoryModelStore

#: Fewer rows than this cannot be split into validation folds.
MIN_ROWS = 4


def _is_frame(X) -> bool:
    return type(X).__module__.startswith("pandas") and hasattr(X, "iloc")


class _AutoRegEstimator(BaseEstimator):
    """What the two estimators share; see :class:`AutoRegRegressor` for the parameters."""

    _task = "regression"

    def __init__(self, *, techniques=None, families=None,
                 objectives=("error", "sparsity", "size"), metric=None, validation="auto",
                 n_trials=100, timeout=None, pick="within", tolerance=0.01, max_size=None,
                 min_sparsity=None, max_error=None, test_size=0.0, sampler="tpe",
                 trial_timeout=None, groups=None, hidden=None, storage=None, study_name=None,
                 artifacts=None, log_mlflow=False, tracking_uri=None, experiment=None, n_jobs=1,
                 random_state=0):
        self.techniques = techniques
        self.families = families
        self.objectives = objectives
        self.metric = metric
        self.validation = validation
        self.n_trials = n_trials
        self.timeout = timeout
        self.pick = pick
        self.tolerance = tolerance
        self.max_size = max_size
        self.min_sparsity = min_sparsity
        self.max_error = max_error
        self.test_size = test_size
        self.sampler = sampler
        self.trial_timeout = trial_timeout
        self.groups = groups
        self.hidden = hidden
        self.storage = storage
        self.study_name = study_name
        self.artifacts = artifacts
        self.log_mlflow = log_mlflow
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.n_jobs = n_jobs
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Missing values are imputed, text and categorical columns one-hot encoded, sparse
        # input kept sparse: the same preprocessing as autoreg.search, stored in each model.
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags

    # -- input ----------------------------------------------------------------------------
    def _check_X(self, X, *, reset: bool):
        if _is_frame(X):
            # A DataFrame goes in as it is: its categorical and text columns are features.
            validate_data(self, X, skip_check_array=True, reset=reset)
            if X.shape[0] < 1:
                raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a "
                                 f"minimum of 1 is required by {type(self).__name__}.")
            return X
        return validate_data(self, X, reset=reset, accept_sparse=("csr", "csc", "coo"),
                             dtype=None, ensure_all_finite="allow-nan",
                             ensure_min_samples=MIN_ROWS if reset else 1)

    def _check_Xy(self, X, y):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None")
        X = self._check_X(X, reset=True)
        if X.shape[0] < MIN_ROWS:
            raise ValueError(f"Found array with {X.shape[0]} sample(s) (shape={X.shape}) "
                             f"while a minimum of {MIN_ROWS} is required by "
                             f"{type(self).__name__}.")
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        if self._task == "regression":
            y = check_array(y, ensure_2d=False, dtype="numeric", input_name="y")
            y = y.astype(np.float64, copy=False)
        else:
            assert_all_finite(y, input_name="y")
        return X, y

    def _seed(self) -> int:
        if isinstance(self.random_state, (int, np.integer)) \
                and not isinstance(self.random_state, bool):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    # -- fitting --------------------------------------------------------------------------
    def _search(self, X, y, task: str):
        from joblib import effective_n_jobs

        from .engine import search

        storage, artifacts = self.storage, self.artifacts
        # scikit-learn's convention: None is one process, -1 every core, -2 all but one.
        n_jobs = self.n_jobs if isinstance(self.n_jobs, (int, np.integer)) \
            and self.n_jobs > 0 else effective_n_jobs(self.n_jobs)
        with contextlib.ExitStack() as stack:
            if storage is None:
                if n_jobs == 1:
                    storage = MEMORY
                else:
                    # Worker processes need a storage they share: a scratch folder, copied
                    # into memory when the search is done.
                    scratch = tempfile.mkdtemp(prefix="autoreg-fit-")
                    stack.callback(shutil.rmtree, scratch, ignore_errors=True)
                    storage = f"{scratch}/studies.journal"
                    artifacts = artifacts or f"{scratch}/artifacts"
            result = search(
                X, y, task=task, techniques=self.techniques, families=self.families,
                objectives=self.objectives, metric=self.metric, validation=self.validation,
                n_trials=self.n_trials, timeout=self.timeout, storage=storage,
                study_name=self.study_name, tracking_uri=self.tracking_uri,
                experiment=self.experiment, n_jobs=int(n_jobs), seed=self._seed(),
                sampler=self.sampler, test_size=self.test_size, max_size=self.max_size,
                min_sparsity=self.min_sparsity, max_error=self.max_error, groups=self.groups,
                hidden=self.hidden, artifacts=artifacts, log_mlflow=self.log_mlflow,
                trial_timeout=self.trial_timeout)
            if self.storage is None and n_jobs != 1:
                result = _into_memory(result)
        return result

    def _keep_pick(self, result) -> None:
        self.result_ = result
        self.front_ = result.front
        self.pick_ = result.pick(self.pick, tolerance=self.tolerance, max_size=self.max_size,
                                 min_sparsity=self.min_sparsity, max_error=self.max_error)
        self.model_ = result.model(self.pick_)

    # -- reading the fitted model ---------------------------------------------------------
    @property
    def pick_trial_(self) -> int:
        """The number of the trial whose model predicts."""
        check_is_fitted(self)
        return int(self.pick_["trial"])

    def _decision(self, X):
        check_is_fitted(self)
        return self.model_.decision_function(self._check_X(X, reset=False))

    def save(self, path) -> int:
        """Write the picked model in autoreg's compact export (load it with
        :func:`autoreg.load`); returns the bytes written."""
        check_is_fitted(self)
        return self.model_.save(path)


class AutoRegRegressor(RegressorMixin, _AutoRegEstimator):
    """A regressor whose ``fit`` searches regularization recipes and keeps the pick.

    Parameters follow :func:`autoreg.search`; those that differ:

    - ``pick``, ``tolerance``: the pick rule (``within``, ``1se``, ``knee``) that chooses the
      model from the front. ``max_size``, ``min_sparsity`` and ``max_error`` are constraints
      of both the search and the pick.
    - ``test_size`` defaults to 0: every row trains and validates (the caller tests, e.g.
      with ``cross_val_score``). A fraction holds out a test split and fills ``test_error``.
    - ``storage=None`` keeps the study in memory; a path or URL keeps it there.
    - ``log_mlflow`` defaults to False; True records every fit as a run.
    - ``random_state`` is the search's seed: an int gives the same front on every fit.

    Attributes after ``fit``: ``front_`` (the Pareto front, a DataFrame), ``result_`` (the
    :class:`~autoreg.SearchResult`), ``pick_`` (the front row picked), ``model_`` (its
    predictor), ``n_features_in_`` and ``feature_names_in_`` (for DataFrame input).
    """

    def fit(self, X, y):
        X, y = self._check_Xy(X, y)
        self._keep_pick(self._search(X, y, "regression"))
        return self

    def predict(self, X) -> np.ndarray:
        return np.asarray(self._decision(X), dtype=np.float64)


class AutoRegClassifier(ClassifierMixin, _AutoRegEstimator):
    """A classifier whose ``fit`` searches regularization recipes and keeps the pick.

    Parameters and attributes are those of :class:`AutoRegRegressor`, plus ``classes_``.
    The default error is the log loss; ``metric=`` takes a scorer name (``accuracy``,
    ``roc_auc``, ...).
    """

    _task = "classification"

    def fit(self, X, y):
        X, y = self._check_Xy(X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in "
                             f"the data, but the data contain only one class: "
                             f"{self.classes_[0]!r}")
        # Classes go in as codes 0..k-1, so that any labels (numbers, text, bools, many
        # classes) come back exactly as given.
        self._keep_pick(self._search(X, codes, "classification"))
        return self

    def decision_function(self, X) -> np.ndarray:
        """Scores per class (one column, for the second class, with two classes)."""
        return self._decision(X)

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.model_.predict_proba(self._check_X(X, reset=False))

    def predict_log_proba(self, X) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


def _into_memory(result):
    """``result`` with its study and trial models copied into memory."""
    import optuna

    from .result import SearchResult

    store = optuna.storages.InMemoryStorage()
    optuna.copy_study(from_study_name=result.study_name, from_storage=result.storage,
                      to_storage=store)
    models = MemoryModelStore()
    for trial in result.trials["trial"]:
        attrs = result.study_trial(trial).user_attrs["autoreg"]
        models.put(attrs["model"], result.model_bytes(trial))
    copy = SearchResult(optuna.load_study(study_name=result.study_name, storage=store),
                        store=store, models=models, storage_url=MEMORY)
    for name in ("mlflow_run_id", "interrupted", "signal", "tracking_error", "resumed",
                 "test_index"):
        setattr(copy, name, getattr(result, name))
    return copy


__all__ = ["AutoRegRegressor", "AutoRegClassifier"]
