"""The search space over recipes: which techniques, and how strong."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UsageError
from .families import FAMILIES
from .registry import Registered
from .technique import Choice, Float, Int, Technique


@dataclass
class Recipe:
    """What one trial tries: a family, at most one penalty, and its parameters."""

    family: str
    penalty: Technique | None = None
    params: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.penalty.name if self.penalty is not None else "none"

    @property
    def techniques(self) -> list[str]:
        return [] if self.penalty is None else [self.penalty.name]


def _suggest(trial, name: str, spec):
    if isinstance(spec, Float):
        return trial.suggest_float(name, spec.low, spec.high, log=spec.log)
    if isinstance(spec, Int):
        return trial.suggest_int(name, spec.low, spec.high, log=spec.log)
    if isinstance(spec, Choice):
        return trial.suggest_categorical(name, list(spec.choices))
    raise TypeError(f"unknown parameter type {spec!r}")


class SearchSpace:
    """Recipes for the chosen families and task, built from the registered techniques."""

    def __init__(self, registered: dict[str, Registered], task: str, families=None,
                 techniques=None):
        families = tuple(families) if families else tuple(FAMILIES)
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise UsageError(f"unknown family {unknown[0]!r}; known: {', '.join(FAMILIES)}")
        if techniques is None:
            wanted = set(registered) | {"none"}
        else:
            wanted = set(techniques)
            unknown = sorted(t for t in wanted if t not in registered and t != "none")
            if unknown:
                raise UsageError(f"unknown technique {unknown[0]!r}; available: none, "
                                 f"{', '.join(registered)} (see autoreg plugins)")
            if not wanted:
                raise UsageError("no techniques given")
        self.task = task
        self.registered = registered
        self.penalties: dict[str, list[str]] = {}
        usable = {"none"} & wanted
        for fam in families:
            names = [n for n, r in sorted(registered.items())
                     if n in wanted and r.technique.stage == "penalty"
                     and fam in r.technique.families and task in r.technique.tasks]
            choices = sorted(names) + (["none"] if "none" in wanted else [])
            if choices:
                self.penalties[fam] = choices
                usable.update(names)
        for name in sorted(wanted - usable):
            tech = registered[name].technique
            why = (f"supports {', '.join(tech.tasks)}" if task not in tech.tasks
                   else f"acts on {', '.join(tech.families)}")
            raise UsageError(f"technique {name!r} cannot be used on a {task} task with family "
                             f"{', '.join(families)}: it {why}")
        if not self.penalties:
            raise UsageError("no technique fits this task and family")
        self.families = tuple(f for f in families if f in self.penalties)

    def sample(self, trial) -> Recipe:
        family = (self.families[0] if len(self.families) == 1
                  else trial.suggest_categorical("family", list(self.families)))
        choice = trial.suggest_categorical("penalty", self.penalties[family])
        if choice == "none":
            return Recipe(family)
        tech = self.registered[choice].technique
        params = {p: _suggest(trial, f"{choice}.{p}", spec)
                  for p, spec in sorted(tech.search_space(family, self.task).items())}
        return Recipe(family, tech(**params), params)

    def describe(self) -> dict:
        return {"families": list(self.families), "penalties": self.penalties}
