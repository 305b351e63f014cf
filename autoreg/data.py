"""Turning what a user hands us into one :class:`Dataset`: raw features, target, task."""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import datasets
from .errors import DataError, UsageError, first_line

TASK_CHOICES = ("auto", "regression", "classification", "binary", "multiclass")


@dataclass
class Dataset:
    """Raw features (DataFrame, dense array or CSR matrix), target and task of one search."""

    X: pd.DataFrame | np.ndarray | sp.csr_matrix
    y: np.ndarray
    task: str
    name: str
    classes: np.ndarray | None = None
    digest: str = field(default="", repr=False)

    @property
    def n_rows(self) -> int:
        return self.X.shape[0]

    @property
    def n_columns(self) -> int:
        return self.X.shape[1]

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self.X)

    def rows(self, idx: np.ndarray):
        if isinstance(self.X, pd.DataFrame):
            return self.X.iloc[idx]
        return self.X[idx]


def load(data, y=None, *, target: str | None = None, task: str = "auto") -> Dataset:
    """Read ``data`` (DataFrame, array, sparse matrix, CSV/Parquet path or built-in name)."""
    if task not in TASK_CHOICES:
        raise UsageError(f"unknown task {task!r}; use one of {', '.join(TASK_CHOICES)}")
    name = "array"
    if data is None:
        data = datasets.DEMO
    if isinstance(data, (str, os.PathLike)):
        data, y_from, name = _read_named(data, target)
        if y_from is not None:
            if y is not None:
                raise UsageError("y was given twice: by the dataset and by the y argument")
            y = y_from
    if isinstance(data, pd.DataFrame):
        if name == "array":
            name = "dataframe"
        if isinstance(y, str) and target is None:
            raise UsageError(f"y={y!r} looks like a column name; pass target={y!r}")
        if target is not None:
            if target not in data.columns:
                raise DataError(_no_such_column(target, data.columns))
            if y is not None:
                raise UsageError("give either target= or y, not both")
            y = data[target]
            data = data.drop(columns=[target])
        data = data.copy()
        data.columns = [str(c) for c in data.columns]
        if data.columns.duplicated().any():
            twice = data.columns[data.columns.duplicated()][0]
            raise DataError(f"column names must be unique, but {_label(twice)!r} names more "
                            "than one column; rename them")
        _check_finite_columns(data)
        X = data
    elif sp.issparse(data):
        if data.ndim != 2:
            raise DataError(f"X must be 2-dimensional, got shape {data.shape}")
        if not (data.dtype == bool or np.issubdtype(data.dtype, np.integer)
                or np.issubdtype(data.dtype, np.floating)):
            raise DataError(f"a sparse matrix must be numeric, got dtype {data.dtype}")
        # One type downstream: csr_matrix (CSC/COO and sparse arrays convert without densifying).
        X = data if isinstance(data, sp.csr_matrix) else sp.csr_matrix(data)
        if X.dtype != np.float64:
            X = X.astype(np.float64)
        if not np.isfinite(X.data).all():
            raise DataError("the sparse matrix holds NaN or infinite values; impute them first")
        name = "sparse" if name == "array" else name
    else:
        if target is not None:
            raise UsageError("target= names a column of a DataFrame, CSV or Parquet file")
        try:
            X = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError):
            X = pd.DataFrame(np.asarray(data, dtype=object))
            X.columns = [str(c) for c in X.columns]
        if isinstance(X, np.ndarray):
            if X.ndim == 1:
                X = X.reshape(-1, 1)
            if X.ndim != 2:
                raise DataError(f"X must be 2-dimensional, got shape {X.shape}")
            if np.isinf(X).any():
                raise DataError("X holds infinite values; replace them or drop those rows")
    if y is None:
        raise UsageError("no target: pass y, or target= naming a column (--target NAME)")
    y = _as_target(y)
    if len(y) != X.shape[0]:
        raise DataError(f"X has {X.shape[0]} rows but y has {len(y)}; give one target value "
                        "per row")
    if X.shape[0] < 2:
        raise DataError(f"need at least 2 rows of data, got {X.shape[0]}; add rows (a search "
                        "holds some out to validate and test on)")
    if X.shape[1] < 1:
        raise DataError("the data has no feature columns, only the target; add columns to "
                        "learn from")
    _check_informative(X)
    resolved, classes = detect_task(y, task)
    if resolved == "regression":
        y = _regression_target(y)
    return Dataset(X=X, y=y, task=resolved, name=name, classes=classes, digest=_digest(X, y))


