"""MLflow record of a search: one parent run per study, one child run per front trial.

All MLflow work happens here, once per search, after the trials: none of it is on the
per-trial path, and the search process itself does not import mlflow where another core can.
A :class:`Recorder` process starts with the search: it imports mlflow, makes or opens the
store and warms the first model save while the trials run, then writes the record of the
result it is handed (:func:`log_search`). The pictures are drawn by one more process
(:class:`_Drawing`) while the runs are written. When a process fails, its work is done here.
"""

from __future__ import annotations

import contextlib
import json
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
    from urllib.parse import urlsplit, urlunsplit

    # Credentials in the URL are not the host: asked without them, a server that wants them
    # still answers (401), which is all this checks.
    parts = urlsplit(uri)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    try:
        urllib.request.urlopen(bare.rstrip("/") + "/health", timeout=timeout).close()
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


#: Tracking URI schemes MLflow's own stores take (a plain folder path needs none).
TRACKING_SCHEMES = ("file", "sqlite", "postgresql", "mysql", "mssql", "http", "https",
                    "databricks", "databricks-uc", "uc")


def check_uri(uri) -> None:
    """Refuse a tracking URI that cannot work (:class:`UsageError`), before a search runs: an
    unknown scheme, ``sqlite:`` without ``///`` or in a folder that does not exist, ``http``
    without a host. It only reads the URI (mlflow is not imported); a store that cannot be
    reached is found when the record is written."""
    import re
    from urllib.parse import urlsplit

    from .errors import UsageError

    if uri is None:
        return
    if not isinstance(uri, str) or not uri.strip():
        raise UsageError(f"tracking URI must be a non-empty string, got {uri!r}")
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*):", uri)
    if match is None or len(match.group(1)) == 1:  # no scheme, or a Windows drive letter
        return  # a folder path: MLflow's file store
    scheme = match.group(1).lower()
    if scheme.split("+")[0] not in TRACKING_SCHEMES:
        raise UsageError(f"unsupported tracking URI {redact(uri)}: use sqlite:///path/mlflow.db, "
                         "http(s)://host:port, a database URL or a folder")
    if scheme == "sqlite":
        path = _new_sqlite_file(uri) if uri.startswith("sqlite:///") else None
        if not uri.startswith("sqlite:///"):
            raise UsageError(f"tracking URI {redact(uri)} needs three slashes: "
                             "sqlite:///path/mlflow.db")
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if folder and not os.path.isdir(folder):
            raise UsageError(f"tracking URI {redact(uri)}: folder {folder} does not exist; "
                             "create it or choose another --tracking-uri")
    elif scheme in ("http", "https") and not urlsplit(uri).hostname:
        raise UsageError(f"tracking URI {redact(uri)} names no host: use "
                         f"{scheme}://host:port")


