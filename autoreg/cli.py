"""The ``autoreg`` command line."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import warnings

import click

from ._version import __version__
from .errors import AutoRegError, Terminated, first_line, stop_on_sigterm

SEARCH_DEFAULTS = {"trials": 100}


def _split(value: str | None):
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _quiet_libraries() -> None:
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("mlflow", "alembic", "optuna"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")


def config_defaults(command: click.Command, table: dict, path: str) -> dict:
    """The defaults ``table`` (a job's TOML, top level or its ``[search]`` table) gives the
    parameters of ``command``, by parameter name. A key is an option's long name with dashes
    or underscores (``tracking-uri``, ``tracking_uri``), or ``data`` for the DATA argument; a
    list becomes the comma-separated value its option takes. An unknown key is an error
    naming it."""
    from .errors import UsageError

    if set(table) == {"search"} and isinstance(table["search"], dict):
        table = table["search"]
    names, shown = {}, []
    for param in command.params:
        if param.name == "config" or not param.expose_value:
            continue
        flags = [o[2:] for o in param.opts if o.startswith("--")] or [param.name]
        shown += flags
        for spelling in [param.name, *flags]:
            names[spelling] = names[spelling.replace("-", "_")] = param.name
    defaults = {}
    for key, value in table.items():
        if key not in names:
            import difflib

            close = difflib.get_close_matches(str(key), shown, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UsageError(f"unknown key {key!r} in {path}; {hint}the search options are: "
                             f"{', '.join(sorted(shown))}")
        if isinstance(value, dict):
            raise UsageError(f"key {key!r} in {path} holds a table; give it a value")
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        defaults[names[key]] = value
    return defaults


def _load_config(ctx, param, path):
    """``--config FILE``: every search option from a TOML file; flags given too win."""
    if not path:
        return path
    import tomllib

    from .errors import UsageError

    try:
        with open(path, "rb") as fh:
            table = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read config {path}: {exc.strerror or exc}") from None
    ctx.default_map = {**(ctx.default_map or {}), **config_defaults(ctx.command, table, path)}
    return path


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="autoreg")
@click.option("--disable-plugin", "disable", multiple=True, metavar="NAME",
              help="Do not load this plugin (repeatable). Also: AUTOREG_DISABLE_PLUGINS=a,b.")
@click.option("--plugin", "modules", multiple=True, metavar="MODULE",
              help="Also load a plugin from this importable module (repeatable).")
@click.pass_context
def cli(ctx, disable, modules):
    """autoreg: search regularization recipes and review the Pareto front of error, sparsity
    and model size."""
    ctx.obj = {"disable": disable, "modules": modules}
    _quiet_libraries()


@cli.command()
@click.argument("data", required=False)
@click.option("--config", type=click.Path(dir_okay=False), is_eager=True, expose_value=False,
              callback=_load_config, help="TOML file of search options (keys: the option "
              "names, e.g. trials = 50, techniques = [\"l1\", \"l2\"], data = \"diabetes\"); "
              "options given as flags win.")
@click.option("--target", metavar="COLUMN", help="Target column of a CSV/Parquet file.")
@click.option("--task", default="auto", show_default=True,
              type=click.Choice(["auto", "regression", "classification", "binary", "multiclass"]),
              help="'auto' tells regression from classification by the target.")
@click.option("--techniques", metavar="LIST", help="Comma-separated techniques to search "
              "(default: all, plus 'none', the unpenalized baseline).")
@click.option("--family", "families", metavar="LIST", help="Comma-separated model families: "
              "linear, mlp (default: linear).")
@click.option("--hidden", metavar="SIZES", help="Hidden layer sizes of the mlp family, e.g. "
              "128,64 (default: 128,64).")
@click.option("--groups", "groups_file", type=click.Path(dir_okay=False),
              help="JSON file of feature groups for group_lasso: a list of column lists or an "
              "object of named column lists (default: one group per input column).")
@click.option("--objectives", default="error,sparsity,size", show_default=True,
              metavar="LIST", help="Comma-separated objectives: error, sparsity, size.")
@click.option("--metric", metavar="NAME", help="Error metric: rmse, log_loss, or a "
              "scikit-learn scorer name.")
@click.option("--validation", default="auto", show_default=True, metavar="auto|holdout|K",
              help="'auto', 'holdout' or a number of cross-validation folds.")
@click.option("--test-size", default=0.2, show_default=True, type=float, metavar="FRACTION",
              help="Fraction of rows held out as the test split that scores the front; 0 "
                   "holds out none.")
@click.option("--trials", default=SEARCH_DEFAULTS["trials"], show_default=True, type=int,
              metavar="N",
              help="Total trials of the study (a resumed study runs only the rest).")
@click.option("--timeout", type=float, metavar="SECONDS", help="Stop starting new trials "
              "after this many seconds.")
@click.option("--trial-timeout", type=float, metavar="SECONDS", help="Stop and fail a trial "
              "that runs longer; the search goes on.")
@click.option("--sampler", default="tpe", show_default=True,
              type=click.Choice(["tpe", "random"]),
              help="Optuna sampler (the Python API also takes a sampler object).")
@click.option("--seed", default=0, show_default=True, type=int, metavar="N",
              help="Random seed: the same seed on one worker gives the same front.")
@click.option("--no-paths", is_flag=True, help="Sample every trial; do not walk the linear "
              "penalties' regularization paths first.")
@click.option("--storage", metavar="URL", help="Journal file, Optuna RDB URL "
              "(postgresql+psycopg://...) or journal+postgresql://... (default: "
              "studies.journal in $AUTOREG_HOME, else in .autoreg).")
@click.option("--study", "study_name", metavar="NAME", help="Study name; an existing study is "
              "resumed (default: a new name from the data and the time).")
@click.option("--artifacts", metavar="FOLDER", help="Folder for trial model files (default: "
              "artifacts in $AUTOREG_HOME, else in .autoreg).")
@click.option("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: MLflow's own "
              "default, $MLFLOW_TRACKING_URI or sqlite:///mlflow.db).")
@click.option("--experiment", metavar="NAME", help="MLflow experiment name (default: autoreg).")
@click.option("--no-mlflow", is_flag=True, help="Do not log to MLflow.")
@click.option("--log-trials", default="front", show_default=True,
              type=click.Choice(["front", "all"]),
              help="Child runs in MLflow for the front trials (with models) or all trials.")
@click.option("--register", metavar="NAME", help="Register the pick in the MLflow Model "
              "Registry under this name.")
@click.option("--jobs", default=1, show_default=True, type=int, metavar="N",
              help="Worker processes on this machine sharing the study.")
@click.option("--max-size", type=int, metavar="BYTES", help="Constraint: model file at most "
              "this many bytes.")
@click.option("--min-sparsity", type=float, metavar="FRACTION", help="Constraint: at least "
              "this fraction of zeros.")
@click.option("--max-error", type=float, metavar="ERROR", help="Constraint: validation error at "
              "most this.")
@click.option("--pick", "rule", default="within", show_default=True,
              type=click.Choice(["within", "1se", "knee"]), help="Rule that picks one model "
              "(marked * in the table): 'within', the smallest model within --tolerance of the "
              "best error; '1se', the smallest within one standard error of it (with "
              "cross-validation); 'knee', the one nearest the ideal point.")
@click.option("--tolerance", default=0.01, show_default=True, type=float, metavar="FRACTION",
              help="Relative error tolerance of the 'within' rule.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, nothing else.")
@click.pass_obj
def search(obj, data, target, task, techniques, families, hidden, groups_file, objectives,
           metric, validation,
           test_size, trials, timeout, trial_timeout, sampler, seed, no_paths, storage,
           study_name, artifacts,
           tracking_uri, experiment, no_mlflow, log_trials, register, jobs, max_size,
           min_sparsity, max_error, rule,
           tolerance, as_json):
    """Search regularization recipes on DATA: a CSV/Parquet path or a built-in dataset
    (diabetes, breast_cancer, digits, wine, iris, synthetic_sparse, sparse_csr).
    Without DATA, searches the built-in demo (diabetes)."""
    from .engine import search as run_search
    from .tracking import run_location

    kwargs = dict(target=target, task=task, techniques=_split(techniques),
                  families=_split(families), objectives=_split(objectives), metric=metric,
                  validation=validation, n_trials=trials, timeout=timeout, storage=storage,
                  study_name=study_name, tracking_uri=tracking_uri, experiment=experiment,
                  n_jobs=jobs, seed=seed, sampler=sampler, test_size=test_size,
                  max_size=max_size, min_sparsity=min_sparsity, max_error=max_error,
                  disable_plugins=obj["disable"], plugins=obj["modules"], artifacts=artifacts,
                  hidden=hidden, groups=_read_groups(groups_file), log_trials=log_trials,
                  register=register, paths=not no_paths, trial_timeout=trial_timeout,
                  progress=not as_json and sys.stderr.isatty())
    with warnings.catch_warnings():
        # The command line says it itself, below, with the command that logs the study later.
        warnings.filterwarnings("ignore", message="autoreg: not logged to MLflow",
                                category=RuntimeWarning)
        result = run_search(data, log_mlflow=not no_mlflow, **kwargs)
    pick = result.pick(rule, tolerance=tolerance)
    if as_json:
        click.echo(json.dumps(_result_json(result, pick, storage, tracking_uri), indent=2))
        return
    _print_front(result, pick, rule)
    rerun = (f", {len(result.retried)} attempt(s) run again after their worker stopped"
             if result.retried else "")
    click.echo(f"\nstudy: {result.study_name} ({len(result.trials)} trials, "
               f"{len(result.failed)} failed{rerun}) in {_storage_label(storage)}")
    if len(result.failed):
        for reason, n in result.failed["reason"].value_counts().head(3).items():
            click.echo(f"  failed {n}x: {reason}")
    click.echo(f"resume or extend: autoreg search ... --study {result.study_name}"
               + (f" --storage {_storage_label(storage)}" if storage else ""))
    if result.running_elsewhere and not no_mlflow:
        click.echo(f"{result.running_elsewhere} trial(s) of this study are still running in "
                   "other workers; the last worker to finish logs the front to MLflow")
    elif result.mlflow_run_id:
        # Where the record went, as the study keeps it (mlflow itself is not imported here).
        click.echo(run_location(result.mlflow_run_id, tracking_uri
                                or result.study.user_attrs.get("autoreg.tracking_uri")))
    elif result.tracking_error:
        click.echo(f"autoreg: warning: not logged to MLflow: {result.tracking_error}", err=True)
        click.echo("autoreg: the trials are safe in the study; log them when MLflow is back "
                   f"with: {_relog_command(result.study_name, storage, tracking_uri)}", err=True)
    if result.interrupted:
        click.echo(f"autoreg: interrupted ({result.signal}); the running trial is queued "
                   "again: rerun the same command to resume", err=True)
        sys.exit(143 if result.signal == "SIGTERM" else 130)


def _relog_command(study, storage, tracking_uri) -> str:
    from .storage import redact

    parts = ["autoreg front", study, "--log"]
    if storage:
        parts += ["--storage", redact(storage)]
    if tracking_uri:
        parts += ["--tracking-uri", redact(tracking_uri)]
    return " ".join(parts)


def _read_groups(path):
    if path is None:
        return None
    from .errors import UsageError

    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise UsageError(f"groups file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read groups file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"groups file {path} is not valid JSON: {exc.msg} at line "
                         f"{exc.lineno}") from None


def _storage_label(storage) -> str:
    from .storage import default_storage, redact

    return redact(storage) if storage else default_storage()


def _jsonable(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def _front_rows(result, pick_trial):
    rows = []
    for _, row in result.front.iterrows():
        item = {k: _jsonable(v) for k, v in row.items() if k not in ("feasible", "pareto")}
        item = {k: v for k, v in item.items() if not ("." in k and v is None)}
        item["pick"] = int(row["trial"]) == pick_trial
        rows.append(item)
    return rows


def _result_json(result, pick, storage, tracking_uri) -> dict:
    from .storage import redact

    pick_trial = int(pick["trial"])
    return {
        "study": result.study_name,
        "storage": _storage_label(storage),
        "mlflow_run_id": result.mlflow_run_id,
        "tracking_uri": redact(tracking_uri),
        "n_trials": int(len(result.trials) + len(result.failed)),
        "n_failed": int(len(result.failed)),
        "objectives": list(result.objectives),
        "pick": pick_trial,
        "front": _front_rows(result, pick_trial),
    }


def _print_front(result, pick, rule) -> None:
    front = result.front.copy()
    params = [c for c in front.columns if "." in c and front[c].notna().any()]
    front[params] = front[params].astype(object).where(front[params].notna(), "")
    pick_trial = int(pick["trial"])
    front.insert(0, "pick", ["*" if t == pick_trial else "" for t in front["trial"]])
    several = "," in str(result.settings.get("families", ""))
    cols = ["pick", "trial", *(["family"] if several else []), "recipe", *params, "error",
            "sparsity", "size_bytes", "n_features_used", "test_error"]
    fmt = {"error": "{:.5g}".format, "test_error": "{:.5g}".format,
           "sparsity": "{:.3f}".format}
    for p in params:
        fmt[p] = lambda v: v if v == "" else f"{v:.4g}" if isinstance(v, float) else str(v)
    click.echo(f"Pareto front ({len(front)} of {len(result.trials)} trials; "
               f"error = {result.settings.get('metric')} on validation, test_error on the "
               f"held-out test split)")
    click.echo(front[cols].to_string(index=False, formatters=fmt))
    click.echo(f"* pick ({rule}): trial {pick_trial}, {pick['recipe']}, "
               f"error {pick['error']:.5g}, sparsity {pick['sparsity']:.3f}, "
               f"{int(pick['size_bytes'])} bytes")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def plugins(obj, as_json):
    """List technique plugins: name, stage, families, search space, distribution."""
    from .registry import load_techniques

    found = load_techniques(disable=obj["disable"], modules=obj["modules"])
    rows = []
    for name, reg in found.items():
        tech = reg.technique
        spaces = {}
        for fam in tech.families:
            task = tech.tasks[0]
            spaces[fam] = {p: s.as_dict() for p, s in tech.search_space(fam, task).items()}
        rows.append({"name": name, "stage": tech.stage, "families": list(tech.families),
                     "tasks": list(tech.tasks), "search_space": spaces,
                     "plugin": reg.plugin, "distribution": reg.distribution,
                     "version": reg.version, "description": tech.description})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']}  [{row['stage']}]  families: {', '.join(row['families'])}  "
                   f"tasks: {', '.join(row['tasks'])}  from {row['distribution']} "
                   f"{row['version']}")
        tech = found[row["name"]].technique
        for fam in tech.families:
            for p, spec in tech.search_space(fam, tech.tasks[0]).items():
                click.echo(f"    {fam}: {p}: {spec.describe()}")
        if row["description"]:
            click.echo(f"    {row['description']}")


def _open_result(study_name, storage, artifacts):
    import optuna

    from .errors import StudyError
    from .result import SearchResult
    from .storage import ModelStore, open_storage

    store = open_storage(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=store)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(store)]
        hint = f"; studies here: {', '.join(names[-5:])}" if names else ""
        raise StudyError(f"no study named {study_name!r} in {_storage_label(storage)}"
                         f"{hint}") from None
    root = artifacts or study.user_attrs.get("autoreg.artifacts")
    result = SearchResult(study, store=store, models=ModelStore(root) if root else None,
                          storage_url=storage)
    if result.trials.empty:
        raise StudyError(f"study {study_name!r} has no completed trials")
    return result


@cli.command()
@click.argument("study")
@click.option("--storage", metavar="URL", help="Optuna storage URL or journal file of the study "
              "(default: as for search).")
@click.option("--pick", "rule", default="within", show_default=True,
              type=click.Choice(["within", "1se", "knee"]), help="Rule that picks one model "
              "(as for search).")
@click.option("--tolerance", default=0.01, show_default=True, type=float, metavar="FRACTION",
              help="Relative error tolerance of the 'within' rule.")
@click.option("--log", "log", is_flag=True, help="(Re)log the study to MLflow: the parent run, "
              "plots, child runs and models.")
@click.option("--tracking-uri", metavar="URI", help="MLflow tracking URI for --log (default: "
              "MLflow's own).")
@click.option("--experiment", metavar="NAME", help="MLflow experiment for --log (default: "
              "autoreg).")
@click.option("--log-trials", default="front", show_default=True,
              type=click.Choice(["front", "all"]), help="With --log: which trials get runs.")
@click.option("--register", metavar="NAME", help="With --log: register the pick under this "
              "model name.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def front(study, storage, rule, tolerance, log, tracking_uri, experiment, log_trials, register,
          as_json):
    """Show the Pareto front of STUDY (and, with --log, write its MLflow record)."""
    from .errors import UsageError

    if register and not log:
        raise UsageError("--register needs --log")
    result = _open_result(study, storage, None)
    pick = result.pick(rule, tolerance=tolerance)
    if log:
        from .tracking import log_search, run_location

        result.mlflow_run_id = log_search(
            result, result.settings, tracking_uri=tracking_uri, experiment=experiment,
            storage_url=storage, log_trials=log_trials, register=register,
            schema=result.study.user_attrs.get("autoreg.schema"))
    if as_json:
        click.echo(json.dumps(_result_json(result, pick, storage, tracking_uri), indent=2))
        return
    _print_front(result, pick, rule)
    if log:
        click.echo(run_location(result.mlflow_run_id, tracking_uri))


@cli.command()
@click.argument("study")
@click.option("--trial", type=int, metavar="N", help="Trial number (default: the pick).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="File to write.")
@click.option("--storage", metavar="URL", help="Optuna storage URL or journal file of the study "
              "(default: as for search).")
@click.option("--artifacts", metavar="FOLDER", help="Folder of trial model files, if not where "
              "the study says.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def export(study, trial, output, storage, artifacts, as_json):
    """Write a trial's model of STUDY in the compact format (load with autoreg.load)."""
    from .errors import UsageError

    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):  # said before the study is opened
        why = ("is not a folder; choose" if os.path.exists(folder)
               else "does not exist; create it or choose")
        raise UsageError(f"cannot write {output}: {folder} {why} another -o path")
    result = _open_result(study, storage, artifacts)
    if trial is None:
        trial = int(result.pick()["trial"])
    data = result.model_bytes(trial)
    from .export import loads
    from .model import from_export

    # A damaged or replaced model file is refused, not passed on.
    from_export(*loads(data, quantized=True))
    try:
        with open(output, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}; choose a writable "
                         "-o path") from None
    if as_json:
        click.echo(json.dumps({"study": study, "trial": trial, "path": output,
                               "size_bytes": len(data)}))
    else:
        click.echo(f"wrote trial {trial} of {study} to {output} ({len(data)} bytes)")