def _read_named(ref, target):
    text = os.fspath(ref)
    path = Path(text)
    if not path.suffix and text in datasets.BUILTIN and not path.exists():
        X, y = datasets.BUILTIN[text]()
        if target is not None:
            raise UsageError(f"built-in dataset {text!r} brings its own target; drop --target")
        return X, y, text
    suffix = path.suffix.lower()
    if not path.exists():
        if not path.suffix:
            raise DataError(f"no file and no built-in dataset named {text!r}; built-ins are "
                            f"{', '.join(sorted(datasets.BUILTIN))}")
        raise DataError(f"file not found: {text} (check the path, or name a built-in dataset "
                        "such as diabetes)")
    if path.is_dir():
        raise DataError(f"{text} is a directory, not a CSV or Parquet file")
    suffixes = [x.lower() for x in path.suffixes]
    compressed = suffix == ".gz" and len(suffixes) > 1
    if compressed:  # data.csv.gz: read by its inner suffix
        suffix = suffixes[-2]
        path_stem = Path(path.stem).stem
    else:
        path_stem = path.stem
    if suffix not in (*_TEXT_SUFFIXES, ".parquet", ".pq"):
        raise DataError(f"cannot read {text}: autoreg reads .csv, .tsv, .txt and .parquet "
                        "files (optionally .gz); convert it to one of those")
    try:
        if suffix in _TEXT_SUFFIXES:
            df = _read_text(path, text, "\t" if suffix == ".tsv" else ",", compressed)
        else:
            df = pd.read_parquet(path)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{text} is empty; it needs a header row and rows of data") from None
    except UnicodeError:
        raise DataError(f"cannot read {text}: it is not UTF-8 text; save it as UTF-8 "
                        "(or as Parquet)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"cannot read {text}: {_parser_reason(exc)}; every row needs the "
                        "header's number of fields, and quotes must be closed") from None
    except Exception as exc:  # parsers raise many types; the user needs the file and the reason
        kind = "a CSV" if suffix in _TEXT_SUFFIXES else "a Parquet"
        raise DataError(f"cannot read {text}: {first_line(exc)} (is it {kind} file?)") from None
    if target is None:
        raise UsageError(f"name the target column of {path.name} with --target "
                         f"(columns: {_preview(df.columns)})")
    return df, None, path_stem


_TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
_OTHER_SEPARATORS = (";", "\t", "|")
_SNIFF_BYTES = 1 << 16


def _read_text(path: Path, text: str, sep: str, compressed: bool) -> pd.DataFrame:
    """A delimited text file: UTF-8 (with or without a byte-order mark) or UTF-16 with one."""
    encoding = "utf-8"
    if not compressed:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            encoding = "utf-16"
        elif head.startswith(b"PAR1"):
            raise DataError(f"cannot read {text}: it is a Parquet file; name it .parquet")
        elif head.startswith(b"\x1f\x8b"):
            raise DataError(f"cannot read {text}: it is gzip-compressed; name it {text}.gz")
        elif b"\x00" in head:
            raise DataError(f"cannot read {text}: it holds binary data, not delimited text; "
                            "give a CSV or Parquet file")
    options = dict(encoding=encoding)
    df = pd.read_csv(path, sep=sep, **options)
    if df.shape[1] == 1:
        # A file separated by something else reads as one column whose name holds the
        # separators: read it again with the one that the header uses.
        header = str(df.columns[0])
        found = [s for s in _OTHER_SEPARATORS if s != sep and s in header]
        if len(found) == 1:
            df = pd.read_csv(path, sep=found[0], **options)
    return df


def _parser_reason(exc: Exception) -> str:
    reason = first_line(exc)
    return reason.removeprefix("Error tokenizing data. C error: ").rstrip(".")


def _check_finite_columns(df: pd.DataFrame) -> None:
    """Infinite values would only fail later, inside the scaler, with a message about arrays."""
    floats = df.select_dtypes(include="floating")
    if floats.shape[1]:
        bad = np.isinf(floats.to_numpy(dtype=np.float64, na_value=np.nan)).any(axis=0)
        if bad.any():
            column = floats.columns[int(np.argmax(bad))]
            raise DataError(f"column {_label(column)!r} holds infinite values; replace them or "
                            "drop those rows")


def _no_such_column(name: str, columns) -> str:
    """Says which columns there are, and which one was probably meant."""
    close = [str(c) for c in columns if str(c).strip().lower() == str(name).strip().lower()]
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (f"target column {name!r} not found; {hint}columns are: {_preview(columns)} "
            "(use --target NAME)")


def _check_informative(X) -> None:
    """Data in which no column varies cannot be learned from: say so now, not after a search
    whose every model is the mean. (A constant column among useful ones is harmless: the
    preprocessing scales it to zero.)"""
    if sp.issparse(X):
        # From the stored values alone (never densified): a column varies if it holds zeros
        # and non-zeros, or non-zeros that differ.
        nonzero = X.data != 0
        cols, values = X.indices[nonzero], X.data[nonzero]
        counts = np.bincount(cols, minlength=X.shape[1])
        if ((counts > 0) & (counts < X.shape[0])).any():
            return
        low, high = np.full(X.shape[1], np.inf), np.full(X.shape[1], -np.inf)
        np.minimum.at(low, cols, values)
        np.maximum.at(high, cols, values)
        if (high > low).any():
            return
    elif isinstance(X, pd.DataFrame):
        for col in range(X.shape[1]):
            values = X.iloc[:, col]
            # A missing number is imputed (so it tells nothing); a missing category is a
            # category of its own.
            numeric = pd.api.types.is_numeric_dtype(values.dtype)
            try:
                if values.nunique(dropna=numeric) > 1:
                    return
            except TypeError:  # unhashable cells: categories by their text, so they may vary
                return
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column
            if (np.nanmax(X, axis=0) > np.nanmin(X, axis=0)).any():
                return
    raise DataError(f"no feature column varies: all {X.shape[1]} are constant or empty, so "
                    "there is nothing to learn from; check the data (or --target)")


