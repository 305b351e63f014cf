"""Measuring a trial: its error in the chosen metric, sparsity, size and features used."""

from __future__ import annotations

import numpy as np

from .errors import UsageError, first_line

OBJECTIVES = {"error": "minimize", "sparsity": "maximize", "size": "minimize"}
#: The result column that holds each objective.
COLUMNS = {"error": "error", "sparsity": "sparsity", "size": "size_bytes"}


_OUTPUT_CLASSES: dict = {}


def _outputs(task, classes, pred, proba, decision):
    """An estimator that hands precomputed outputs to a scikit-learn scorer."""
    kind = "regressor" if task == "regression" else "classifier"
    if kind not in _OUTPUT_CLASSES:
        from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

        mixin = RegressorMixin if kind == "regressor" else ClassifierMixin

        class _Outputs(mixin, BaseEstimator):
            def predict(self, X):
                return self.pred_

            def predict_proba(self, X):
                return self.proba_

            def decision_function(self, X):
                return self.decision_

        _OUTPUT_CLASSES[kind] = _Outputs
    est = _OUTPUT_CLASSES[kind]()
    est.classes_, est.pred_, est.proba_, est.decision_ = classes, pred, proba, decision
    return est


class Metric:
    """The validation error: RMSE or log loss by default, or a scikit-learn scorer as a loss.

    Scorers where greater is better become ``1 - score`` (accuracy, r2, roc_auc, ...); ``neg_*``
    scorers become the positive loss they negate.
    """

    def __init__(self, task: str, name: str | None = None, classes=None):
        self.task = task
        self.classes = classes
        self.name = name or ("rmse" if task == "regression" else "log_loss")
        if self.name in ("rmse", "log_loss"):
            self._scorer = None
            return
        from sklearn.metrics import get_scorer, get_scorer_names

        if self.name not in get_scorer_names():
            raise UsageError(f"unknown metric {self.name!r}; use rmse, log_loss or a "
                             "scikit-learn scorer name such as accuracy, r2, roc_auc, "
                             "neg_mean_absolute_error")
        self._scorer = get_scorer(self.name)

    def loss(self, y_true: np.ndarray, decision: np.ndarray) -> float:
        """``y_true`` holds class indices for classification; ``decision`` is the raw output."""
        from .model import proba_from_decision

        if self.task == "regression":
            pred, proba = decision, None
            if self._scorer is None:
                return float(np.sqrt(np.mean((y_true - pred) ** 2)))
        else:
            proba = proba_from_decision(decision, self.task)
            pred = np.argmax(proba, axis=1)
            if self._scorer is None:
                p = np.clip(proba[np.arange(len(y_true)), y_true], 1e-15, 1.0)
                return float(-np.mean(np.log(p)))
        classes = None if self.classes is None else np.arange(len(self.classes))
        est = _outputs(self.task, classes, pred, proba, decision)
        score = float(self._scorer(est, np.empty((len(y_true), 0)), y_true))
        return -score if self.name.startswith("neg_") else 1.0 - score

    def check(self, y: np.ndarray) -> None:
        """Fail early, with a usage error, if the metric does not fit the task."""
        n_out = 1 if self.task in ("regression", "binary") else len(self.classes)
        decision = np.zeros((len(y), n_out)) if n_out > 1 else np.full(len(y), 0.1)
        try:
            value = self.loss(y, decision)
        except Exception as exc:
            raise UsageError(f"metric {self.name!r} does not fit a {self.task} task "
                             f"({first_line(exc)}); {_metric_hint(self.task)}") from None
        if not np.isfinite(value) and self.name != "log_loss":
            raise UsageError(f"metric {self.name!r} gives no finite value for a {self.task} "
                             f"task; {_metric_hint(self.task)}")


def _metric_hint(task: str) -> str:
    if task == "regression":
        return "use rmse, r2 or neg_mean_absolute_error"
    return "use log_loss, accuracy" + (" or roc_auc" if task == "binary" else "")


def sparsity(weights: list[np.ndarray]) -> float:
    """The fraction of weights that are exactly zero (biases and intercepts are not weights)."""
    total = sum(w.size for w in weights)
    if total == 0:
        return 1.0
    return float(sum(w.size - np.count_nonzero(w) for w in weights) / total)


def directions(objectives) -> list[str]:
    return [OBJECTIVES[o] for o in objectives]


def check_objectives(objectives) -> tuple[str, ...]:
    if isinstance(objectives, str):  # "error,size" means two objectives, not ten letters
        objectives = [o.strip() for o in objectives.split(",") if o.strip()]
    objectives = tuple(objectives)
    if not objectives:
        raise UsageError(f"no objectives given; choose among {', '.join(OBJECTIVES)}")
    bad = [o for o in objectives if o not in OBJECTIVES]
    if bad:
        raise UsageError(f"unknown objective {bad[0]!r}; choose among "
                         f"{', '.join(OBJECTIVES)}")
    if "error" not in objectives:
        raise UsageError(f"the objectives must include error, got {', '.join(objectives)}; "
                         "add error (e.g. error,size)")
    if len(set(objectives)) != len(objectives):
        twice = next(o for o in objectives if objectives.count(o) > 1)
        raise UsageError(f"objective {twice!r} is listed twice; list each objective once")
    return objectives
