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


# -- the CLI reference (docs/cli.md) ---------------------------------------------------------

def test_the_cli_reference_is_current():
    from autoreg.clidoc import REGENERATE, render

    written = (DOCS / "cli.md").read_text()
    assert written == render(), (
        f"docs/cli.md is out of date with the CLI; regenerate it with: {REGENERATE}")


def test_the_cli_reference_shows_every_command_and_option():
    import click

    from autoreg.cli import cli

    text = (DOCS / "cli.md").read_text()
    root = click.Context(cli, info_name="autoreg", **cli.context_settings)
    sections = {"autoreg": (cli, root)}
    for name, cmd in cli.commands.items():
        sections[f"autoreg {name}"] = (cmd, click.Context(cmd, info_name=name, parent=root))
    for title, (cmd, ctx) in sections.items():
        assert f"\n## `{title}`\n" in text, f"docs/cli.md has no section for {title}"
        body = text.split(f"\n## `{title}`\n", 1)[1].split("\n## ", 1)[0]
        assert ctx.command_path + " " in body, f"{title}: no usage line"
        for param in cmd.get_params(ctx):
            if isinstance(param, click.Argument):
                assert f"`{param.human_readable_name}`" in body, f"{title}: {param.name}"
                continue
            for opt in [*param.opts, *param.secondary_opts]:
                assert f"`{opt}`" in body, f"{title}: option {opt} is not in docs/cli.md"
            if param.help:
                assert " ".join(param.help.split()) in body, f"{title}: help of {param.opts}"


def test_the_cli_reference_does_not_depend_on_the_machine(monkeypatch, tmp_path):
    import os

    from autoreg.clidoc import render

    text = render()
    monkeypatch.setenv("COLUMNS", "20")
    monkeypatch.setenv("HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("AUTOREG_HOME", str(tmp_path / "home"))
    assert render() == text
    for path in {os.getcwd(), str(Path.home()), str(Path(__file__).resolve().parents[1])}:
        assert path not in text
    assert "/tmp/" not in text and "/home/" not in text


def test_clidoc_check_exit_code(tmp_path, capsys):
    from autoreg.clidoc import REGENERATE, main

    assert main(["--check", str(DOCS / "cli.md")]) == 0
    stale = tmp_path / "cli.md"
    stale.write_text((DOCS / "cli.md").read_text().replace("--trials", "--trails"))
    assert main(["--check", str(stale)]) == 1
    assert REGENERATE in capsys.readouterr().err
    assert main(["--write", str(stale)]) == 0 and main(["--check", str(stale)]) == 0


def test_every_environment_variable_autoreg_reads_is_documented():
    import re

    from autoreg.clidoc import ENVIRONMENT

    package = Path(__file__).resolve().parents[1]
    used = set()
    for path in [*(package / "autoreg").rglob("*.py"), *(package / "plugins").rglob("*.py")]:
        if path.name != "clidoc.py":
            used |= set(re.findall(r"\bAUTOREG_[A-Z_]+\b", path.read_text()))
    documented = {name for key in ENVIRONMENT for name in key.split(", ")}
    assert used - documented == set(), "add these to autoreg.clidoc.ENVIRONMENT"
    assert {n for n in documented if n.startswith("AUTOREG_")} - used == set(), \
        "autoreg.clidoc.ENVIRONMENT documents variables autoreg no longer reads"


# -- the plugin guide (docs/plugins.md) ------------------------------------------------------

def _guide_plugin() -> str:
    import re

    text = (DOCS / "plugins.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    whole = [b for b in blocks if "def register_techniques" in b and "(Technique)" in b]
    assert len(whole) == 1, "docs/plugins.md should show exactly one complete plugin"
    return whole[0]


def test_the_plugin_guide_code_is_a_working_plugin(tmp_path, monkeypatch, capsys):
    """The guide's plugin, saved as a file, is listed, searched and disabled as the guide says."""
    import json
    import re
    import sys

    from clirun import run

    code = _guide_plugin()
    assert len(code.splitlines()) < 60, "the guide's plugin should fit in one short file"
    name = re.search(r'^\s+name = "(\w+)"', code, flags=re.M).group(1)
    folder = tmp_path / "plugin_src"
    folder.mkdir()
    (folder / "guide_technique.py").write_text(code)
    monkeypatch.syspath_prepend(str(folder))
    try:
        # `--plugin MODULE`, as the guide's "Try it" shows; an installed copy is switched off.
        code_, out, err = run(capsys, "--disable-plugin", name, "--plugin", "guide_technique",
                              "plugins", "--json")
        assert code_ == 0, err
        listed = {row["name"]: row for row in json.loads(out)}
        assert listed[name]["plugin"] == "guide_technique"
        assert listed[name]["distribution"] == "(module)"

        code_, out, err = run(capsys, "--disable-plugin", name, "--plugin", "guide_technique",
                              "search", "diabetes", "--techniques", name, "--trials", "4",
                              "--no-mlflow", "--json")
        assert code_ == 0, err
        doc = json.loads(out)
        assert doc["n_trials"] == 4 and doc["n_failed"] == 0
        assert doc["front"] and {row["recipe"] for row in doc["front"]} == {name}
        assert all(f"{name}." + p in row for row in doc["front"]
                   for p in re.findall(r'"(\w+)": (?:Float|Int|Choice)\(', code))

        code_, out, err = run(capsys, "--disable-plugin", name, "--disable-plugin",
                              "guide_technique", "--plugin", "guide_technique", "plugins",
                              "--json")
        assert code_ == 0 and name not in {row["name"] for row in json.loads(out)}
    finally:
        sys.modules.pop("guide_technique", None)


# -- the README -------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_picture_is_a_real_png():
    import re
    import struct

    readme = (ROOT / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme)
    assert images == ["docs/pareto.png"], images
    data = (ROOT / images[0]).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG file"
    width, height = struct.unpack(">II", data[16:24])
    assert 400 <= width <= 3000 and 200 <= height <= 2000, (width, height)
    assert data.endswith(b"IEND\xaeB`\x82"), "the PNG file is cut short"
    assert len(data) < 150_000, "keep the README picture small"


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page."""
    import re

    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    headings = re.findall(r"^#+ (.+)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_the_readme_and_docs_link_to_files_and_headings_that_exist():
    import re

    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target, anchor in re.findall(r"\]\(([^)\s#]*)(?:#([^)\s]*))?\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path = (page.parent / target).resolve() if target else page
            assert path.exists(), f"{page.name} links to {target}, which does not exist"
            if anchor and path.suffix == ".md":
                assert anchor in _anchors(path), f"{page.name} links to a missing #{anchor}"


def test_the_readme_keeps_its_two_commands():
    readme = (ROOT / "README.md").read_text()
    main_job = ("python3 -m venv .venv && .venv/bin/pip install -q torch==2.13.0 -e . && "
                ".venv/bin/autoreg search")
    assert main_job in readme
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci.startswith("python3 -m venv") and ci in readme, "README's test command != .ci/run"
