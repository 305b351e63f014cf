"""MLflow record of a search: one parent run per study, one child run per front trial.

All MLflow work happens here, once per search, after the trials: none of it is on the
per-trial path. mlflow is imported only when this module runs (and by :func:`prewarm`, in a
process of its own). Two child processes take slow parts off the record's wall time: one
makes a new local store while the trials run (:func:`prewarm`), one draws the pictures while
the runs are written (:class:`_Drawing`); when either fails, the work is done here.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import tempfile
import uuid

from ._version import __version__
from .errors import AutoRegError, first_line
from .storage import redact

DEFAULT_EXPERIMENT = "autoreg"
STUDY_TAG = "autoreg.study"
TRIAL_TAG = "autoreg.trial"
CHILD_METRICS = ("error", "error_se", "sparsity", "size_bytes", "n_features_used",
                 "fit_seconds", "test_error")


class TrackingError(AutoRegError):
    """MLflow could not be reached or refused the record."""


def _client(tracking_uri, warm=None):
    import mlflow
    from mlflow import MlflowClient

    if warm is not None:
        warm.close()  # its store is whole, or absent and made here
    uri = tracking_uri or mlflow.get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        _check_reachable(uri)
    return MlflowClient(tracking_uri=uri), uri


def _check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not after MLflow's minutes of retries, when a server is down."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        pass  # the server answered: reachable, whatever it thinks of /health
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(f"MLflow server {redact(uri)} is unreachable: {reason}") from None


def _experiment_id(client, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(name)
        except Exception:
            # Workers starting together race to create it; the losers find it made.
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


def _find_parent(client, exp_id: str, study: str):
    runs = client.search_runs([exp_id], filter_string=f"tags.`{STUDY_TAG}` = '{study}' and "
                              f"tags.`autoreg.role` = 'search'", max_results=1)
    return runs[0] if runs else None


def _connect(tracking_uri, experiment, warm=None):
    try:
        client, uri = _client(tracking_uri, warm)
        return client, uri, _experiment_id(client, experiment or DEFAULT_EXPERIMENT)
    except TrackingError:
        raise
    except Exception as exc:
        where = redact(tracking_uri) or "the default store"
        raise TrackingError(f"cannot reach MLflow at {where}: {first_line(exc)}") from None


# -- prewarm ------------------------------------------------------------------------------------
class Prewarm:
    """What :func:`prewarm` started: a process making a new local MLflow store, or nothing."""

    def __init__(self, proc=None, scratch: str | None = None):
        self._proc = proc
        self._scratch = scratch

    def close(self, wait: float = 60.0) -> None:
        """Let the process finish (up to ``wait`` seconds), else end it; then nothing of it
        is left running. Safe to call again. Whatever happens, the store is whole or absent:
        the process makes it under another name and gives it its name when done."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if wait and proc.poll() is None:
            # What opening the store needs next here, imported while the process goes on.
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401

            if not os.path.exists(self._scratch):
                wait = 0  # it is still importing MLflow: making the store here is sooner
        _ended(proc, wait)
        for suffix in ("", "-journal"):
            try:
                os.remove(self._scratch + suffix)  # left by a process ended half-way
            except OSError:
                pass

    def __enter__(self) -> Prewarm:
        return self

    def __exit__(self, *exc) -> None:
        self.close(wait=0)


