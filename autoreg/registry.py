"""The plugin host: load technique plugins through pluggy and check each one."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import sys
from dataclasses import dataclass

import pluggy

from . import hookspecs
from .errors import PluginError
from .families import FAMILIES
from .technique import STAGES, TASKS, Choice, Float, Int, Technique, valid_name

GROUP = "autoreg"
DISABLE_ENV = "AUTOREG_DISABLE_PLUGINS"


@dataclass(frozen=True)
class Registered:
    """A technique class and where it came from."""

    technique: type[Technique]
    plugin: str
    distribution: str
    version: str

    @property
    def name(self) -> str:
        return self.technique.name


def _disabled_from_env() -> set[str]:
    return {p.strip() for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()}


def load_techniques(disable=(), modules=()) -> dict[str, Registered]:
    """Every enabled technique by name, in sorted order.

    ``disable`` names plugins to skip (as does the ``AUTOREG_DISABLE_PLUGINS`` environment
    variable, comma-separated); ``modules`` adds plugins by module name, beside the entry points.
    """
    blocked = set(disable) | _disabled_from_env()
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    trace = pm.trace.root.get("autoreg")
    if os.environ.get("AUTOREG_TRACE_PLUGINS"):
        # stderr, so that tracing never corrupts ``--json`` output on stdout.
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    origin: dict[str, tuple[str, str]] = {}
    for ep in sorted(md.entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in blocked:
            continue
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        if ep.name in origin:
            # Two distributions claim one plugin name; loading either would hide the other.
            both = " and ".join(sorted((origin[ep.name][0], dist)))
            raise PluginError(f"plugin name {ep.name!r} is provided by both {both}; uninstall "
                              f"one, or disable both with --disable-plugin {ep.name}")
        try:
            module = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin {ep.name!r} (from {dist}) failed to import: "
                              f"{type(exc).__name__}: {exc}") from None
        _register(pm, module, ep.name)
        origin[ep.name] = (dist, version)
    for modname in modules:
        if modname in blocked:
            continue
        try:
            module = importlib.import_module(modname)
        except Exception as exc:
            raise PluginError(f"plugin module {modname!r} failed to import: "
                              f"{type(exc).__name__}: {exc}") from None
        if pm.is_registered(module):  # already loaded through its entry point
            continue
        _register(pm, module, modname)
        origin[modname] = ("(module)", "")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(_unknown_hook_message(pm, exc.plugin)) from None

    found: dict[str, Registered] = {}
    impls = sorted(pm.hook.register_techniques.get_hookimpls(), key=lambda i: i.plugin_name)
    for impl in impls:
        plugin = impl.plugin_name

        def register(technique, _plugin=plugin):
            problem = technique_problem(technique)
            if problem:
                raise PluginError(f"plugin {_plugin!r}: {problem}")
            if technique.name in found:
                other = found[technique.name].plugin
                raise PluginError(f"plugin {_plugin!r}: technique name {technique.name!r} is "
                                  f"already registered by plugin {other!r}")
            dist, version = origin.get(_plugin, ("?", "?"))
            found[technique.name] = Registered(technique, _plugin, dist, version)
            trace(f"  registered {technique.name!r} ({technique.stage}) from {dist} {version}")

        # Each implementation is called on its own (not through pm.hook) so that every
        # technique is known to come from its plugin; trace the calls here instead.
        trace(f"register_techniques plugin={plugin!r}")
        try:
            impl.function(register=register)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {plugin!r} failed while registering: "
                              f"{type(exc).__name__}: {exc}") from None
    return dict(sorted(found.items()))


def _unknown_hook_message(pm: pluggy.PluginManager, plugin) -> str:
    callers = {h: getattr(pm.hook, h) for h in vars(pm.hook) if not h.startswith("_")}
    unknown = sorted(h for h, c in callers.items() if not c.has_spec()
                     and any(i.plugin is plugin for i in c.get_hookimpls()))
    known = sorted(h for h, c in callers.items() if c.has_spec())
    return (f"plugin {pm.get_name(plugin)!r} implements unknown hook "
            f"{', '.join(map(repr, unknown))} (known: {', '.join(known)})")


def _register(pm: pluggy.PluginManager, module, name: str) -> None:
    try:
        pm.register(module, name=name)
    except ValueError as exc:
        raise PluginError(f"plugin {name!r} cannot be registered: {exc}") from None
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name!r} has an invalid hook: {exc}") from None


def technique_problem(tech) -> str | None:
    """What keeps ``tech`` from being a usable technique, or None."""
    if not (isinstance(tech, type) and issubclass(tech, Technique)):
        return f"register() takes a Technique subclass, got {tech!r}"
    label = f"technique {tech.name!r}" if tech.name else f"technique class {tech.__name__}"
    if not valid_name(tech.name):
        return f"{label} needs a name of lower-case letters, digits and _ (and not 'none')"
    if tech.stage not in STAGES:
        return f"{label} has stage {tech.stage!r}; use one of {', '.join(STAGES)}"
    for attr in ("families", "tasks"):
        value = getattr(tech, attr)
        # A bare string would be read one letter at a time.
        if not isinstance(value, (tuple, list)) or not value:
            return f"{label}: {attr} must be a non-empty tuple, got {value!r}"
    for task in tech.tasks:
        if task not in TASKS:
            return f"{label} names unknown task {task!r} (known: {', '.join(TASKS)})"
    for family in tech.families:
        if family not in FAMILIES:
            return f"{label} names unknown family {family!r} (known: {', '.join(FAMILIES)})"
        needs = FAMILIES[family].needs.get(tech.stage)
        if needs is None:
            return f"{label}: the {family} family has no {tech.stage} stage"
        if getattr(tech, needs) is getattr(Technique, needs):
            return f"{label} is a {tech.stage} on {family} but does not implement {needs}()"
        for task in tech.tasks:
            try:
                space = tech.search_space(family, task)
            except Exception as exc:
                return f"{label}: search_space() raised {type(exc).__name__}: {exc}"
            if not isinstance(space, dict):
                return f"{label}: search_space() must return a dict, got {space!r}"
            for pname, spec in space.items():
                if not isinstance(spec, (Float, Int, Choice)):
                    return f"{label}: parameter {pname!r} is not a Float, Int or Choice"
                if not valid_name(pname):
                    return f"{label}: parameter name {pname!r} is not a lower-case identifier"
                if pname == "params" or hasattr(Technique, pname):
                    # __init__ stores parameters as attributes; this one would replace the
                    # technique's own name, stage or methods.
                    return f"{label}: parameter name {pname!r} is reserved by Technique"
                bad = spec.check()
                if bad:
                    return f"{label}: parameter {pname!r} {bad}"
            if family == "linear" and tech.linear_path is not None:
                bad = _path_problem(tech, space)
                if bad:
                    return f"{label}: linear_path {bad}"
    return None


def _path_problem(tech, space: dict) -> str | None:
    """What is wrong with a penalty's ``linear_path`` for its ``linear`` search space."""
    strength = space.get("strength")
    if tech.stage != "penalty" or not isinstance(strength, Float) or not strength.log:
        return "is for penalties with a log-scaled Float 'strength'"
    path = tech.linear_path
    if not isinstance(path, dict) or set(path) != set(space) - {"strength"}:
        want = sorted(set(space) - {"strength"})
        return f"must give a value for each of {want} and nothing else, got {path!r}"
    for pname, value in path.items():
        spec = space[pname]
        ok = (value in spec.choices if isinstance(spec, Choice)
              else isinstance(value, (int, float)) and not isinstance(value, bool)
              and spec.low <= value <= spec.high)
        if not ok:
            return f"value {pname}={value!r} is outside {spec.describe()}"
    return None
