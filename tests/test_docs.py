"""The technique reference cannot drift from the plugins it describes."""

from __future__ import annotations

from pathlib import Path

from autoreg.registry import load_techniques

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_technique_parameter_and_range_is_documented():
    text = (DOCS / "techniques.md").read_text()
    found = load_techniques()
    for name, reg in found.items():
        tech = reg.technique
        assert f"## `{name}`" in text, f"docs/techniques.md has no section for {name}"
        section = text.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
        assert f"| {tech.stage} | {', '.join(tech.families)} |" in text, name
        documented = {line for line in section.splitlines() if line.startswith("| ")}
        for family in tech.families:
            for param, spec in tech.search_space(family, tech.tasks[0]).items():
                row = f"| {family} | `{param}` | {spec.describe()} |"
                assert row in documented, f"{name}: {row} is not in docs/techniques.md"
        rows = [r for r in documented if r.count("|") == 4 and "`" in r]
        expected = sum(len(tech.search_space(f, tech.tasks[0])) for f in tech.families)
        assert len(rows) == expected, f"{name}: the docs list parameters the plugin lacks"


def test_the_cluster_recipes_use_real_options():
    """Every option the cluster guide passes to `autoreg search` / `autoreg front` exists."""
    import re

    from autoreg.cli import cli

    text = (DOCS / "cluster.md").read_text()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    checked = 0
    for block in blocks:
        for command in ("search", "front"):
            if f"autoreg {command}" not in block:
                continue
            known = {opt for p in cli.commands[command].params for opt in p.opts}
            lines = [ln for ln in block.splitlines()
                     if not ln.lstrip().startswith("#") and "sbatch" not in ln.lower()]
            tail = "\n".join(lines).split(f"autoreg {command}", 1)[1]
            if command == "front":
                tail = tail.split("\n", 1)[0]
            used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", tail))
            assert used and used <= known, f"unknown options: {sorted(used - known)}"
            checked += 1
    assert checked >= 3
    # The environment variable the guide tells users to set is the one autoreg reads.
    from autoreg import workers

    assert workers.HEARTBEAT_ENV in text and f"default {workers.DEFAULT_HEARTBEAT}" in text
