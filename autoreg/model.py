"""Predictors that run from the compact export: numpy only, raw rows in, predictions out."""

from __future__ import annotations

import numpy as np

from . import export
from .errors import DataError, ExportFormatError, UsageError

# Loading a model needs numpy alone: pandas and scipy are imported only when the input to
# predict is a DataFrame or a sparse matrix, which means the caller has them loaded anyway.

MISSING = "<NA>"  # the category that stands for a missing value in a categorical column


def _is_frame(X) -> bool:
    return type(X).__module__.startswith("pandas") and hasattr(X, "iloc")


def _is_sparse(X) -> bool:
    return type(X).__module__.startswith("scipy.sparse")


def _missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return value != value
    return type(value).__name__ in ("NAType", "NaTType")


def categorical_values(column) -> np.ndarray:
    """Category labels as strings, with missing values as their own label."""
    values = (column.to_numpy(dtype=object) if hasattr(column, "to_numpy")
              else np.asarray(column, dtype=object))
    return np.array([MISSING if _missing(v) else str(v) for v in values], dtype=object)


def category_codes(labels: np.ndarray, categories) -> np.ndarray:
    """Index of each label in ``categories``; -1 for a label not among them."""
    lookup = {c: i for i, c in enumerate(categories)}
    return np.fromiter((lookup.get(v, -1) for v in labels), dtype=np.int64, count=len(labels))


def _jsonable(values) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in values]


