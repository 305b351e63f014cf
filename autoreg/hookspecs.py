"""The one hook a technique plugin implements."""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("autoreg")
hookimpl = pluggy.HookimplMarker("autoreg")


@hookspec
def register_techniques(register) -> None:
    """Call ``register(technique)`` once for each technique this plugin provides."""