def prewarm(tracking_uri=None, experiment=None) -> Prewarm:
    """Start making the MLflow store in the background, for a search about to run trials.

    Making a new local SQLite store (MLflow's default, or a ``sqlite:///`` ``tracking_uri``)
    costs MLflow 1-1.5 s of CPU (its schema migrations) after importing its SQL store; a child
    process does it while the trials run, on another core, and :func:`log_search` (given the
    returned handle) finds it made. Nothing is started when the store exists already, or is
    not a local SQLite file (a server, another database), or on a one-core machine: then there
    is nothing to win. ``tracking_uri=None`` means MLflow's default, as in :func:`log_search`.

    mlflow is not imported in this process: imported in a thread, it holds the interpreter
    lock away from the trials (which then wait as long as the import takes) and inflates
    their ``fit_seconds``.

    The caller must end the returned :class:`Prewarm`: ``log_search(..., prewarm=handle)``
    does, else ``handle.close()`` (or ``with prewarm(...) as handle:``). Ending it early
    leaves no store, half-made or otherwise.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri is None and "mlflow" in sys.modules:
        uri = sys.modules["mlflow"].get_tracking_uri()  # a URI the program set
    path = _new_sqlite_file(uri or _DEFAULT_STORE)
    if path is None or (os.cpu_count() or 1) < 2:
        return Prewarm()
    scratch = os.path.join(os.path.dirname(os.path.abspath(path)),
                           f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}")
    try:
        proc = _python("autoreg.tracking:_make_store", uri or "",
                       experiment or DEFAULT_EXPERIMENT, scratch)
    except OSError:
        return Prewarm()  # no process to be had: log_search makes the store itself
    return Prewarm(proc, scratch)


_DEFAULT_STORE = "sqlite:///mlflow.db"  # MLflow 3's default store (if ./mlruns has no runs)


def _new_sqlite_file(uri: str) -> str | None:
    """The file of a ``sqlite:///`` store that does not exist yet, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    from urllib.parse import unquote

    path = unquote(uri[len("sqlite:///"):].split("?")[0])
    return None if path in ("", ":memory:") or os.path.exists(path) else path


def _make_store() -> None:
    """The body of :func:`prewarm`'s process: make the store and the experiment in a scratch
    file, then give it the store's name unless someone made the store meanwhile."""
    import mlflow

    tracking_uri, experiment, scratch = sys.argv[1:4]
    path = _new_sqlite_file(tracking_uri or mlflow.get_tracking_uri())
    if path is None:
        return  # MLflow's default is another store (./mlruns), or it exists by now
    try:
        _connect(f"sqlite:///{os.path.abspath(scratch)}", experiment)
        if os.path.exists(scratch + "-wal"):
            return  # part of the store is still in SQLite's write-ahead log: not whole yet
        with contextlib.suppress(FileExistsError):  # the store was made meanwhile
            os.link(scratch, path)
    finally:
        with contextlib.suppress(OSError):
            os.remove(scratch)


LOG_TRIALS = ("front", "all")


def dataset_schema(ds) -> list[dict]:
    """Column names and types of the data, for the MLflow dataset input (no values)."""
    X = ds.X
    if hasattr(X, "dtypes"):
        return [{"name": str(c), "type": _mlflow_type(t)} for c, t in X.dtypes.items()]
    kind = "double" if getattr(X, "dtype", None) is None or X.dtype.kind == "f" else "long"
    return [{"name": str(i), "type": kind} for i in range(X.shape[1])]


def _mlflow_type(dtype) -> str:
    kind = getattr(dtype, "kind", "O")
    return {"f": "double", "i": "long", "u": "long", "b": "boolean"}.get(kind, "string")


def _dataset_input(settings: dict, schema: list | None):
    """An MLflow dataset input built from the search's record of its data: name, digest,
    shape and column schema. The rows themselves never leave the machine."""
    import json

    from mlflow.entities import Dataset, DatasetInput, InputTag

    source = {"name": settings.get("dataset"), "rows": settings.get("n_rows"),
              "columns": settings.get("n_columns")}
    entity = Dataset(
        name=str(settings.get("dataset", "data")),
        digest=str(settings.get("dataset_digest", ""))[:36] or "unknown",
        source_type="autoreg",
        source=json.dumps(source),
        schema=json.dumps({"mlflow_colspec": schema or []}),
        profile=json.dumps({"num_rows": settings.get("n_rows"),
                            "num_columns": settings.get("n_columns"),
                            "task": settings.get("task")}),
    )
    return DatasetInput(entity, tags=[InputTag("mlflow.data.context", "training")])


