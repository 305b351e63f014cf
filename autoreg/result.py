"""What a search returns: trials, the Pareto front, pick rules and the trial models."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import workers
from .errors import StudyError, UsageError
from .objectives import COLUMNS

PICK_RULES = ("within", "1se", "knee")
_NO_REASON = "its worker stopped (killed or lost) and the retries were spent"
TEST_ERRORS_ATTR = "autoreg.test_errors"
METRIC_COLUMNS = ("error", "error_se", "sparsity", "size_bytes", "n_features_used",
                  "fit_seconds", "test_error")


class SearchResult:
    """The outcome of a search, read from its Optuna study.

    ``trials`` holds every completed trial, ``front`` the Pareto-optimal ones (feasible under any
    constraints; trials with identical objective values are listed once, by the earliest).
    """

    def __init__(self, study, *, store=None, models=None, storage_url=None):
        from optuna.trial import TrialState

        self._study = study
        self._study_name = study.study_name
        self.storage = store
        self.models = models
        self.storage_url = storage_url
        self.mlflow_run_id = study.user_attrs.get("autoreg.mlflow_run_id")
        self.interrupted = False
        #: "SIGINT" or "SIGTERM" when the search was stopped by one.
        self.signal: str | None = None
        #: Trials other workers were still running when this search returned.
        self.running_elsewhere = 0
        self.tracking_error: str | None = None
        self.resumed = False
        #: Positions (in the data as given) of the test rows, after a search in this process.
        self.test_index = None
        self.settings = dict(study.user_attrs.get("autoreg.settings", {}))
        self.objectives = tuple(self.settings.get("objectives", "error,sparsity,size").split(","))
        all_trials = study.get_trials(deepcopy=False)
        # Test errors are measured after the trials finish, so they live on the study.
        test_errors = study.user_attrs.get(TEST_ERRORS_ATTR, {})
        done = [t for t in all_trials
                if t.state == TrialState.COMPLETE and "autoreg" in t.user_attrs]
        front_ids = {t.number for t in study.best_trials} if done else set()
        self._frozen = {t.number: t for t in done}
        rows = []
        for t in done:
            attrs = t.user_attrs["autoreg"]
            row = {"trial": t.number, "recipe": attrs["recipe"],
                   "family": attrs.get("family", "linear")}
            row.update({k: v for k, v in sorted(t.params.items())
                        if k not in ("penalty", "family")})
            row.update({
                "error": t.values[0],
                "error_se": attrs.get("error_se", math.nan),
                "sparsity": attrs["sparsity"],
                "size_bytes": int(attrs["size_bytes"]),
                "n_features_used": int(attrs["n_features_used"]),
                "fit_seconds": attrs["fit_seconds"],
                "test_error": test_errors.get(str(t.number), math.nan),
                "feasible": all(v <= 0 for v in t.constraints.values()) if t.constraints else True,
                "pareto": t.number in front_ids,
            })
            rows.append(row)
        params = sorted({k for t in done for k in t.params if k not in ("penalty", "family")})
        cols = ["trial", "recipe", "family", *params, *METRIC_COLUMNS, "feasible", "pareto"]
        self.trials = pd.DataFrame(rows, columns=cols)
        front = self.trials[self.trials["pareto"].astype(bool)]
        keys = [COLUMNS[o] for o in self.objectives]
        front = front.sort_values("trial").drop_duplicates(subset=keys, keep="first")
        self.front = front.sort_values(["error", "size_bytes", "trial"]).reset_index(drop=True)
        # Attempts whose worker stopped and that were queued again are not failures of their
        # recipe: their retry is (or will be) a trial of its own.
        retried = workers.retried(all_trials)
        failed = [t for t in all_trials if t.state == TrialState.FAIL and t.number not in retried]
        self.failed = pd.DataFrame(
            [{"trial": t.number, "reason": t.user_attrs.get("fail_reason", _NO_REASON)}
             for t in failed], columns=["trial", "reason"])
        #: Trial numbers failed because their worker stopped (killed, lost, interrupted), each
        #: queued again with the same parameters.
        self.retried = sorted(retried)

    # -- pick -----------------------------------------------------------------------------
    def pick(self, rule: str = "within", *, tolerance: float = 0.01, max_size=None,
             min_sparsity=None, max_error=None) -> pd.Series:
        """The front trial a rule chooses, as a row of ``front``.

        ``within``: the smallest model whose error is within ``tolerance`` (relative) of the best;
        ``1se``: the smallest within one standard error of the best (cross-validation only);
        ``knee``: the one nearest the ideal point once each objective is scaled to [0, 1] over the
        front. ``max_size``, ``min_sparsity`` and ``max_error`` filter the front first.
        """
        if rule not in PICK_RULES:
            raise UsageError(f"unknown pick rule {rule!r}; use one of {', '.join(PICK_RULES)}")
        front = self.front
        if max_size is not None:
            front = front[front["size_bytes"] <= max_size]
        if min_sparsity is not None:
            front = front[front["sparsity"] >= min_sparsity]
        if max_error is not None:
            front = front[front["error"] <= max_error]
        if front.empty:
            raise StudyError("no front model meets the pick constraints")
        best = front.loc[front["error"].idxmin()]
        if rule == "within":
            if tolerance < 0:
                raise UsageError("tolerance must be >= 0")
            limit = best["error"] + tolerance * abs(best["error"])
            chosen = _smallest(front[front["error"] <= limit])
        elif rule == "1se":
            se = best["error_se"]
            if not np.isfinite(se):
                raise UsageError("the 1se rule needs cross-validation (a number of folds)")
            chosen = _smallest(front[front["error"] <= best["error"] + se])
        else:
            chosen = self._knee(front)
        return chosen

    def _knee(self, front: pd.DataFrame) -> pd.Series:
        cols = {"error": 1, "size": 1, "sparsity": -1}
        mat = np.column_stack([
            front[COLUMNS[o]].to_numpy(float) * cols[o]
            for o in self.objectives])
        lo, hi = mat.min(axis=0), mat.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        dist = np.linalg.norm((mat - lo) / span, axis=1)
        return front.iloc[int(np.argmin(dist))]

    # -- models ---------------------------------------------------------------------------
    def study_trial(self, trial):
        """The finished Optuna trial of that number, or None."""
        return self._frozen.get(_trial_number(trial))

    def model_bytes(self, trial) -> bytes:
        number = _trial_number(trial)
        if number not in self._frozen:
            raise StudyError(f"trial {number} is not a completed trial of study "
                             f"{self.study.study_name!r}")
        if self.models is None:
            raise StudyError("this result has no model store")
        return self.models.get(self._frozen[number].user_attrs["autoreg"]["model"])

    def model(self, trial):
        """The fitted predictor of ``trial`` (a number or a row of ``front``/``trials``)."""
        from . import export
        from .model import from_export

        return from_export(*export.loads(self.model_bytes(trial), quantized=True))

    def measure_test_error(self, ws, metric) -> None:
        """Score front trials on the held-out test rows; stored on the study, measured once."""
        if not len(ws.test_idx):
            return  # searched with test_size=0: there is no test split
        X_test, y_test = ws.test_rows()
        stored = dict(self.study.user_attrs.get(TEST_ERRORS_ATTR, {}))
        for i, row in self.front.iterrows():
            if not math.isnan(row["test_error"]):
                continue
            d = self.model(int(row["trial"])).decision_function(X_test)
            value = float(metric.loss(y_test, d))
            stored[str(int(row["trial"]))] = value
            self.front.loc[i, "test_error"] = value
            self.trials.loc[self.trials["trial"] == row["trial"], "test_error"] = value
        if stored != self.study.user_attrs.get(TEST_ERRORS_ATTR, {}):
            self.study.set_user_attr(TEST_ERRORS_ATTR, stored)

    @property
    def study(self):
        """The Optuna study (opened again from ``storage_url`` after unpickling)."""
        if self._study is None:
            import optuna

            from .storage import open_storage

            self.storage = open_storage(self.storage_url)
            self._study = optuna.load_study(study_name=self._study_name, storage=self.storage)
        return self._study

    @property
    def study_name(self) -> str:
        return self._study_name

    def __getstate__(self) -> dict:
        # A study in memory travels with the result; one in a file or database is opened
        # again from its URL when it is next asked for.
        from optuna.storages import InMemoryStorage

        from .storage import ModelStore, default_storage

        state = self.__dict__.copy()
        if not isinstance(self.storage, InMemoryStorage):
            state["_study"] = state["storage"] = None
            # Paths relative to this working folder would point elsewhere in another one.
            url = self.storage_url or default_storage()
            state["storage_url"] = url if "://" in url else str(Path(url).resolve())
            if isinstance(self.models, ModelStore) and not self.models.root.is_absolute():
                state["models"] = ModelStore(self.models.root.resolve())
        return state

    def __repr__(self) -> str:
        return (f"<SearchResult study={self.study_name!r} trials={len(self.trials)} "
                f"front={len(self.front)}>")


def _smallest(rows: pd.DataFrame) -> pd.Series:
    order = rows.sort_values(["size_bytes", "sparsity", "error", "trial"],
                             ascending=[True, False, True, True])
    return order.iloc[0]


def _trial_number(trial) -> int:
    if isinstance(trial, pd.Series):
        trial = trial["trial"]
    try:
        return int(trial)
    except (TypeError, ValueError):
        raise UsageError(f"a trial is given by its number, got {trial!r}") from None
