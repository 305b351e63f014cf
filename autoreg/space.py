"""The search space over recipes: which techniques, and how strong.

A recipe is a family, at most one penalty, any training techniques and any compression
techniques. Optuna sees it as a categorical ``penalty`` (and ``family`` when there are several),
one on/off categorical per training or compression technique named after it, and each chosen
technique's parameters as ``<technique>.<parameter>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import UsageError
from .families import FAMILIES
from .registry import Registered
from .technique import Choice, Float, Int, Technique

OPTIONAL_STAGES = ("training", "compression")


@dataclass
class Recipe:
    """What one trial tries: a family, at most one penalty, optional training and compression
    techniques (compression in the order it runs), and all their parameters."""

    family: str
    penalty: Technique | None = None
    params: dict = field(default_factory=dict)
    training: list[Technique] = field(default_factory=list)
    compression: list[Technique] = field(default_factory=list)

    @property
    def techniques(self) -> list[str]:
        parts = [] if self.penalty is None else [self.penalty]
        return [t.name for t in parts + self.training + self.compression]

    @property
    def name(self) -> str:
        """``l2+dropout+pruning+quantization``; ``none`` when nothing is applied."""
        return "+".join(self.techniques) or "none"


def _suggest(trial, name: str, spec):
    if isinstance(spec, Float):
        return trial.suggest_float(name, spec.low, spec.high, log=spec.log)
    if isinstance(spec, Int):
        return trial.suggest_int(name, spec.low, spec.high, log=spec.log)
    if isinstance(spec, Choice):
        return trial.suggest_categorical(name, list(spec.choices))
    raise TypeError(f"unknown parameter type {spec!r}")


class _Given:
    """Stands in for an Optuna trial: answers every suggestion from ``params`` and records the
    distribution it was asked from, as a trial added with ``study.add_trial`` needs."""

    def __init__(self, params: dict):
        self._given = params
        self.params: dict = {}
        self.distributions: dict = {}

    def _answer(self, name, distribution):
        if name not in self._given:
            raise ValueError(f"no value for {name!r} on this path point")
        value = self._given[name]
        if not distribution._contains(distribution.to_internal_repr(value)):
            raise ValueError(f"{name}={value!r} is outside {distribution}")
        self.params[name], self.distributions[name] = value, distribution
        return value

    def suggest_float(self, name, low, high, *, log=False):
        from optuna.distributions import FloatDistribution

        return self._answer(name, FloatDistribution(low, high, log=log))

    def suggest_int(self, name, low, high, *, log=False):
        from optuna.distributions import IntDistribution

        return self._answer(name, IntDistribution(low, high, log=log))

    def suggest_categorical(self, name, choices):
        from optuna.distributions import CategoricalDistribution

        return self._answer(name, CategoricalDistribution(choices))


def _names(value):
    """A list of names as given: ``"l1,l2"`` is two names, not five letters."""
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


class SearchSpace:
    """Recipes for the chosen families and task, built from the registered techniques.

    ``techniques`` limits the search: the penalties among them (and ``none`` if listed, or if
    no penalty is) are the penalty choices; training and compression techniques among them are
    searched on and off.
    """

    def __init__(self, registered: dict[str, Registered], task: str, families=None,
                 techniques=None):
        families, techniques = _names(families), _names(techniques)
        families = families or ("linear",)
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise UsageError(f"unknown family {unknown[0]!r}; known: {', '.join(FAMILIES)}")
        if len(set(families)) != len(families):
            twice = next(f for f in families if families.count(f) > 1)
            raise UsageError(f"family {twice!r} is listed twice; list each family once")
        if techniques is None:
            wanted = set(registered) | {"none"}
        else:
            wanted = set(techniques)
            unknown = sorted(t for t in wanted if t not in registered and t != "none")
            if unknown:
                raise UsageError(f"unknown technique {unknown[0]!r}; available: none, "
                                 f"{', '.join(registered)} (see autoreg plugins)")
            if not wanted:
                raise UsageError("no techniques given; name at least one (see autoreg plugins), "
                                 "or leave the option out to search them all")
            if not any(registered[t].technique.stage == "penalty" for t in wanted - {"none"}):
                wanted.add("none")
        self.task = task
        self.registered = registered
        self.penalties: dict[str, list[str]] = {}
        self.optional: dict[str, dict[str, list[str]]] = {}
        usable = {"none"} & wanted

        def fits(name: str, fam: str, stage: str) -> bool:
            tech = registered[name].technique
            return (name in wanted and tech.stage == stage and fam in tech.families
                    and task in tech.tasks)

        for fam in families:
            names = [n for n in sorted(registered) if fits(n, fam, "penalty")]
            choices = names + (["none"] if "none" in wanted else [])
            if not choices:
                continue
            self.penalties[fam] = choices
            usable.update(names)
            self.optional[fam] = {}
            for stage in OPTIONAL_STAGES:
                names = sorted((n for n in registered if fits(n, fam, stage)),
                               key=lambda n: (registered[n].technique.order, n))
                self.optional[fam][stage] = names
                usable.update(names)
        # Asked for by name and of no use here: say so. (By default, all that fit are used.)
        for name in sorted(wanted - usable) if techniques is not None else ():
            tech = registered[name].technique
            if task not in tech.tasks:
                why = f"supports {', '.join(tech.tasks)} only; leave it out of --techniques"
            else:
                why = (f"acts on {', '.join(tech.families)} only; add --family "
                       f"{tech.families[0]} or leave it out of --techniques")
            raise UsageError(f"technique {name!r} cannot be used on a {task} task with family "
                             f"{', '.join(families)}: it {why}")
        if not self.penalties:
            raise UsageError(f"no technique fits a {task} task with family "
                             f"{', '.join(families)}; see autoreg plugins for what each supports")
        self.families = tuple(f for f in families if f in self.penalties)

    def _params(self, trial, tech: type[Technique], family: str) -> dict:
        return {p: _suggest(trial, f"{tech.name}.{p}", spec)
                for p, spec in sorted(tech.search_space(family, self.task).items())}

    def sample(self, trial) -> Recipe:
        family = (self.families[0] if len(self.families) == 1
                  else trial.suggest_categorical("family", list(self.families)))
        recipe = Recipe(family)
        choice = trial.suggest_categorical("penalty", self.penalties[family])
        if choice != "none":
            tech = self.registered[choice].technique
            params = self._params(trial, tech, family)
            recipe.penalty = tech(**params)
            recipe.params.update({f"{choice}.{k}": v for k, v in params.items()})
        for stage in OPTIONAL_STAGES:
            for name in self.optional[family][stage]:
                if not trial.suggest_categorical(name, [False, True]):
                    continue
                tech = self.registered[name].technique
                params = self._params(trial, tech, family)
                getattr(recipe, stage).append(tech(**params))
                recipe.params.update({f"{name}.{k}": v for k, v in params.items()})
        return recipe

    def path_points(self, n_points: int) -> list[tuple[dict, dict]]:
        """Points on the regularization paths of the ``linear`` penalties that have one
        (:attr:`Technique.linear_path`): ``n_points`` strengths each, log-spaced over the
        searched range from the strongest (sparsest, the cheapest fit) down, with no training
        or compression technique; then the unpenalized model once if ``none`` is a choice.

        Each point is ``(params, distributions)`` as Optuna records a trial, checked by sampling
        the recipe from them.
        """
        if "linear" not in self.families or n_points < 1:
            return []
        points = []
        for choice in self.penalties["linear"]:
            if choice == "none":
                continue
            tech = self.registered[choice].technique
            if tech.linear_path is None:
                continue
            # The registry checked that a path's strength is a log-scaled Float.
            strength = tech.search_space("linear", self.task)["strength"]
            for value in np.geomspace(strength.high, strength.low, n_points):
                params = {f"{choice}.strength": float(value)}
                params.update({f"{choice}.{k}": v for k, v in tech.linear_path.items()})
                points.append(self._point(choice, params))
        if points and "none" in self.penalties["linear"]:
            points.append(self._point("none", {}))
        return points

    def path_penalties(self) -> int:
        """How many penalties :meth:`path_points` walks."""
        return len({p["penalty"] for p, _ in self.path_points(1)} - {"none"})

    def _point(self, penalty: str, params: dict) -> tuple[dict, dict]:
        fixed = {"penalty": penalty, **params}
        if len(self.families) > 1:
            fixed["family"] = "linear"
        for stage in OPTIONAL_STAGES:
            fixed.update({name: False for name in self.optional["linear"][stage]})
        trial = _Given(fixed)
        self.sample(trial)
        return trial.params, trial.distributions

    @property
    def techniques(self) -> list[str]:
        names = {t for ch in self.penalties.values() for t in ch}
        names.update(t for st in self.optional.values() for ns in st.values() for t in ns)
        return sorted(names)

    def describe(self) -> dict:
        return {"families": list(self.families), "penalties": self.penalties,
                "optional": self.optional}