def log_search(result, settings: dict, *, tracking_uri=None, experiment=None,
               storage_url=None, log_trials: str = "front", register: str | None = None,
               schema: list | None = None, log_models: bool = True, once: bool = False,
               prewarm: Prewarm | None = None) -> str:
    """Log ``result`` and return the parent run id. A resumed study reuses its parent run.

    The parent run holds the settings, ``front.csv``, ``trials.csv``, ``pareto.html``,
    ``pareto.png``, summary metrics (front size, hypervolume, the pick's numbers) and the
    dataset as an input (schema and digest only). Every front trial gets a child run with the
    same metric names, its parameters, tags and its model (an MLflow pyfunc model plus the
    compact export); with ``log_trials="all"`` every other completed trial gets a child run
    without a model. ``register`` names a registered model to add the pick to.

    ``once``: skip the writing when this very front (same trials, same MLflow store) was
    logged already, as it is when several workers of one study finish together.

    ``prewarm``: what :func:`prewarm` returned for this ``tracking_uri`` and ``experiment``;
    it is waited for and closed here.
    """
    if log_trials not in LOG_TRIALS:
        raise AutoRegError(f"log_trials must be one of {', '.join(LOG_TRIALS)}, got "
                           f"{log_trials!r}")
    with _log_lock(result, storage_url)(), _Drawing(result) as drawing:
        # One process at a time writes a study's record, so that workers finishing together
        # make one parent run and one child run per trial between them (and do not race to
        # create the tables of a new local MLflow store).
        client, uri, exp_id = _connect(tracking_uri, experiment, prewarm)
        signature = _signature(result, uri, exp_id)
        study_attrs = result.study.user_attrs
        if once and study_attrs.get(LOGGED_ATTR) == signature \
                and study_attrs.get("autoreg.mlflow_run_id"):
            return study_attrs["autoreg.mlflow_run_id"]  # another worker logged this front
        try:
            run_id = _log(client, uri, exp_id, result, settings, storage_url, log_trials,
                          register, schema, log_models, drawing)
        except TrackingError:
            raise
        except Exception as exc:
            raise TrackingError(f"MLflow at {redact(uri)} refused the record: "
                                f"{type(exc).__name__}: {first_line(exc)}") from None
        result.study.set_user_attr(LOGGED_ATTR, signature)
        return run_id


LOGGED_ATTR = "autoreg.logged"


def _signature(result, uri: str, exp_id: str) -> str:
    """What a record shows: the trials, the front and where it went."""
    front = ",".join(str(int(t)) for t in sorted(result.front["trial"]))
    state = "killed" if result.interrupted else "done"
    return (f"{redact(uri)}|{exp_id}|{len(result.trials)}+{len(result.failed)}|{front}|"
            f"{state}")


def _log_lock(result, storage_url):
    import contextlib

    from .workers import claim_lock

    if result.storage is None:
        return contextlib.nullcontext
    return claim_lock(result.storage, storage_url, result.study_name, purpose="log")


