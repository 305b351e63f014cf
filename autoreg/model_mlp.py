"""The shippable feed-forward network: numpy only at load and predict time.

The first layer is :class:`~autoreg.model.LinearPredictor`'s affine layer over raw input
columns (preprocessing folded in, unused features gone); the further layers are tensors
``w1, b1, w2, b2, ...`` (inputs x outputs) with ``meta["layers"]`` listing the output width of
every layer, the first included and ``n_out`` last. ReLU follows every layer but the last.

Before export the network loses its dead hidden units for real: a unit whose incoming weights
are all zero outputs the constant ``relu(bias)``, which is folded into the next layer's bias; a
unit whose outgoing weights are all zero contributes nothing. Either way its column, bias and
outgoing row leave the file, and a feature whose weights all went with them leaves too.
"""

from __future__ import annotations

import re

import numpy as np

from . import export
from .model import LinearPredictor, _jsonable

_LAYER_TENSOR = re.compile(r"^[wb]([1-9][0-9]*)$")


def _values(w) -> np.ndarray:
    """The float64 values a model computes with (dequantized codes, or the array)."""
    if isinstance(w, export.Quantized):
        return w.dequantize().astype(np.float64)
    return np.asarray(w, dtype=np.float64)


def _dequantized(t) -> np.ndarray:
    return t.dequantize() if isinstance(t, export.Quantized) else np.asarray(t)


def take(w, index, axis: int):
    """``w`` restricted to ``index`` along ``axis`` (0: rows, 1: columns); a
    :class:`~autoreg.export.Quantized` matrix keeps its codes, and its per-column scales follow
    the columns kept."""
    if isinstance(w, export.Quantized):
        return w.take(index, axis)
    return np.take(np.asarray(w), index, axis=axis)


def _zero(w, index, axis: int):
    """A copy of ``w`` with rows (axis 0) or columns (axis 1) ``index`` set to zero."""
    if isinstance(w, export.Quantized):
        codes = w.codes.copy()
        codes[(index,) if axis == 0 else (slice(None), index)] = 0
        return export.Quantized(codes, w.scales, w.bits)
    w = np.array(w, copy=True)
    w[(index,) if axis == 0 else (slice(None), index)] = 0
    return w


def without_dead_units(weights: list, biases: list) -> tuple[list, list]:
    """The same network with every hidden unit that cannot affect the output zeroed out.

    A unit with all-zero incoming weights outputs ``relu(b_j)`` for every row: that times its
    outgoing row is added to the next bias. A unit with an all-zero outgoing row contributes
    nothing. Either way its incoming column, bias and outgoing row become zero, which may kill
    units next to it, so this repeats until nothing changes. Shapes stay; weights stay arrays
    or ``Quantized`` as given; biases are float64. Predictions do not change (up to rounding).
    """
    Ws = list(weights)
    bs = [np.array(b, dtype=np.float64) for b in biases]
    changed = True
    while changed:
        changed = False
        for layer in range(len(Ws) - 1):
            w_out = _values(Ws[layer + 1])
            live_in = np.any(_values(Ws[layer]) != 0, axis=0)
            live_out = np.any(w_out != 0, axis=1)
            dead = ~(live_in & live_out)
            todo = np.flatnonzero(dead & (live_in | live_out | (bs[layer] != 0)))
            if not len(todo):
                continue
            constant = todo[~live_in[todo] & live_out[todo]]
            if len(constant):
                bs[layer + 1] += np.maximum(bs[layer][constant], 0.0) @ w_out[constant]
            Ws[layer] = _zero(Ws[layer], todo, 1)
            Ws[layer + 1] = _zero(Ws[layer + 1], todo, 0)
            bs[layer][todo] = 0.0
            changed = True
    return Ws, bs


def remove_dead_units(weights: list, biases: list) -> tuple[list, list]:
    """:func:`without_dead_units`, then those units dropped: smaller matrices."""
    Ws, bs = without_dead_units(weights, biases)
    for layer in range(len(Ws) - 1):
        keep = np.flatnonzero(np.any(_values(Ws[layer]) != 0, axis=0))
        Ws[layer] = take(Ws[layer], keep, 1)
        bs[layer] = bs[layer][keep]
        Ws[layer + 1] = take(Ws[layer + 1], keep, 0)
    return Ws, bs


