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