def _log(client, uri, exp_id, result, settings, storage_url, log_trials, register, schema,
         log_models, drawing) -> str:
    from mlflow.entities import Metric, Param, RunTag

    study = result.study_name
    parent = _find_parent(client, exp_id, study)
    if parent is None:
        run = client.create_run(exp_id, run_name=study, tags={
            STUDY_TAG: study, "autoreg.role": "search", "autoreg.version": __version__,
            "autoreg.storage": redact(storage_url) or "default",
            "autoreg.dataset": str(settings.get("dataset"))})
        run_id = run.info.run_id
        client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in settings.items()])
        client.log_inputs(run_id, datasets=[_dataset_input(settings, schema)])
        children = {}
    else:
        run_id = parent.info.run_id
        client.update_run(run_id, status="RUNNING")
        children = {r.data.tags.get(TRIAL_TAG): r for r in client.search_runs(
            [exp_id], filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'", max_results=50000)}
        # The tag of the version that logged last, when a study is resumed by a newer one.
        client.set_tag(run_id, "autoreg.version", __version__)
    status = "FINISHED"
    try:
        pick = result.pick() if len(result.front) else None
        pick_trial = None if pick is None else int(pick["trial"])
        for name, frame in (("front.csv", result.front), ("trials.csv", result.trials)):
            path = os.path.join(drawing.folder, name)
            frame.to_csv(path, index=False)
            client.log_artifact(run_id, path)
        front_trials = set(int(t) for t in result.front["trial"])
        rows = result.trials if log_trials == "all" else result.front
        pick_uri = None
        for _, row in rows.iterrows():
            trial = int(row["trial"])
            on_front = trial in front_trials
            tags = {"recipe": row["recipe"], "technique": _penalty(result, trial),
                    "family": str(row.get("family", "linear")),
                    "pareto": str(on_front).lower(), "pick": str(trial == pick_trial).lower(),
                    TRIAL_TAG: str(trial)}
            metrics = [Metric(k, float(row[k]), 0, 0) for k in CHILD_METRICS
                       if not _missing(row[k])]
            params = [Param(k, str(row[k])) for k in rows.columns
                      if "." in k and not _missing(row[k])]
            child = children.get(str(trial))
            if child is None:
                model = result.model_bytes(trial) if on_front and log_models else None
                model_uri = _new_child(client, exp_id, run_id, row, tags, metrics, params,
                                       model, schema)
            else:
                # Params too if missing: a record that failed half-way left some out.
                client.log_batch(child.info.run_id, metrics=metrics,
                                 params=[p for p in params if p.key not in child.data.params],
                                 tags=[RunTag(k, v) for k, v in tags.items()])
                model_uri = child.data.tags.get("autoreg.model_uri")
                if on_front and log_models and model_uri is None:
                    model_uri = _log_model(client, child.info.run_id, result, trial, schema)
            if trial == pick_trial:
                pick_uri = model_uri
        logged = set(rows["trial"].astype(int))
        for trial, child in children.items():
            if trial is not None and int(trial) not in front_trials | logged:
                client.log_batch(child.info.run_id, tags=[RunTag("pareto", "false"),
                                                          RunTag("pick", "false")])
        summary = [Metric("front_size", float(len(result.front)), 0, 0),
                   Metric("n_trials", float(len(result.trials)), 0, 0),
                   Metric("n_failed", float(len(result.failed)), 0, 0)]
        summary_tags = []
        hv = _hypervolume(result)
        if hv is not None:
            value, reference = hv
            summary.append(Metric("hypervolume", float(value), 0, 0))
            summary_tags.append(RunTag("hypervolume.reference", _reference_text(reference)))
        if pick is not None:
            summary += [Metric(f"pick_{k}", float(pick[k]), 0, 0)
                        for k in ("error", "sparsity", "size_bytes", "test_error")
                        if not _missing(pick[k])]
            summary_tags.append(RunTag("pick_trial", str(pick_trial)))
        client.log_batch(run_id, metrics=summary, tags=summary_tags)
        for path in drawing.files():  # drawn meanwhile
            client.log_artifact(run_id, path)
        if register and pick_uri is not None:
            from .mlflow_model import register as register_model

            try:
                version = register_model(pick_uri, register, client=client)
            except AutoRegError as exc:
                raise TrackingError(f"the front is logged, but registering the pick as "
                                    f"{register!r} failed: {exc}") from None
            client.set_tag(run_id, "registered_model", f"{register}/{version}")
        if result.interrupted:
            status = "KILLED"
    except BaseException:
        status = "FAILED"
        raise
    finally:
        client.set_terminated(run_id, status=status)
    result.study.set_user_attr("autoreg.mlflow_run_id", run_id)
    result.study.set_user_attr("autoreg.tracking_uri", redact(uri))
    return run_id


class _Drawing:
    """``pareto.html`` and ``pareto.png``, drawn in a child process while this one opens MLflow
    and writes the runs: importing matplotlib and plotly and drawing take about a second,
    hidden so on two cores. Drawn here instead on one core, or if that process fails. The
    files (and the tables) go to ``folder``, a scratch folder removed on leaving."""

    def __init__(self, result):
        from . import plots

        self.result = result
        self.pick = plots._pick_trial(result, None)  # what the plots mark by default
        self._tmp = tempfile.TemporaryDirectory(prefix="autoreg-mlflow-")
        self.folder = self._tmp.name
        self._proc = None
        if (os.cpu_count() or 1) > 1:
            with contextlib.suppress(Exception):  # then drawn here
                self._proc = self._start()

    def _start(self):
        import pickle
        import types

        r = self.result
        stand_in = types.SimpleNamespace(trials=r.trials, front=r.front, failed=r.failed,
                                         settings=r.settings, objectives=r.objectives,
                                         study_name=r.study_name)
        path = os.path.join(self.folder, "result.pickle")
        with open(path, "wb") as fh:
            pickle.dump(stand_in, fh)
        return _python("autoreg.plots:_write_files_from_pickle", path,
                       "" if self.pick is None else str(self.pick))

    def files(self) -> list[str]:
        """The paths of the two files, once written."""
        from . import plots

        proc, self._proc = self._proc, None
        if proc is not None and _ended(proc, wait=120) == 0:
            return [os.path.join(self.folder, name) for name in plots.FILES]
        return plots.write_files(self.result, self.folder, self.pick)

    def __enter__(self) -> _Drawing:
        return self

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            _ended(self._proc, wait=0)
        self._tmp.cleanup()


def _python(function: str, *args: str):
    """A child Python process calling ``function`` (``"module:name"``) of this very autoreg,
    ``args`` in its ``sys.argv[1:]``; it gives up (exit code 1) if it would import another
    copy of autoreg. Its output is dropped: when it fails, its caller does the work itself."""
    import autoreg

    module, name = function.split(":")
    here = os.path.realpath(autoreg.__file__)
    code = (f"import os, sys; sys.path.append({os.path.dirname(os.path.dirname(here))!r})\n"
            f"import autoreg\n"
            f"if os.path.realpath(autoreg.__file__) != {here!r}: sys.exit(1)\n"
            f"from {module} import {name}; {name}()")
    return subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ended(proc, wait: float) -> int:
    """``proc``'s exit code once it ended: it is given ``wait`` seconds, then killed."""
    try:
        return proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def _hypervolume(result):
    from . import plots

    if result.front.empty:
        return None
    return plots.hypervolume(result.front, result.trials, result.objectives)


def _reference_text(reference: dict) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in reference.items())


def _new_child(client, exp_id, parent_id, row, tags, metrics, params, model,
               columns) -> str | None:
    """Make the child run of ``row``, its tags given at creation, then its params and metrics
    in one batch; with ``model`` (the trial's compact export), that batch is the one that also
    links the metrics to the logged model (see :func:`autoreg.mlflow_model.log_new_model`).
    Returns the model's URI, or None without a model."""
    trial = int(row["trial"])
    child_id = client.create_run(exp_id, run_name=f"trial-{trial}-{row['recipe']}",
                                 tags={"mlflow.parentRunId": parent_id, **tags}).info.run_id
    if model is None:
        client.log_batch(child_id, metrics=metrics, params=params)
        client.set_terminated(child_id)
        return None
    from .mlflow_model import log_new_model

    client.set_terminated(child_id)
    uri = log_new_model(client, exp_id, child_id, model, metrics=metrics, params=params,
                        columns=columns)
    client.set_tag(child_id, "autoreg.model_uri", uri)
    return uri


def _log_model(client, child_run_id: str, result, trial: int, schema) -> str | None:
    from .mlflow_model import log_model

    uri = log_model(client, child_run_id, result.model_bytes(trial), columns=schema)
    client.set_tag(child_run_id, "autoreg.model_uri", uri)
    return uri


def _penalty(result, trial: int) -> str:
    """The recipe's penalty (``none`` without one): the technique the UI groups runs by."""
    t = result.study_trial(trial)
    attrs = t.user_attrs.get("autoreg", {}) if t is not None else {}
    return str(attrs.get("penalty", "none"))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def run_location(run_id: str, tracking_uri=None) -> str:
    """A line telling the user where to look at the run."""
    import mlflow

    uri = tracking_uri or mlflow.get_tracking_uri()
    if uri.startswith("http"):
        return f"MLflow run {run_id}: {uri.rstrip('/')}/#/experiments/-/runs/{run_id}"
    return (f"MLflow run {run_id} in {redact(uri)} "
            f"(view: mlflow ui --backend-store-uri {redact(uri)})")