class MLPPredictor(LinearPredictor):
    """A ReLU network over raw input columns, read from the compact export."""

    kind = "mlp"

    def __init__(self, meta: dict, tensors: dict):
        layers = meta.get("layers")
        self._layers = layers
        self._ws, self._bs = [], []
        if isinstance(layers, list):
            for k in range(1, len(layers)):
                self._ws.append(_dequantized(tensors[f"w{k}"]))
                self._bs.append(_dequantized(tensors[f"b{k}"]))
        super().__init__(meta, tensors)
        self._ws = [w.astype(np.float64) for w in self._ws]
        self._bs = [b.astype(np.float64) for b in self._bs]

    def _check(self) -> None:
        super()._check()
        need = self._need
        layers = self._layers
        need(isinstance(layers, list) and len(layers) >= 2
             and all(type(n) is int and n >= 0 for n in layers), "bad layer widths")
        need(layers[0] == self._b.shape[0], "the first layer's width does not match b")
        need(layers[-1] == self.meta["n_out"], "the last layer's width is not n_out")
        names = {m.group(1) for m in map(_LAYER_TENSOR.match, self.tensors) if m}
        need(names == {str(k) for k in range(1, len(layers))},
             "the layer tensors do not match the layer widths")
        for k, (w, b) in enumerate(zip(self._ws, self._bs, strict=True), start=1):
            need(w.dtype.kind == "f" and b.dtype.kind == "f", f"layer {k} is not float")
            need(w.shape == (layers[k - 1], layers[k]), f"w{k} does not match the layer widths")
            need(b.shape == (layers[k],), f"b{k} does not match the layer widths")
            need(bool(np.isfinite(w).all() and np.isfinite(b).all()),
                 f"layer {k} holds a value that is not finite")
        for name in ("w_num", "w_cat", "b"):
            t = getattr(self, "_" + name)
            need(bool(np.isfinite(np.asarray(t, dtype=np.float64)).all()),
                 f"{name} holds a value that is not finite")

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_fit(cls, prep, weights: list, biases: list, task: str,
                 classes=None) -> MLPPredictor:
        """The network over raw columns from per-layer ``weights`` (inputs x outputs, arrays or
        :class:`~autoreg.export.Quantized`) and ``biases``, with dead units removed.

        The first layer is read as :meth:`LinearPredictor.input_layer` reads ``coef``: an array
        acts on ``prep``'s standardized features, quantized codes on power-of-two scaled ones.
        """
        if len(weights) < 2 or len(weights) != len(biases):
            raise ValueError("an mlp needs matching weights and biases for at least 2 layers")
        Ws, bs = remove_dead_units(weights, biases)
        meta, tensors = cls.input_layer(prep, Ws[0], bs[0])
        last = len(Ws) - 1
        for k in range(1, len(Ws)):
            w = Ws[k]
            tensors[f"w{k}"] = w if isinstance(w, export.Quantized) \
                else np.asarray(w, dtype=np.float32)
            # Hidden biases came from float32 training; the last one may carry the target's
            # mean and scale, which float32 would round.
            tensors[f"b{k}"] = bs[k].astype(np.float64 if k == last else np.float32)
        n_out = int(bs[-1].shape[0])
        meta = {"format": 1, "kind": cls.kind, "task": task, "n_out": n_out,
                "classes": None if classes is None else _jsonable(classes), **meta,
                "layers": [int(b.shape[0]) for b in bs]}
        return cls(meta, tensors)

    # -- predicting -----------------------------------------------------------------------
    @property
    def hidden_units(self) -> list[int]:
        """The width of every hidden layer (after dead units were removed)."""
        return list(self._layers[:-1])

    def decision_function(self, X) -> np.ndarray:
        h = self._affine(X)
        for w, b in zip(self._ws, self._bs, strict=True):
            h = np.maximum(h, 0.0) @ w + b
        return h[:, 0] if h.shape[1] == 1 else h

    def __repr__(self) -> str:
        return (f"<autoreg MLPPredictor task={self.task} hidden={self.hidden_units} "
                f"features_used={self.n_features_used}/{self.n_columns}>")