# -- the recorder process ----------------------------------------------------------------------
class Recorder:
    """A process that gets MLflow ready while the trials run, then writes their record.

    None of what the record costs before its first run depends on the trials: importing mlflow
    (about 2 s here), making a new local store (1-1.5 s of schema migrations), MLflow's first
    model save (about 1.5 s: it checks the pinned requirements against every installed
    package) and importing the plotting libraries (about 1 s, in a drawing process of the
    recorder's own). A search starts the recorder first; on two or more cores all of this runs
    beside the trials. When they are done, :func:`log_search` hands the result over, waits
    for the run id and keeps the study's record of it.

    The search process never imports mlflow itself then: imported in a thread, mlflow holds the
    interpreter lock away from the trials (which then wait as long as the import takes) and
    inflates their ``fit_seconds``.

    Nothing is left half-made when the search stops early: a new local SQLite store is made
    under another name and given its name only when whole, and no run exists before the result
    is handed over. Without a recorder (one core, no process to be had), or when it dies, the
    record is written in the search process, as :func:`log_search` always can.

    ``tracking_uri=None`` means MLflow's default, as in :func:`log_search`. End it with
    :meth:`close` (or ``with``); :meth:`log` ends it when the record is written.
    """

    def __init__(self, tracking_uri=None, experiment=None):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self._proc = None
        self._ready = None
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if uri is None and "mlflow" in sys.modules:
            uri = sys.modules["mlflow"].get_tracking_uri()  # a URI the program set
        store = _new_sqlite_file(uri or _DEFAULT_STORE)
        self._scratch = None if store is None else os.path.join(
            os.path.dirname(os.path.abspath(store)),
            f".{os.path.basename(store)}.{uuid.uuid4().hex[:12]}")
        if (os.cpu_count() or 1) < 2:
            return  # nothing to win: the work would take the trials' core
        try:
            self._proc = _python("autoreg.tracking:_record", talk=True)
            # Its settings go to its stdin, not its command line, which any local user can
            # read (``ps``): the tracking URI may hold a password.
            self._proc.stdin.write(json.dumps([uri or "", experiment or DEFAULT_EXPERIMENT,
                                               self._scratch or ""]) + "\n")
            self._proc.stdin.flush()
        except OSError:
            if self._proc is not None:
                _ended(self._proc, wait=0)
            self._proc = None  # no process to be had: log_search writes the record itself

    @property
    def running(self) -> bool:
        return self._proc is not None

    def connected(self):
        """``(uri, experiment_id)`` once the process has its store, or None when it died (the
        caller then writes the record itself). :class:`TrackingError` when MLflow cannot be
        reached or refused the experiment."""
        if self._ready is None:
            self._ready = self._read()
            if self._ready is None:
                return None
        if "error" in self._ready:
            self.close()
            raise TrackingError(self._ready["error"])
        return self._ready["uri"], self._ready["experiment_id"]

    def log(self, snapshot: _Snapshot, **job) -> str | None:
        """Hand ``snapshot`` over (with :func:`log_search`'s options ``job``) and return the
        parent run id once the record is written; None when the process died first (the
        caller then writes it: a half-written record is completed, not repeated)."""
        import pickle

        with tempfile.TemporaryDirectory(prefix="autoreg-record-") as tmp:
            path = os.path.join(tmp, "job.pickle")
            with open(path, "wb") as fh:
                pickle.dump({"snapshot": snapshot, **job}, fh)
            try:
                self._proc.stdin.write(json.dumps({"job": path}) + "\n")
                self._proc.stdin.flush()
            except (OSError, ValueError):
                self.close()
                return None
            reply = self._read()
        self.close()
        if reply is None:
            return None
        if "error" in reply:
            raise TrackingError(reply["error"])
        return reply["run_id"]

    def _read(self) -> dict | None:
        """The process's next message, or None (and the process ended) when it died."""
        proc = self._proc
        if proc is None:
            return None
        try:
            line = proc.stdout.readline()
            if line:
                return json.loads(line)
        except (OSError, ValueError):
            pass
        self.close()
        return None

    def close(self, wait: float = 5.0) -> None:
        """End the process: told to stop, given ``wait`` seconds to do so (a record it is
        writing is marked FAILED), then killed. Safe to call again. A new store it was making
        is whole or absent afterwards."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()  # nothing (more) to record
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.terminate()
        _ended(proc, wait)
        if self._scratch:
            for suffix in ("", "-journal", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.remove(self._scratch + suffix)  # left by a process ended half-way

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close(wait=0)


_DEFAULT_STORE = "sqlite:///mlflow.db"  # MLflow 3's default store (if ./mlruns has no runs)


def _new_sqlite_file(uri: str) -> str | None:
    """The file of a ``sqlite:///`` store that does not exist yet, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    from urllib.parse import unquote

    path = unquote(uri[len("sqlite:///"):].split("?")[0])
    return None if path in ("", ":memory:") or os.path.exists(path) else path


