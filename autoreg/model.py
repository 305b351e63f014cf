"""Predictors that run from the compact export: numpy only, raw rows in, predictions out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import export
from .errors import DataError, ExportFormatError
from .prep import categorical_values


def _jsonable(values) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in values]


class LinearPredictor:
    """A linear or logistic model over raw input columns.

    Scaling is folded into the weights, so the file holds, for each kept input column, its weight
    row and its imputation value (numeric) or the categories that carry weight (categorical).
    """

    kind = "linear"

    def __init__(self, meta: dict, tensors: dict[str, np.ndarray]):
        self.meta, self.tensors = meta, tensors
        self.task = meta["task"]
        self.classes_ = None if meta.get("classes") is None else np.asarray(meta["classes"])
        inp = meta["input"]
        self.input_type, self.n_columns = inp["type"], inp["n_columns"]
        self._num_pos = tensors.get("num_pos", np.zeros(0, np.int64)).astype(np.int64)
        self._num_names = meta.get("num")
        self._fill = tensors.get("num_fill")
        self._w_num = tensors.get("w_num", np.zeros((0, meta["n_out"]), np.float32))
        self._cats = meta.get("cat", [])
        self._w_cat = tensors.get("w_cat", np.zeros((0, meta["n_out"]), np.float32))
        self._b = tensors["b"].astype(np.float64)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_fit(cls, prep, coef: np.ndarray, intercept: np.ndarray, task: str,
                 classes=None) -> LinearPredictor:
        """Fold ``prep``'s statistics into ``coef`` (features x outputs) and keep non-zero rows."""
        coef = np.asarray(coef, dtype=np.float64).reshape(prep.n_features, -1)
        b = np.asarray(intercept, dtype=np.float64).reshape(-1).copy()
        n_num = len(prep.num_cols)
        keep = np.flatnonzero(np.any(coef[:n_num] != 0, axis=1))
        w_num = coef[keep] / prep.scale[keep, None]
        b -= prep.mean[keep] @ w_num
        meta = {"format": 1, "kind": cls.kind, "task": task, "n_out": int(coef.shape[1]),
                "classes": None if classes is None else _jsonable(classes),
                "input": {"type": "sparse" if prep.sparse_input else
                          ("frame" if prep.frame else "array"), "n_columns": prep.n_columns}}
        tensors = {"num_pos": prep.num_cols[keep].astype(np.int64), "w_num": w_num.astype(np.float32)}
        if prep.frame:
            meta["num"] = [prep.names[prep.num_cols[k]] for k in keep]
        if not prep.sparse_input:
            tensors["num_fill"] = prep.fill[keep].astype(np.float32)
        cats, w_cat, start = [], [], n_num
        for col, categories in zip(prep.cat_cols, prep.categories):
            block = coef[start: start + len(categories)]
            start += len(categories)
            rows = np.flatnonzero(np.any(block != 0, axis=1))
            if len(rows):
                cats.append({"col": prep.names[col], "pos": int(col),
                             "cats": [categories[r] for r in rows]})
                w_cat.append(block[rows])
        if cats:
            meta["cat"] = cats
            tensors["w_cat"] = np.vstack(w_cat).astype(np.float32)
        tensors["b"] = b
        # Positions fit the narrowest unsigned type; the decoder widens them again.
        tensors["num_pos"] = tensors["num_pos"].astype(export._index_dtype(max(prep.n_columns, 1)))
        return cls(meta, tensors)

    def to_bytes(self) -> bytes:
        return export.dumps(self.meta, self.tensors)

    def save(self, path) -> int:
        data = self.to_bytes()
        with open(path, "wb") as fh:
            fh.write(data)
        return len(data)

    # -- predicting -----------------------------------------------------------------------
    @property
    def n_features_used(self) -> int:
        return len(self._num_pos) + len(self._cats)

    def decision_function(self, X) -> np.ndarray:
        n = X.shape[0]
        out = np.tile(self._b, (n, 1))
        if len(self._num_pos):
            out += self._numeric(X) @ self._w_num.astype(np.float64)
        if self._cats:
            if not isinstance(X, pd.DataFrame):
                X = pd.DataFrame(np.asarray(X, dtype=object))
                by_name = False
            else:
                by_name = True
            offset = 0
            w = self._w_cat.astype(np.float64)
            for spec in self._cats:
                k = len(spec["cats"])
                col = X[spec["col"]] if by_name and spec["col"] in X.columns else X.iloc[:, spec["pos"]]
                codes = pd.Categorical(categorical_values(col), categories=spec["cats"]).codes
                block = np.vstack([w[offset: offset + k], np.zeros((1, w.shape[1]))])
                out += block[codes]  # code -1 (unseen category) picks the zero row
                offset += k
        return out[:, 0] if out.shape[1] == 1 else out

    def _numeric(self, X) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            if self._num_names is not None and all(c in X.columns for c in self._num_names):
                num = X[self._num_names]
            else:
                self._check_width(X)
                num = X.iloc[:, self._num_pos]
            num = num.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64,
                                                                       na_value=np.nan)
        elif sp.issparse(X):
            self._check_width(X)
            return sp.csr_matrix(X)[:, self._num_pos]
        else:
            X = np.asarray(X)
            if X.ndim != 2:
                raise DataError(f"expected a 2-dimensional input, got shape {X.shape}")
            self._check_width(X)
            num = X[:, self._num_pos].astype(np.float64)
        if self._fill is not None:
            mask = np.isnan(num)
            if mask.any():
                num = np.where(mask, self._fill.astype(np.float64)[None, :], num)
        return num

    def _check_width(self, X) -> None:
        if X.shape[1] != self.n_columns:
            raise DataError(f"the model takes {self.n_columns} columns, got {X.shape[1]}")

    def predict(self, X) -> np.ndarray:
        d = self.decision_function(X)
        if self.task == "regression":
            return d
        if self.task == "binary":
            return self.classes_[(d > 0).astype(int)]
        return self.classes_[np.argmax(d, axis=1)]

    def predict_proba(self, X) -> np.ndarray:
        if self.task == "regression":
            raise AttributeError("predict_proba is for classification models")
        return proba_from_decision(self.decision_function(X), self.task)

    def __repr__(self) -> str:
        return (f"<autoreg LinearPredictor task={self.task} "
                f"features_used={self.n_features_used}/{self.n_columns}>")


def proba_from_decision(d: np.ndarray, task: str) -> np.ndarray:
    if task == "binary":
        p = 1.0 / (1.0 + np.exp(-np.clip(d, -500, 500)))
        return np.column_stack([1 - p, p])
    z = d - d.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


_KINDS = {"linear": LinearPredictor}


def from_export(meta: dict, tensors: dict):
    kind = meta.get("kind")
    if kind not in _KINDS:
        raise ExportFormatError(f"unknown model kind {kind!r} (written by a newer autoreg?)")
    try:
        return _KINDS[kind](meta, tensors)
    except (KeyError, TypeError) as exc:
        raise ExportFormatError(f"incomplete autoreg model file: missing {exc}") from None