def _preview(cols) -> str:
    cols = [_label(c) for c in cols]
    return ", ".join(cols[:8]) + (f", ... ({len(cols)} in all)" if len(cols) > 8 else "")


def _label(value, limit: int = 40) -> str:
    """A name or value from the data as a short piece of a one-line message: control
    characters (a quoted newline in a CSV header) escaped, anything long cut."""
    text = str(value)
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _shown(value) -> str:
    """``repr(value)``, a string among them made a :func:`_label` first."""
    return repr(_label(value)) if isinstance(value, str) else repr(value)


def _as_target(y) -> np.ndarray:
    if isinstance(y, (pd.Series, pd.Index)):
        y = y.to_numpy()
    elif isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise DataError("y must be one column")
        y = y.iloc[:, 0].to_numpy()
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:
        y = y.ravel()
    if y.ndim != 1:
        raise DataError(f"y must be 1-dimensional, got shape {y.shape}")
    if y.dtype == object:
        # Numbers held as Python objects are numbers: without this a float target would
        # look like labels and become a classification with one class per value.
        kind = pd.api.types.infer_dtype(y, skipna=False)
        if kind == "boolean":
            y = y.astype(bool)
        elif kind == "integer":
            try:
                y = y.astype(np.int64)
            except OverflowError:  # integers past 64 bits: numbers still, as floats
                y = y.astype(np.float64)
        elif kind in ("floating", "mixed-integer-float", "decimal"):
            y = y.astype(np.float64)
    if y.dtype == object or pd.api.types.is_string_dtype(y.dtype):
        missing = pd.isna(y)
    elif np.issubdtype(y.dtype, np.number):
        if np.isinf(y).any():
            raise DataError(f"the target holds {int(np.isinf(y).sum())} infinite value(s); drop "
                        "those rows or replace the values")
        missing = np.isnan(y) if np.issubdtype(y.dtype, np.floating) else np.zeros(len(y), bool)
    else:
        missing = pd.isna(y)
    if missing.any():
        raise DataError(f"the target has {int(missing.sum())} missing value(s); drop those "
                        "rows or fill them in")
    return y


def _regression_target(y: np.ndarray) -> np.ndarray:
    try:
        return np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        example = next((v for v in y if not _is_number(v)), None)
        raise DataError(f"task is regression but the target is not numeric (it holds "
                        f"{_shown(str(example))}); use --task classification, or a numeric "
                        "target") from None


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def detect_task(y: np.ndarray, task: str = "auto") -> tuple[str, np.ndarray | None]:
    """Regression, binary or multiclass; ``task`` overrides what the target suggests."""
    numeric = np.issubdtype(y.dtype, np.number) or y.dtype == bool
    if task == "regression":
        return "regression", None
    classes = np.unique(y) if (numeric or y.dtype != object) else np.unique(y.astype(str))
    if task == "auto":
        integral = numeric and (y.dtype == bool or np.all(np.mod(y, 1) == 0))
        if not numeric or (integral and len(classes) <= 20) or len(classes) == 2:
            task = "classification"
        else:
            return "regression", None
    if len(classes) < 2:
        only = classes[0].item() if isinstance(classes[0], np.generic) else classes[0]
        raise DataError(f"the target has a single class ({_shown(only)}); classification needs "
                        "at least two: check that --target names the right column")
    kind = "binary" if len(classes) == 2 else "multiclass"
    if task in ("binary", "multiclass") and task != kind:
        raise DataError(f"task {task!r} asked for, but the target has {len(classes)} classes; "
                        f"use --task {kind} or --task auto")
    return kind, classes


def _digest(X, y) -> str:
    h = hashlib.sha256()
    h.update(str(X.shape).encode())
    if sp.issparse(X):
        for arr in (X.indptr, X.indices, X.data):
            h.update(np.ascontiguousarray(arr).tobytes())
    elif isinstance(X, pd.DataFrame):
        h.update(",".join(X.columns).encode())
        h.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    else:
        h.update(np.ascontiguousarray(X).tobytes())
    h.update(pd.util.hash_array(np.asarray(y, dtype=object) if y.dtype == object else y).tobytes())
    return h.hexdigest()[:16]