def _record() -> None:
    """The body of the :class:`Recorder` process. ``argv``: the tracking URI (``""``: MLflow's
    default), the experiment and the scratch name for a new local store. It speaks one JSON
    object a line on its stdout: the store it connected to (or the error), then the run id
    (or the error) of the one result it reads from its stdin."""
    import signal

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    talk = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # what libraries print is not a message

    def say(**message) -> None:
        talk.write(json.dumps(message) + "\n")
        talk.flush()

    tracking_uri, experiment, scratch = (a or None for a in json.loads(sys.stdin.readline()))
    drawer = None
    with contextlib.suppress(Exception):  # else the pictures are drawn here
        drawer = _python("autoreg.plots:_draw_server", talk=True)
    try:
        try:
            if scratch:
                with contextlib.suppress(Exception):  # else _connect makes it, or says why not
                    _make_store(tracking_uri, experiment, scratch)
            client, uri, exp_id = _connect(tracking_uri, experiment)
        except TrackingError as exc:
            return say(error=str(exc))
        say(uri=uri, experiment_id=exp_id)
        with contextlib.suppress(Exception):  # a head start only
            from .mlflow_model import warm_up

            warm_up()
        line = sys.stdin.readline()
        if not line:
            return  # the search ended without a record to write
        import pickle

        with open(json.loads(line)["job"], "rb") as fh:
            job = pickle.load(fh)
        snapshot = job.pop("snapshot")
        try:
            with _Drawing(snapshot, drawer) as drawing:
                drawer = None  # the drawing's now
                run_id = _write(client, uri, exp_id, snapshot, drawing, **job)
        except TrackingError as exc:
            return say(error=str(exc))
        say(run_id=run_id)
        os._exit(0)  # all written: no need to wait for MLflow's teardown
    finally:
        if drawer is not None:
            _ended(drawer, wait=0)


def _make_store(tracking_uri, experiment, scratch) -> None:
    """Make a new local SQLite store and the experiment in ``scratch``, then give it the
    store's name unless someone made the store meanwhile: the store is whole or absent."""
    import mlflow

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
               recorder: Recorder | None = None) -> str:
    """Log ``result`` and return the parent run id. A resumed study reuses its parent run.

    The parent run holds the settings, ``front.csv``, ``trials.csv``, ``pareto.html``,
    ``pareto.png``, summary metrics (front size, hypervolume, the pick's numbers) and the
    dataset as an input (schema and digest only). Every front trial gets a child run with the
    same metric names, its parameters, tags and its model (an MLflow pyfunc model plus the
    compact export); with ``log_trials="all"`` every other completed trial gets a child run
    without a model. ``register`` names a registered model to add the pick to.

    ``once``: skip the writing when this very front (same trials, same MLflow store) was
    logged already, as it is when several workers of one study finish together.

    ``recorder``: the :class:`Recorder` started for this ``tracking_uri`` and ``experiment``
    when the search began; it writes the record, and is ended here.
    """
    if log_trials not in LOG_TRIALS:
        raise AutoRegError(f"log_trials must be one of {', '.join(LOG_TRIALS)}, got "
                           f"{log_trials!r}")
    job = dict(settings=settings, storage_url=storage_url, log_trials=log_trials,
               register=register, schema=schema)
    # One process at a time writes a study's record, so that workers finishing together make
    # one parent run and one child run per trial between them (and do not race to create the
    # tables of a new local MLflow store).
    with _log_lock(result, storage_url)():
        snapshot = _Snapshot(result, log_trials, log_models)
        where = recorder.connected() if recorder is not None else None
        if where is not None:
            uri, exp_id = where
            if once and _logged_already(result, uri, exp_id):
                recorder.close(wait=0)
                return result.study.user_attrs["autoreg.mlflow_run_id"]
            run_id = recorder.log(snapshot, **job)
            if run_id is not None:
                return _keep(result, run_id, uri, exp_id)
        if recorder is not None:
            recorder.close(wait=0)  # it died: the record is written here
        with _Drawing(snapshot) as drawing:  # drawn while this process opens MLflow
            client, uri, exp_id = _connect(tracking_uri, experiment)
            if once and _logged_already(result, uri, exp_id):
                return result.study.user_attrs["autoreg.mlflow_run_id"]
            run_id = _write(client, uri, exp_id, snapshot, drawing, **job)
        return _keep(result, run_id, uri, exp_id)


def _write(client, uri, exp_id, snapshot, drawing, **job) -> str:
    try:
        return _log(client, exp_id, snapshot, drawing=drawing, **job)
    except TrackingError:
        raise
    except Exception as exc:
        raise TrackingError(f"MLflow at {redact(uri)} refused the record: "
                            f"{type(exc).__name__}: {first_line(exc)}") from None


def _logged_already(result, uri, exp_id) -> bool:
    attrs = result.study.user_attrs
    return attrs.get(LOGGED_ATTR) == _signature(result, uri, exp_id) \
        and bool(attrs.get("autoreg.mlflow_run_id"))


