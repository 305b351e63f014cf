"""The command-line reference (``docs/cli.md``), rendered from the click commands themselves.

    python -m autoreg.clidoc                         # print the reference
    python -m autoreg.clidoc --write docs/cli.md     # write it
    python -m autoreg.clidoc --check docs/cli.md     # exit 1 if the file is out of date

The output depends only on the commands' definitions: no terminal width, no absolute paths, no
home folder (a default that names one is shown with ``~``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import click

#: The command to run after changing the CLI; the docs test names it when the file is stale.
REGENERATE = "python -m autoreg.clidoc --write docs/cli.md"

#: Commands in the order a user meets them; any other command follows, sorted by name.
ORDER = ("search", "front", "export", "ui", "plugins")

#: Environment variables autoreg reads (a test checks this against every ``AUTOREG_*`` name in
#: the package's source), and the ones of other libraries it honours.
ENVIRONMENT = {
    "AUTOREG_HOME": "autoreg's local folder, for the default study journal "
                    "(`$AUTOREG_HOME/studies.journal`) and trial model files "
                    "(`$AUTOREG_HOME/artifacts`). Default: `.autoreg` in the working folder.",
    "AUTOREG_DISABLE_PLUGINS": "Comma-separated plugin names not to load, added to "
                               "`--disable-plugin`.",
    "AUTOREG_TRACE_PLUGINS": "`1`: print each plugin's `register_techniques` call and what it "
                             "registered, on stderr.",
    "AUTOREG_HEARTBEAT": "Seconds between a worker's heartbeats on a database storage "
                         "(default 10); a trial is retried once its heartbeat is three "
                         "intervals old.",
    "AUTOREG_WORKER_START": "How `--jobs` workers start: `fork` (the Linux default) or `spawn`.",
    "AUTOREG_DEVICE": "`cpu`: train `mlp` networks on the CPU even when CUDA is available.",
    "AUTOREG_DEBUG": "`1`: show the traceback of an internal error instead of one line.",
    "MLFLOW_TRACKING_URI": "MLflow's own: the tracking store used when `--tracking-uri` is "
                           "not given.",
    "OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS": "If set, kept; otherwise every "
        "search process fits with one BLAS/OpenMP thread (use `--jobs` to use more cores).",
}


def _text(value: str | None) -> str:
    """A help text as one Markdown paragraph: click's ``\\f`` cut applied, lines joined."""
    if not value:
        return ""
    value = value.split("\f", 1)[0]
    return " ".join(value.split())


def _cell(value: str) -> str:
    return value.replace("|", "\\|")


def _stable(value: str) -> str:
    """``value`` without machine-specific paths: the home folder becomes ``~``, the working
    folder ``.``."""
    home = os.path.expanduser("~")
    cwd = os.getcwd()
    for path, short in ((cwd, "."), (home, "~")):
        if path and path != os.sep:
            value = value.replace(path + os.sep, short + "/").replace(path, short)
    return value


def _is_unset(value) -> bool:
    # click >= 8.3 marks a missing default with a sentinel, older click with None.
    return value is None or getattr(value, "name", None) == "UNSET"


def _value(param: click.Parameter, ctx: click.Context) -> str:
    """What the option takes: its choices, its metavar, or nothing for a flag."""
    if isinstance(param, click.Option) and (param.is_flag or param.count):
        return ""
    if isinstance(param.type, click.Choice):
        return " | ".join(f"`{c}`" for c in param.type.choices)
    metavar = param.make_metavar(ctx).strip("[]")
    return f"`{metavar}`"