class LinearPredictor:
    """A linear or logistic model over raw input columns.

    Scaling is folded into the weights, so the file holds, for each kept input column, its weight
    row and its imputation value (numeric) or the categories that carry weight (categorical).
    """

    kind = "linear"

    def __init__(self, meta: dict, tensors: dict):
        # ``tensors`` is what gets written; a Quantized tensor computes with its float values.
        self.meta, self.tensors = meta, tensors
        t = {k: (v.dequantize() if isinstance(v, export.Quantized) else v)
             for k, v in tensors.items()}
        self.task = meta["task"]
        self.classes_ = None if meta.get("classes") is None else np.asarray(meta["classes"])
        inp = meta["input"]
        self.input_type, self.n_columns = inp["type"], inp["n_columns"]
        self._b = t["b"]
        width = self._b.shape[0] if self._b.ndim == 1 else -1
        self._num_pos = t.get("num_pos", np.zeros(0, np.int64))
        self._num_names = meta.get("num")
        self._fill = t.get("num_fill")
        self._exp = t.get("num_exp")
        self._w_num = t.get("w_num", np.zeros((0, width), np.float32))
        self._cats = meta.get("cat", [])
        self._w_cat = t.get("w_cat", np.zeros((0, width), np.float32))
        self._check()
        self._num_pos = self._num_pos.astype(np.int64)
        self._b = self._b.astype(np.float64)
        self._w_num = self._w_num.astype(np.float64)
        self._w_cat = self._w_cat.astype(np.float64)
        # Inputs are multiplied by powers of two: exact in floating point.
        self._mult = None if self._exp is None else np.ldexp(1.0, self._exp.astype(np.int64))

    def _need(self, ok: bool, what: str) -> None:
        if not ok:
            raise ExportFormatError(f"inconsistent autoreg model file: {what}")

    def _check(self) -> None:
        """Refuse a file whose parts do not fit together, before it mispredicts."""
        need = self._need
        n_out = self.meta["n_out"]
        need(self.task in ("regression", "binary", "multiclass"), f"unknown task {self.task!r}")
        need(type(n_out) is int and n_out >= 1, "n_out must be a positive integer")
        need(self.input_type in ("frame", "array", "sparse"), "unknown input type")
        need(type(self.n_columns) is int and self.n_columns >= 0, "bad column count")
        if self.task == "regression":
            need(n_out == 1, "a regression model has one output")
        else:
            need(self.classes_ is not None and self.classes_.ndim == 1, "classes are missing")
            n_classes = len(self.classes_)
            need(n_classes == 2 and n_out == 1 if self.task == "binary"
                 else n_classes == n_out >= 3, "classes and outputs do not match")
        need(self._b.ndim == 1 and self._b.dtype.kind == "f", "the intercept must be a vector")
        width = self._b.shape[0]
        if self.kind == "linear":
            need(width == n_out, "the intercept does not match n_out")
        pos, k = self._num_pos, len(self._num_pos)
        need(pos.ndim == 1 and pos.dtype.kind in "ui", "num_pos must be integer positions")
        need(k == 0 or int(pos.max()) < self.n_columns, "a position is past the last column")
        need(self._w_num.shape == (k, width), "w_num does not match num_pos")
        need(self._fill is None or self._fill.shape == (k,), "num_fill does not match num_pos")
        need(self._exp is None or (self._exp.shape == (k,) and self._exp.dtype == np.int8),
             "num_exp does not match num_pos")
        need(self._num_names is None or (isinstance(self._num_names, list)
                                         and len(self._num_names) == k), "bad numeric names")
        need(isinstance(self._cats, list) and all(
            isinstance(c, dict) and isinstance(c.get("cats"), list) and type(c.get("pos")) is int
            and 0 <= c["pos"] < self.n_columns and "col" in c for c in self._cats),
            "bad categorical columns")
        n_cat = sum(len(c["cats"]) for c in self._cats)
        need(self._w_cat.shape == (n_cat, width), "w_cat does not match the categories")

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_fit(cls, prep, coef, intercept: np.ndarray, task: str,
                 classes=None) -> LinearPredictor:
        """The model over raw columns from ``coef`` (features x outputs, an array or
        :class:`~autoreg.export.Quantized`) fitted on ``prep``'s standardized features."""
        meta, tensors = cls.input_layer(prep, coef, intercept)
        n_out = int(tensors["b"].shape[0])
        meta = {"format": 1, "kind": cls.kind, "task": task, "n_out": n_out,
                "classes": None if classes is None else _jsonable(classes), **meta}
        return cls(meta, tensors)

    @staticmethod
    def input_layer(prep, coef, intercept) -> tuple[dict, dict]:
        """The first affine layer over raw input columns: header fields and tensors.

        Rows of ``coef`` that are all zero drop their feature (a categorical column goes once
        none of its categories carries weight). Float weights get the standardization folded
        in. Quantized codes cannot absorb it, so they are taken to act on features scaled by
        a power of two instead (:func:`pow2_scale`): the file stores one int8 exponent per kept
        numeric column, the inputs are multiplied by ``2**exponent`` (exact in floating point)
        and the centering goes into the bias.
        """
        quantized = isinstance(coef, export.Quantized)
        values = coef.dequantize().astype(np.float64) if quantized \
            else np.asarray(coef, dtype=np.float64)
        if values.shape[0] != prep.n_features or values.ndim > 2:
            # scikit-learn stores coef_ as outputs x features; a silent reshape would scramble it.
            raise ValueError(f"coef must be features x outputs ({prep.n_features} rows), "
                             f"got shape {values.shape}")
        values = values.reshape(prep.n_features, -1)
        b = np.asarray(intercept, dtype=np.float64).reshape(-1).copy()
        if len(b) == 1 and values.shape[1] > 1:
            b = np.repeat(b, values.shape[1])
        n_num = len(prep.num_cols)
        keep = np.flatnonzero(np.any(values[:n_num] != 0, axis=1))
        if quantized:
            exps = pow2_exponents(prep.scale[keep])
            w_num = coef.take(keep)
            # What the loaded model computes: (x * 2**exps) @ w + b, the centering in b.
            b -= np.ldexp(prep.mean[keep], exps.astype(np.int64)) @ values[keep]
        else:
            w_num = values[keep] / prep.scale[keep, None]
            b -= prep.mean[keep] @ w_num
            w_num = w_num.astype(np.float32)
        meta = {"input": {"type": "sparse" if prep.sparse_input else
                          ("frame" if prep.frame else "array"), "n_columns": int(prep.n_columns)}}
        index_dtype = export._index_dtype(max(prep.n_columns, 1))
        tensors = {"num_pos": prep.num_cols[keep].astype(index_dtype), "w_num": w_num}
        if quantized:
            tensors["num_exp"] = exps
        if prep.frame:
            meta["num"] = _jsonable(prep.names[prep.num_cols[k]] for k in keep)
        if not prep.sparse_input:
            tensors["num_fill"] = prep.fill[keep].astype(np.float32)
        cats, rows_cat, start = [], [], n_num
        for col, categories in zip(prep.cat_cols, prep.categories, strict=True):
            block = values[start: start + len(categories)]
            rows = np.flatnonzero(np.any(block != 0, axis=1))
            if len(rows):
                cats.append({"col": _jsonable([prep.names[col]])[0], "pos": int(col),
                             "cats": [str(categories[r]) for r in rows]})
                rows_cat.append(start + rows)
            start += len(categories)
        if cats:
            meta["cat"] = cats
            rows_cat = np.concatenate(rows_cat)
            tensors["w_cat"] = coef.take(rows_cat) if quantized \
                else values[rows_cat].astype(np.float32)
        tensors["b"] = b
        return meta, tensors

    def to_bytes(self) -> bytes:
        return export.dumps(self.meta, self.tensors)

    def save(self, path) -> int:
        """Write the compact export to ``path``; return its size in bytes."""
        data = self.to_bytes()
        try:
            with open(path, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}; choose a writable "
                             "path") from None
        return len(data)

    # -- predicting -----------------------------------------------------------------------
    @property
    def n_features_used(self) -> int:
        return len(self._num_pos) + len(self._cats)

    def decision_function(self, X) -> np.ndarray:
        out = self._affine(X)
        return out[:, 0] if out.shape[1] == 1 else out

    def _affine(self, X) -> np.ndarray:
        """The first affine layer on raw rows: samples x width, always 2-d."""
        X, by_name = self._input(X)
        out = np.tile(self._b, (X.shape[0], 1))
        if len(self._num_pos):
            num = self._numeric(X, by_name)
            if self._mult is not None:
                num = num.multiply(self._mult[None, :]).tocsr() if _is_sparse(num) \
                    else num * self._mult[None, :]
            out += num @ self._w_num
        if self._cats:
            offset = 0
            w = self._w_cat
            for spec in self._cats:
                k = len(spec["cats"])
                if by_name:
                    col = X[spec["col"]]
                elif _is_frame(X):
                    col = X.iloc[:, spec["pos"]]
                else:
                    col = X[:, spec["pos"]]
                codes = category_codes(categorical_values(col), spec["cats"])
                block = np.vstack([w[offset: offset + k], np.zeros((1, w.shape[1]))])
                out += block[codes]  # code -1 (unseen category) picks the zero row
                offset += k
        return np.asarray(out)

    def _input(self, X) -> tuple[object, bool]:
        """``X`` as a DataFrame, CSR matrix or 2-d array, and whether to find columns by name."""
        if _is_frame(X):
            names = list(self._num_names or []) + [c["col"] for c in self._cats]
            if names and self.input_type == "frame" and all(n in X.columns for n in names):
                return X, True
            self._check_width(X)
            return X, False
        if _is_sparse(X):
            if X.ndim != 2:
                raise DataError(f"expected a 2-dimensional input, got shape {X.shape}")
            self._check_width(X)
            import scipy.sparse as sp

            return sp.csr_matrix(X), False
        X = np.asarray(X)
        if X.ndim != 2:
            hint = "; for one row use X.reshape(1, -1)" if X.ndim == 1 else ""
            raise DataError(f"expected a 2-dimensional input, got shape {X.shape}{hint}")
        self._check_width(X)
        return X, False

    def _numeric(self, X, by_name: bool) -> np.ndarray:
        if _is_sparse(X):
            return X[:, self._num_pos]  # stays sparse; sparse @ dense gives a dense result
        if _is_frame(X):
            import pandas as pd

            num = X[self._num_names] if by_name else X.iloc[:, self._num_pos]
            num = num.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64,
                                                                       na_value=np.nan)
        elif X.dtype.kind in "OSU":  # mixed rows of a frame model given as an array
            import pandas as pd

            num = pd.DataFrame(X[:, self._num_pos]).apply(pd.to_numeric, errors="coerce")
            num = num.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
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