def _keep(result, run_id: str, uri: str, exp_id: str) -> str:
    """The study's record of where its front went."""
    study = result.study
    study.set_user_attr("autoreg.mlflow_run_id", run_id)
    study.set_user_attr("autoreg.tracking_uri", redact(uri))
    study.set_user_attr(LOGGED_ATTR, _signature(result, uri, exp_id))
    return run_id


class _Snapshot:
    """What the record shows of a result, without its study: the tables, the pick, each
    logged trial's penalty and the front's model files. Picklable, for the :class:`Recorder`;
    read where the study is."""

    def __init__(self, result, log_trials: str, log_models: bool):
        self.study_name = result.study_name
        self.trials, self.front, self.failed = result.trials, result.front, result.failed
        self.settings, self.objectives = result.settings, result.objectives
        self.interrupted = bool(result.interrupted)
        self._pick = result.pick() if len(result.front) else None
        rows = result.trials if log_trials == "all" else result.front
        self.penalties = {int(t): _penalty(result, int(t)) for t in rows["trial"]}
        self.models = {int(t): result.model_bytes(int(t)) for t in result.front["trial"]} \
            if log_models else {}

    def pick(self):
        """The pick by the default rule (None without a front)."""
        return self._pick


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


def _log(client, exp_id, result, *, settings, storage_url, log_trials, register, schema,
         drawing) -> str:
    """Write the record of ``result`` (a :class:`_Snapshot`)."""
    from mlflow.entities import Metric, Param, RunTag

    from .mlflow_model import URI_TAG, log_artifact

    study = result.study_name
    parent = _find_parent(client, exp_id, study)
    if parent is None:
        run = client.create_run(exp_id, run_name=study, tags={
            STUDY_TAG: study, "autoreg.role": "search", "autoreg.version": __version__,
            "autoreg.storage": redact(storage_url) or "default",
            "autoreg.dataset": str(settings.get("dataset"))})
        info = run.info
        run_id = info.run_id
        client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in settings.items()])
        client.log_inputs(run_id, datasets=[_dataset_input(settings, schema)])
        children = {}
    else:
        info = parent.info
        run_id = info.run_id
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
            log_artifact(client, info, path)
        front_trials = set(int(t) for t in result.front["trial"])
        rows = result.trials if log_trials == "all" else result.front
        pick_uri = None
        for _, row in rows.iterrows():
            trial = int(row["trial"])
            on_front = trial in front_trials
            tags = {"recipe": row["recipe"], "technique": result.penalties[trial],
                    "family": str(row.get("family", "linear")),
                    "pareto": str(on_front).lower(), "pick": str(trial == pick_trial).lower(),
                    TRIAL_TAG: str(trial)}
            metrics = [Metric(k, float(row[k]), 0, 0) for k in CHILD_METRICS
                       if not _missing(row[k])]
            params = [Param(k, str(row[k])) for k in rows.columns
                      if "." in k and not _missing(row[k])]
            child = children.get(str(trial))
            if child is None:
                model = result.models.get(trial) if on_front else None
                model_uri = _new_child(client, exp_id, run_id, row, tags, metrics, params,
                                       model, schema)
            else:
                # Params too if missing: a record that failed half-way left some out.
                client.log_batch(child.info.run_id, metrics=metrics,
                                 params=[p for p in params if p.key not in child.data.params],
                                 tags=[RunTag(k, v) for k, v in tags.items()])
                model_uri = child.data.tags.get(URI_TAG)
                if model_uri is None and result.models.get(trial) is not None and on_front:
                    model_uri = _log_model(client, child.info.run_id, result.models[trial],
                                           schema)
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
            log_artifact(client, info, path)
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
    return run_id