@cli.command()
@click.option("--tracking-uri", metavar="URI", help="The MLflow store to show (default: the "
              "one --study was logged to, else MLflow's default, sqlite:///mlflow.db here).")
@click.option("--study", metavar="NAME", help="Show the store this study was logged to.")
@click.option("--storage", metavar="URL", help="Optuna storage of --study.")
@click.option("--host", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="Address to bind; anything but loopback exposes the UI to the network.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--dry-run", is_flag=True, help="Print the command instead of running it.")
def ui(tracking_uri, study, storage, host, port, dry_run):
    """Start the MLflow UI on a search's tracking store, bound to 127.0.0.1 by default."""
    import shlex

    from .errors import UsageError
    from .storage import redact

    if tracking_uri is None and study is not None:
        tracking_uri = _open_result(study, storage, None).study.user_attrs.get(
            "autoreg.tracking_uri")
        if tracking_uri is not None and re.search(
                r"://[^/?#]*:\*\*\*@|[?&;](password|passwd|pwd)=\*\*\*", tracking_uri):
            # Studies keep no passwords: the user gives this one.
            raise UsageError(f"study {study!r} was logged to {tracking_uri}, kept without its "
                             "password: give the store with --tracking-uri")
    if tracking_uri is None:
        import mlflow

        tracking_uri = mlflow.get_tracking_uri()
    if tracking_uri.startswith(("http://", "https://")):
        click.echo(f"that store is an MLflow server already: open {redact(tracking_uri)}")
        return
    if not 0 < port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {port}")
    # The MLflow of this environment, whether or not its script is on PATH, started without
    # the working directory on sys.path (as "-m mlflow" would put it: an mlflow.py there would
    # run). The store goes in the environment: a command line is readable by any local user.
    cmd = [sys.executable, "-c", _RUN_MLFLOW, "ui", "--host", host, "--port", str(port)]
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": tracking_uri}
    if dry_run:
        click.echo(f"MLFLOW_BACKEND_STORE_URI={shlex.quote(redact(tracking_uri))} "
                   f"{shlex.join(cmd)}")
        return
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"autoreg: warning: the UI will listen on {host}, reachable from the "
                   "network", err=True)
    click.echo(f"MLflow UI on http://{'localhost' if host == '127.0.0.1' else host}:{port} "
               f"for {redact(tracking_uri)} (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        # MLflow takes this process over, so signals reach it (and it stops its own workers).
        os.execve(sys.executable, cmd, env)
    except OSError as exc:
        raise AutoRegError(f"cannot start the MLflow UI: {exc}") from None


_RUN_MLFLOW = ("import sys; sys.path[:] = [p for p in sys.path if p]; "
               "from mlflow.cli import cli; cli.main(prog_name='mlflow')")


def main(argv=None) -> None:
    """Entry point: every expected failure becomes one line on stderr and an exit code."""
    debug = bool(os.environ.get("AUTOREG_DEBUG"))
    stop_on_sigterm()
    try:
        cli.main(args=argv, prog_name="autoreg", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("autoreg: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt as exc:
        click.echo("autoreg: interrupted", err=True)
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    except click.UsageError as exc:
        hint = f" (see autoreg {exc.ctx.info_name} --help)" if exc.ctx else ""
        click.echo(f"autoreg: error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"autoreg: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except AutoRegError as exc:
        if debug:
            raise
        click.echo(f"autoreg: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug or an environment fault: still one line unless debugging
        if debug:
            raise
        click.echo(f"autoreg: internal error: {type(exc).__name__}: {first_line(exc)} "
                   "(set AUTOREG_DEBUG=1 for details)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
