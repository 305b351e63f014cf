"""The technique base class and the parameter types of a search space.

A technique plugin subclasses :class:`Technique`, sets its class attributes, declares its search
space with :class:`Float`, :class:`Int` and :class:`Choice`, and implements the method that its
stage needs for each family it supports (for a ``penalty`` on the ``linear`` family:
:meth:`Technique.linear_estimator`). ``__init__`` only stores the parameters of one trial.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, ClassVar

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


class Technique:
    """Base class of every regularization technique.

    Class attributes describe the technique; an instance holds one trial's parameters, which
    ``__init__`` stores as attributes of the same names (scikit-learn style).
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

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def valid_name(name: object) -> bool:
    return isinstance(name, str) and bool(_NAME.match(name)) and name != "none"