class _Drawing:
    """``pareto.html`` and ``pareto.png``, drawn in another process while this one writes the
    runs: importing matplotlib and plotly and drawing take about a second, hidden so on two
    cores. ``drawer`` is such a process started earlier (the :class:`Recorder`'s, which has
    its imports done by now); else one is started here. Drawn here instead on one core, or if
    that process fails. The files (and the tables) go to ``folder``, a scratch folder removed
    on leaving."""

    def __init__(self, result, drawer=None):
        from . import plots

        self.result = result
        self.pick = plots._pick_trial(result, None)  # what the plots mark by default
        self._tmp = tempfile.TemporaryDirectory(prefix="autoreg-mlflow-")
        self.folder = self._tmp.name
        self._proc = None
        if drawer is None and (os.cpu_count() or 1) > 1:
            with contextlib.suppress(OSError):
                drawer = _python("autoreg.plots:_draw_server", talk=True)
        if drawer is not None:
            try:
                self._send(drawer)
                self._proc = drawer
            except Exception:  # then drawn here
                _ended(drawer, wait=0)

    def _send(self, drawer) -> None:
        import pickle
        import types

        r = self.result
        stand_in = types.SimpleNamespace(trials=r.trials, front=r.front, failed=r.failed,
                                         settings=r.settings, objectives=r.objectives,
                                         study_name=r.study_name)
        path = os.path.join(self.folder, "result.pickle")
        with open(path, "wb") as fh:
            pickle.dump(stand_in, fh)
        drawer.stdin.write(f"{path}\t{'' if self.pick is None else self.pick}\n")
        drawer.stdin.close()

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


def _python(function: str, *args: str, talk: bool = False):
    """A child Python process calling ``function`` (``"module:name"``) of this very autoreg,
    ``args`` in its ``sys.argv[1:]``; it gives up (exit code 1) if it would import another
    copy of autoreg. With ``talk``, its stdin and stdout are text pipes to this process;
    else it reads nothing. What it writes elsewhere is dropped: when it fails, its caller does
    the work itself."""
    import autoreg

    module, name = function.split(":")
    here = os.path.realpath(autoreg.__file__)
    # "python -c" puts the working directory first on sys.path: a data folder's plotly.py or
    # mlflow.py would run in place of the real one. Removed before anything is imported.
    code = (f"import os, sys; sys.path[:] = [p for p in sys.path if p]\n"
            f"sys.path.append({os.path.dirname(os.path.dirname(here))!r})\n"
            f"import autoreg\n"
            f"if os.path.realpath(autoreg.__file__) != {here!r}: sys.exit(1)\n"
            f"from {module} import {name}; {name}()")
    pipe = subprocess.PIPE if talk else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-c", code, *args], stdin=pipe, stdout=pipe,
                            stderr=subprocess.DEVNULL, text=True)


def _ended(proc, wait: float) -> int:
    """``proc``'s exit code once it ended: it is given ``wait`` seconds, then killed. Its
    pipes are closed."""
    try:
        code = proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    return code


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
    links the metrics to the logged model and tags the run with its URI (see
    :func:`autoreg.mlflow_model.log_new_model`). Returns the model's URI, or None without a
    model."""
    trial = int(row["trial"])
    child = client.create_run(exp_id, run_name=f"trial-{trial}-{row['recipe']}",
                              tags={"mlflow.parentRunId": parent_id, **tags}).info
    client.set_terminated(child.run_id)
    if model is None:
        client.log_batch(child.run_id, metrics=metrics, params=params)
        return None
    from .mlflow_model import log_new_model

    return log_new_model(client, child, model, metrics=metrics, params=params,
                         columns=columns, run_tags={})


def _log_model(client, child_run_id: str, model: bytes, schema) -> str | None:
    from .mlflow_model import URI_TAG, log_model

    uri = log_model(client, child_run_id, model, columns=schema)
    client.set_tag(child_run_id, URI_TAG, uri)
    return uri


def _penalty(result, trial: int) -> str:
    """The recipe's penalty (``none`` without one): the technique the UI groups runs by."""
    t = result.study_trial(trial)
    attrs = t.user_attrs.get("autoreg", {}) if t is not None else {}
    return str(attrs.get("penalty", "none"))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def run_location(run_id: str, tracking_uri=None) -> str:
    """A line telling the user where to look at the run (``tracking_uri``: where it was
    logged; None: MLflow's current tracking URI, which costs importing mlflow)."""
    uri = tracking_uri
    if not uri:
        import mlflow

        uri = mlflow.get_tracking_uri()
    if uri.startswith("http"):
        return f"MLflow run {run_id}: {redact(uri).rstrip('/')}/#/experiments/-/runs/{run_id}"
    return f"MLflow run {run_id} in {redact(uri)} (view: autoreg ui --tracking-uri {redact(uri)})"
