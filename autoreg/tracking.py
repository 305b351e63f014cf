"""MLflow record of a search: one parent run per study, one child run per front trial.

All MLflow work happens here, once per search, after the trials: none of it is on the
per-trial path. mlflow is imported only when this module runs.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

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


def _client(tracking_uri):
    import mlflow
    from mlflow import MlflowClient

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


def _connect(tracking_uri, experiment):
    try:
        client, uri = _client(tracking_uri)
        return client, uri, _experiment_id(client, experiment or DEFAULT_EXPERIMENT)
    except TrackingError:
        raise
    except Exception as exc:
        where = redact(tracking_uri) or "the default store"
        raise TrackingError(f"cannot reach MLflow at {where}: {first_line(exc)}") from None


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
               schema: list | None = None, log_models: bool = True, once: bool = False) -> str:
    """Log ``result`` and return the parent run id. A resumed study reuses its parent run.

    The parent run holds the settings, ``front.csv``, ``trials.csv``, ``pareto.html``,
    ``pareto.png``, summary metrics (front size, hypervolume, the pick's numbers) and the
    dataset as an input (schema and digest only). Every front trial gets a child run with the
    same metric names, its parameters, tags and its model (an MLflow pyfunc model plus the
    compact export); with ``log_trials="all"`` every other completed trial gets a child run
    without a model. ``register`` names a registered model to add the pick to.

    ``once``: skip the writing when this very front (same trials, same MLflow store) was
    logged already, as it is when several workers of one study finish together.
    """
    if log_trials not in LOG_TRIALS:
        raise AutoRegError(f"log_trials must be one of {', '.join(LOG_TRIALS)}, got "
                           f"{log_trials!r}")
    with _log_lock(result, storage_url)():
        # One process at a time writes a study's record, so that workers finishing together
        # make one parent run and one child run per trial between them (and do not race to
        # create the tables of a new local MLflow store).
        client, uri, exp_id = _connect(tracking_uri, experiment)
        signature = _signature(result, uri, exp_id)
        study_attrs = result.study.user_attrs
        if once and study_attrs.get(LOGGED_ATTR) == signature \
                and study_attrs.get("autoreg.mlflow_run_id"):
            return study_attrs["autoreg.mlflow_run_id"]  # another worker logged this front
        try:
            run_id = _log(client, uri, exp_id, result, settings, storage_url, log_trials,
                          register, schema, log_models)
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
         log_models) -> str:
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
    # Also the tag of the version that logged last, when a study is resumed by a newer one.
    client.set_tag(run_id, "autoreg.version", __version__)
    status = "FINISHED"
    try:
        pick = result.pick() if len(result.front) else None
        pick_trial = None if pick is None else int(pick["trial"])
        _log_tables_and_plots(client, run_id, result, pick_trial)
        front_trials = set(int(t) for t in result.front["trial"])
        rows = result.trials if log_trials == "all" else result.front
        pick_uri = None
        for _, row in rows.iterrows():
            trial = int(row["trial"])
            on_front = trial in front_trials
            tags = [RunTag("recipe", row["recipe"]), RunTag("technique", _penalty(result, trial)),
                    RunTag("family", str(row.get("family", "linear"))),
                    RunTag("pareto", str(on_front).lower()),
                    RunTag("pick", str(trial == pick_trial).lower()),
                    RunTag(TRIAL_TAG, str(trial))]
            metrics = [Metric(k, float(row[k]), 0, 0) for k in CHILD_METRICS
                       if not _missing(row[k])]
            child = children.get(str(trial))
            if child is None:
                child = client.create_run(exp_id, run_name=f"trial-{trial}-{row['recipe']}",
                                          tags={"mlflow.parentRunId": run_id})
                params = [Param(k, str(row[k])) for k in rows.columns
                          if "." in k and not _missing(row[k])]
                client.log_batch(child.info.run_id, metrics=metrics, params=params, tags=tags)
                client.set_terminated(child.info.run_id)
                children[str(trial)] = child
                model_uri = None
            else:
                client.log_batch(child.info.run_id, metrics=metrics, tags=tags)
                model_uri = child.data.tags.get("autoreg.model_uri")
            if on_front and log_models and model_uri is None:
                model_uri = _log_model(client, child.info.run_id, result, trial, schema)
            if trial == pick_trial:
                pick_uri = model_uri
        for trial, child in children.items():
            if trial is not None and int(trial) not in front_trials:
                client.set_tag(child.info.run_id, "pareto", "false")
                client.set_tag(child.info.run_id, "pick", "false")
        summary = [Metric("front_size", float(len(result.front)), 0, 0),
                   Metric("n_trials", float(len(result.trials)), 0, 0),
                   Metric("n_failed", float(len(result.failed)), 0, 0)]
        hv = _hypervolume(result)
        if hv is not None:
            value, reference = hv
            summary.append(Metric("hypervolume", float(value), 0, 0))
            client.set_tag(run_id, "hypervolume.reference", _reference_text(reference))
        if pick is not None:
            summary += [Metric(f"pick_{k}", float(pick[k]), 0, 0)
                        for k in ("error", "sparsity", "size_bytes", "test_error")
                        if not _missing(pick[k])]
            client.set_tag(run_id, "pick_trial", str(pick_trial))
        client.log_batch(run_id, metrics=summary)
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


def _log_tables_and_plots(client, run_id, result, pick_trial) -> None:
    from . import plots

    with tempfile.TemporaryDirectory() as tmp:
        for name, frame in (("front.csv", result.front), ("trials.csv", result.trials)):
            path = Path(tmp) / name
            frame.to_csv(path, index=False)
            client.log_artifact(run_id, str(path))
        html = Path(tmp) / "pareto.html"
        html.write_text(plots.pareto_html(result, pick_trial=pick_trial), encoding="utf-8")
        client.log_artifact(run_id, str(html))
        png = Path(tmp) / "pareto.png"
        plots.pareto_png(result, png, pick_trial=pick_trial)
        client.log_artifact(run_id, str(png))


def _hypervolume(result):
    from . import plots

    if result.front.empty:
        return None
    return plots.hypervolume(result.front, result.trials, result.objectives)


def _reference_text(reference: dict) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in reference.items())


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