def pow2_exponents(scale: np.ndarray) -> np.ndarray:
    """For each standard deviation, the int8 exponent ``e`` with ``2**-e`` nearest to it."""
    with np.errstate(divide="ignore"):
        e = -np.rint(np.log2(np.asarray(scale, dtype=np.float64)))
    return np.clip(np.nan_to_num(e, nan=0.0, posinf=0.0, neginf=0.0), -126, 126).astype(np.int8)


def pow2_scale(scale: np.ndarray) -> np.ndarray:
    """How much larger weights are on features standardized by ``scale`` than on features
    multiplied by ``2**pow2_exponents(scale)``: a factor in [0.71, 1.42] per feature.

    Quantization (and the rest of compression) sees weights on those power-of-two scaled
    features, which a loaded model can reproduce exactly.
    """
    scale = np.asarray(scale, dtype=np.float64)
    return np.ldexp(scale, pow2_exponents(scale).astype(np.int64))


def proba_from_decision(d: np.ndarray, task: str) -> np.ndarray:
    if task == "binary":
        p = 1.0 / (1.0 + np.exp(-np.clip(d, -500, 500)))
        return np.column_stack([1 - p, p])
    z = d - d.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


_KINDS = {"linear": LinearPredictor}


def _kind(kind):
    if kind == "mlp" and kind not in _KINDS:
        from .model_mlp import MLPPredictor

        _KINDS["mlp"] = MLPPredictor
    return _KINDS.get(kind)


def from_export(meta: dict, tensors: dict):
    kind = meta.get("kind")
    if not isinstance(kind, str) or _kind(kind) is None:
        raise ExportFormatError(f"unknown model kind {kind!r} (written by a newer autoreg?)")
    try:
        return _KINDS[kind](meta, tensors)
    except KeyError as exc:
        raise ExportFormatError(f"incomplete autoreg model file: missing {exc}") from None
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ExportFormatError(f"inconsistent autoreg model file: {exc}") from None