def _default(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and (param.is_flag or param.count):
        return ""
    default = param.default
    if callable(default):
        return "(computed)"
    if _is_unset(default) or default == () or default == []:
        return ""
    if isinstance(default, (list, tuple)):
        default = ",".join(map(str, default))
    return f"`{_stable(str(default))}`"


def _names(param: click.Parameter) -> str:
    names = sorted(param.opts, key=lambda o: (o.startswith("--"), o))
    return ", ".join(f"`{n}`" for n in [*names, *param.secondary_opts])


def _options_table(params, ctx: click.Context) -> list[str]:
    rows = ["| option | value | default | description |", "|---|---|---|---|"]
    for p in params:
        notes = []
        if p.required:
            notes.append("**Required.**")
        if getattr(p, "multiple", False) and "repeatable" not in (p.help or "").lower():
            notes.append("Repeatable.")
        envvars = [p.envvar] if isinstance(p.envvar, str) else list(p.envvar or ())
        if envvars:
            notes.append("Environment: " + ", ".join(f"`{e}`" for e in envvars) + ".")
        text = " ".join([_text(getattr(p, "help", None)), *notes]).strip()
        rows.append(f"| {_names(p)} | {_cell(_value(p, ctx))} | {_cell(_default(p))} | "
                    f"{_cell(_stable(text))} |")
    return rows


def _arguments(params, ctx: click.Context) -> list[str]:
    lines = []
    for p in params:
        kind = "required" if p.required else "optional"
        if getattr(p, "nargs", 1) != 1:
            kind += ", repeatable"
        lines.append(f"- `{p.make_metavar(ctx).strip('[]').rstrip('.')}` ({kind})")
    return lines


def _section(cmd: click.Command, ctx: click.Context, title: str) -> list[str]:
    usage = " ".join([ctx.command_path, *cmd.collect_usage_pieces(ctx)])
    out = [f"## `{title}`", "", "```", usage, "```", ""]
    if cmd.help:
        out += [_stable(_text(cmd.help)), ""]
    params = [p for p in cmd.get_params(ctx) if not getattr(p, "hidden", False)]
    arguments = [p for p in params if isinstance(p, click.Argument)]
    options = [p for p in params if isinstance(p, click.Option)]
    if arguments:
        out += ["Arguments:", "", *_arguments(arguments, ctx), ""]
    if options:
        out += ["Options:", "", *_options_table(options, ctx), ""]
    return out


def _first_sentence(text: str) -> str:
    text = _text(text)
    match = re.search(r"\.(\s|$)", text)
    return text[: match.start() + 1] if match else text


def commands(group: click.Group) -> list[str]:
    """The group's visible command names, in :data:`ORDER` then by name."""
    ctx = click.Context(group, info_name="autoreg", **group.context_settings)
    names = [n for n in group.list_commands(ctx) if not group.get_command(ctx, n).hidden]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


def render(group: click.Group | None = None) -> str:
    """The Markdown reference of ``group`` (default: the ``autoreg`` command)."""
    if group is None:
        from .cli import cli as group
    root = click.Context(group, info_name="autoreg", **group.context_settings)
    names = commands(group)
    out = [
        "# Command-line reference",
        "",
        "<!-- Generated from the CLI by `" + REGENERATE + "`; do not edit by hand. -->",
        "",
        "Every command prints one line on stderr and exits non-zero on bad input (2 for a "
        "usage error); `--json`, where offered, prints only JSON on stdout. Options of "
        "`autoreg` itself (`--plugin`, `--disable-plugin`) go before the command: "
        "`autoreg --plugin my_technique search ...`.",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    for name in names:
        out.append(f"| [`autoreg {name}`](#autoreg-{name}) | "
                   f"{_cell(_first_sentence(group.get_command(root, name).help or ''))} |")
    out.append("")
    out += _section(group, root, "autoreg")
    for name in names:
        cmd = group.get_command(root, name)
        out += _section(cmd, click.Context(cmd, info_name=name, parent=root), f"autoreg {name}")
    out += ["## Environment variables", "", "| variable | effect |", "|---|---|"]
    out += [f"| `{'`, `'.join(k.split(', '))}` | {_cell(v)} |" for k, v in ENVIRONMENT.items()]
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoreg.clidoc",
                                     description="Render the autoreg command-line reference.")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--write", metavar="PATH", help="write the reference to PATH")
    where.add_argument("--check", metavar="PATH",
                       help="exit 1 if PATH differs from the reference rendered now")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        with open(args.write, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        print(f"wrote {args.write}", file=sys.stderr)
    elif args.check:
        try:
            with open(args.check, encoding="utf-8") as fh:
                current = fh.read()
        except OSError as exc:
            current = f"({exc})"
        if current != text:
            print(f"{args.check} is out of date; regenerate it with: {REGENERATE}",
                  file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
