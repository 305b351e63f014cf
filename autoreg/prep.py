"""Preprocessing fitted on training rows only: imputation, scaling, one-hot encoding.

The fitted statistics stay readable (``fill``, ``mean``, ``scale``, ``categories``) because the
compact export folds them into the model instead of shipping a transformer.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import DataError, UsageError
from .model import MISSING, categorical_values, category_codes  # noqa: F401 (MISSING: re-export)


def categorical_columns(df: pd.DataFrame) -> list[str]:
    cats = []
    for col in df.columns:
        dtype = df[col].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            continue
        if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
            raise DataError(f"column {col!r} holds dates or durations; convert it to numbers first")
        cats.append(col)
    return cats


class Prep:
    """Turns raw rows into the standardized float matrix the models are fitted on."""

    def fit(self, X) -> Prep:
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        self.sparse_input = sp.issparse(X)
        self.frame = isinstance(X, pd.DataFrame)
        self.n_columns = X.shape[1]
        self.names = list(X.columns) if self.frame else None
        if self.sparse_input:
            scaler = StandardScaler(with_mean=False).fit(X)
            self.num_cols = np.arange(X.shape[1])
            self.fill = np.zeros(X.shape[1])
            self.mean = np.zeros(X.shape[1])
            self.scale = scaler.scale_.copy()
            self.cat_cols, self.categories = [], []
            return self
        if self.frame:
            cat_names = categorical_columns(X)
            self.cat_cols = [X.columns.get_loc(c) for c in cat_names]
            self.num_cols = np.array([i for i in range(X.shape[1]) if i not in set(self.cat_cols)],
                                     dtype=np.int64)
            num = X.iloc[:, self.num_cols].to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            self.cat_cols = []
            self.num_cols = np.arange(X.shape[1])
            num = np.asarray(X, dtype=np.float64)
        if len(self.num_cols):
            self.fill = _medians(num)
            scaler = StandardScaler().fit(_impute(num, self.fill))
            self.mean, self.scale = scaler.mean_.copy(), scaler.scale_.copy()
        else:
            self.fill = self.mean = self.scale = np.zeros(0)
        self.categories = []
        if self.cat_cols:
            enc = OneHotEncoder(handle_unknown="ignore")
            enc.fit(np.column_stack([categorical_values(X.iloc[:, c]) for c in self.cat_cols]))
            self.categories = [list(c) for c in enc.categories_]
        return self

    @property
    def n_features(self) -> int:
        return len(self.num_cols) + sum(len(c) for c in self.categories)

    def feature_columns(self) -> np.ndarray:
        """For every output feature, the position of the input column it comes from."""
        parts = [np.asarray(self.num_cols, dtype=np.int64)]
        parts += [np.full(len(cats), col, dtype=np.int64)
                  for col, cats in zip(self.cat_cols, self.categories, strict=True)]
        return np.concatenate(parts)

    def feature_scale(self) -> np.ndarray:
        """The standard deviation each output feature was divided by (1 for one-hot)."""
        ones = [np.ones(len(c)) for c in self.categories]
        return np.concatenate([np.asarray(self.scale, dtype=np.float64), *ones])

    def feature_groups(self, column_groups: np.ndarray) -> np.ndarray:
        """The group id of every output feature, given one per input column."""
        return np.asarray(column_groups, dtype=np.int64)[self.feature_columns()]

    def transform(self, X):
        if self.sparse_input:
            out = sp.csr_matrix(X, dtype=np.float64, copy=True)
            out.data /= self.scale[out.indices]
            return out
        if self.frame:
            if not isinstance(X, pd.DataFrame):
                X = pd.DataFrame(np.asarray(X, dtype=object), columns=self.names)
            num = X.iloc[:, self.num_cols].to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            num = np.asarray(X, dtype=np.float64)
        dense = (_impute(num, self.fill) - self.mean) / self.scale
        if not self.cat_cols:
            return dense
        blocks = [sp.csr_matrix(dense)]
        for col, cats in zip(self.cat_cols, self.categories, strict=True):
            codes = category_codes(categorical_values(X.iloc[:, col]), cats)
            rows = np.flatnonzero(codes >= 0)
            blocks.append(sp.csr_matrix((np.ones(len(rows)), (rows, codes[rows])),
                                        shape=(len(codes), len(cats))))
        out = sp.hstack(blocks, format="csr")
        # One-hot columns keep the matrix sparse only where that pays off.
        if out.nnz > 0.3 * out.shape[0] * out.shape[1]:
            return out.toarray()
        return out


def column_groups(spec, n_columns: int, names=None) -> np.ndarray:
    """One group id per input column from a user's ``groups``; unlisted columns stand alone.

    ``spec`` is a list of groups or a dict of named groups, each group a list of column names
    (for a DataFrame) or positions. The one-hot columns of a categorical column always share
    its group.
    """
    ids = np.arange(n_columns, dtype=np.int64)
    if spec is None:
        return ids
    if isinstance(spec, dict):
        groups = list(spec.items())
    elif isinstance(spec, (list, tuple)):
        groups = [(str(i), g) for i, g in enumerate(spec)]
    else:
        raise UsageError("groups must be a list of column lists or a dict of named column "
                         f"lists, got {type(spec).__name__}")
    lookup = {} if names is None else {str(n): i for i, n in enumerate(names)}
    owner: dict[int, str] = {}
    for label, cols in groups:
        if isinstance(cols, (str, int)) or not isinstance(cols, (list, tuple)) or not cols:
            raise UsageError(f"group {label!r} must be a non-empty list of columns")
        for col in cols:
            if isinstance(col, bool):
                pos = None
            elif isinstance(col, (int, np.integer)):
                pos = int(col) if 0 <= col < n_columns else None
            else:
                pos = lookup.get(str(col))
            if pos is None:
                raise UsageError(f"group {label!r} names column {col!r}, which the data does "
                                 f"not have" + ("" if names is None else
                                                " (use column names from the header)"))
            if pos in owner:
                raise UsageError(f"column {col!r} is in two groups: {owner[pos]!r} and "
                                 f"{label!r}")
            owner[pos] = label
        first = min(owner_pos for owner_pos, lab in owner.items() if lab == label)
        for pos, lab in owner.items():
            if lab == label:
                ids[pos] = first
    return ids


def _medians(num: np.ndarray) -> np.ndarray:
    """Each column's median over its present values; 0 for a column with none."""
    if not np.isnan(num).any():
        return np.median(num, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column
        fill = np.nanmedian(num, axis=0)
    return np.where(np.isnan(fill), 0.0, fill)


def _impute(num: np.ndarray, fill: np.ndarray) -> np.ndarray:
    mask = np.isnan(num)
    if mask.any():
        num = np.where(mask, fill, num)
    return num
