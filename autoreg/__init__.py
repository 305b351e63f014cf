"""autoreg: automatic regularization selection with a Pareto front of error, sparsity and size.

``import autoreg`` stays light: optuna, scikit-learn and mlflow load when a search runs (or,
for scikit-learn, when an estimator is first named).
"""

from __future__ import annotations

from ._version import __version__
from .errors import AutoRegError, DataError, ExportFormatError, PluginError, StudyError, UsageError
from .export import load
from .hookspecs import hookimpl
from .technique import Choice, Float, Int, LinearContext, Technique

__all__ = [
    "__version__", "search", "load", "SearchResult", "Technique", "Float", "Int", "Choice",
    "LinearContext", "hookimpl", "AutoRegError", "DataError", "UsageError", "PluginError",
    "StudyError", "ExportFormatError", "AutoRegRegressor", "AutoRegClassifier",
]


def __getattr__(name):
    if name == "search":
        from .engine import search

        return search
    if name == "SearchResult":
        from .result import SearchResult

        return SearchResult
    if name in ("AutoRegRegressor", "AutoRegClassifier"):
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'autoreg' has no attribute {name!r}")
