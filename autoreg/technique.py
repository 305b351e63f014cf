"""The technique base class and the parameter types of a search space.

A technique plugin subclasses :class:`Technique`, sets its class attributes, declares its search
space with :class:`Float`, :class:`Int` and :class:`Choice`, and implements the method that its
stage needs for each family it supports:

============  ==========================  =============================
stage         ``linear``                  ``mlp``
============  ==========================  =============================
penalty       :meth:`~Technique.linear_estimator`  :meth:`~Technique.mlp_prox`
training      (none)                      :meth:`~Technique.mlp_configure`
compression   :meth:`~Technique.compress`  :meth:`~Technique.compress`
============  ==========================  =============================

``__init__`` only stores the parameters of one trial.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

STAGES = ("penalty", "training", "compression")
TASKS = ("regression", "binary", "multiclass")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Float:
    """A float parameter in ``[low, high]``, searched on a log scale if ``log``."""

    low: float
    high: float
    log: bool = False

    def check(self) -> str | None:
        if not all(_is_real(v) for v in (self.low, self.high)):
            return f"needs numbers for low and high, got [{self.low!r}, {self.high!r}]"
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            return f"needs finite low < high, got [{self.low}, {self.high}]"
        if self.log and self.low <= 0:
            return "a log-scaled range needs low > 0"
        return None

    def describe(self) -> str:
        return f"float [{self.low:g}, {self.high:g}]" + (" log" if self.log else "")

    def as_dict(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Int:
    """An integer parameter in ``[low, high]``."""

    low: int
    high: int
    log: bool = False

    def check(self) -> str | None:
        if not all(_is_real(v) and float(v).is_integer() for v in (self.low, self.high)):
            return f"needs integers for low and high, got [{self.low!r}, {self.high!r}]"
        if not self.low < self.high:
            return f"needs low < high, got [{self.low}, {self.high}]"
        if self.log and self.low <= 0:
            return "a log-scaled range needs low > 0"
        return None

    def describe(self) -> str:
        return f"int [{self.low}, {self.high}]" + (" log" if self.log else "")

    def as_dict(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Choice:
    """One of a fixed tuple of values (str, int, float or bool)."""

    choices: tuple

    def check(self) -> str | None:
        if not isinstance(self.choices, (tuple, list)) or not self.choices:
            return f"needs a non-empty tuple of choices, got {self.choices!r}"
        bad = [c for c in self.choices if not isinstance(c, (str, int, float, bool))]
        if bad:
            return f"choice {bad[0]!r} is not a str, int, float or bool"
        return None

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.choices))

    def as_dict(self) -> dict[str, Any]:
        return {"type": "choice", "choices": list(self.choices)}


Param = Float | Int | Choice


@dataclass(frozen=True)
class LinearContext:
    """What a linear-family technique may know about the training data of a search.

    ``alpha_max`` is the smallest L1 strength (on the mean-loss scale, standardized features)
    at which every weight is zero; penalties scale their strength by it so that one search
    range fits every data set.
    """

    task: str
    n_samples: int
    n_features: int
    n_classes: int
    alpha_max: float
    sparse: bool
    seed: int
    #: Group id of every preprocessed feature: by default the one-hot columns of one categorical
    #: input column share a group and every numeric column is its own group.
    groups: np.ndarray | None = field(default=None, compare=False)
    #: The training rows (preprocessed) and target, for techniques that need more than the
    #: summary above (``alpha_max`` of another penalty, say).
    X: Any = field(default=None, repr=False, compare=False)
    y: Any = field(default=None, repr=False, compare=False)
    #: Standard deviation of the raw column behind every preprocessed feature (1 for one-hot).
    feature_scale: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class MLPContext:
    """What an mlp-family technique may know about the network and its training data.

    ``weights`` handed to :meth:`Technique.mlp_prox` are the network's weight matrices in the
    order of the layers, each shaped inputs x outputs (``weights[0]`` has one row per
    preprocessed feature); biases are not among them.
    """

    task: str
    n_samples: int
    n_features: int
    n_out: int
    hidden: tuple[int, ...]
    seed: int
    groups: np.ndarray | None = field(default=None, compare=False)
    #: Standard deviation of the raw column behind every input feature (1 for one-hot).
    feature_scale: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass
class TrainConfig:
    """How an mlp is trained; ``training`` techniques change it in :meth:`Technique.mlp_configure`.

    ``dropout_input`` applies to the input features, ``dropout_hidden`` after every hidden layer.
    """

    dropout_input: float = 0.0
    dropout_hidden: float = 0.0


@dataclass
class CompressContext:
    """What a compression technique gets beside the weights.

    ``fine_tune(weights, epochs=None)`` trains the model on from ``weights`` with every zero
    held at zero (mlp: a few epochs of the same training, keeping the best on validation;
    linear: a refit of the same penalty on the features still in use, ``epochs`` ignored) and
    returns the new weights.
    """

    family: str
    task: str
    seed: int
    fine_tune: Callable[..., list] = field(repr=False)


class Technique:
    """Base class of every regularization technique.

    Class attributes describe the technique; an instance holds one trial's parameters, which
    ``__init__`` stores as attributes of the same names (scikit-learn style).

    A method that raises, gives non-finite weights or outlasts the per-trial time limit fails
    only the trial it runs in; the trial's reason names the technique.
    """

    #: Unique lower-case name, used in recipes (``l2+pruning``) and in parameter names
    #: (``l2.strength``).
    name: ClassVar[str] = ""
    #: ``penalty``, ``training`` or ``compression``.
    stage: ClassVar[str] = ""
    #: Model families this technique acts on: ``linear`` and/or ``mlp``.
    families: ClassVar[tuple[str, ...]] = ()
    #: Tasks it supports.
    tasks: ClassVar[tuple[str, ...]] = TASKS
    #: One or two sentences for ``autoreg plugins`` and the docs.
    description: ClassVar[str] = ""
    #: Parameter name -> range. Override :meth:`search_space` if it depends on family or task.
    space: ClassVar[dict[str, Param]] = {}
    #: Where a compression technique runs among those of one recipe: lower first (pruning is
    #: 10, quantization 90, since it turns weights into codes).
    order: ClassVar[int] = 50
    #: A ``penalty`` whose ``strength`` (a log-scaled float) the search may walk as a
    #: regularization path on the ``linear`` family before it samples recipes: the values its
    #: other parameters take along that path. None (the default): no path.
    linear_path: ClassVar[dict[str, Any] | None] = None

    def __init__(self, **params: Any) -> None:
        for key, value in params.items():
            setattr(self, key, value)
        self.params = dict(params)

    @classmethod
    def search_space(cls, family: str, task: str) -> dict[str, Param]:
        """The parameters searched for this technique on ``family`` and ``task``."""
        return dict(cls.space)

    def linear_estimator(self, ctx: LinearContext):
        """``penalty`` on ``linear``: an unfitted scikit-learn linear estimator.

        Its fitted ``coef_`` and ``intercept_`` become the model; it must accept sparse input if
        the technique is to run on sparse data.
        """
        raise NotImplementedError

    def mlp_prox(self, weights: list, step: float, ctx: MLPContext) -> None:
        """``penalty`` on ``mlp``: the proximal step of the penalty, applied after every
        optimizer step to the weight matrices (torch tensors, inputs x outputs, modified in
        place under ``torch.no_grad``). ``step`` is the learning rate. Soft-thresholding gives
        exact zeros; weight decay is ``w.mul_(1 / (1 + step * strength))``.
        """
        raise NotImplementedError

    def mlp_configure(self, config: TrainConfig, ctx: MLPContext) -> None:
        """``training`` on ``mlp``: change ``config`` (dropout rates, ...) in place."""
        raise NotImplementedError

    def compress(self, weights: list, ctx: CompressContext) -> list:
        """``compression``: new weights from the trained ones.

        ``weights`` are float arrays shaped inputs x outputs (linear: one matrix, features x
        outputs, on standardized features; mlp: one per layer). Return a list of the same
        shapes holding arrays (zeros become permanent) or :class:`autoreg.export.Quantized`
        tensors (stored at their bit width; the model computes with their values).
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def valid_name(name: object) -> bool:
    return isinstance(name, str) and bool(_NAME.match(name)) and name != "none"
