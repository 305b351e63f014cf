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
        return client.create_experiment(name)
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


def log_search(result, settings: dict, *, tracking_uri=None, experiment=None,
               storage_url=None) -> str:
    """Log ``result`` and return the parent run id. A resumed study reuses its parent run."""
    from mlflow.entities import Metric, Param, RunTag

    client, uri, exp_id = _connect(tracking_uri, experiment)
    study = result.study_name
    parent = _find_parent(client, exp_id, study)
    if parent is None:
        run = client.create_run(exp_id, run_name=study, tags={
            STUDY_TAG: study, "autoreg.role": "search", "autoreg.version": __version__,
            "autoreg.storage": redact(storage_url) or "default"})
        run_id = run.info.run_id
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in settings.items()])
        children = {}
    else:
        run_id = parent.info.run_id
        client.update_run(run_id, status="RUNNING")
        children = {r.data.tags.get(TRIAL_TAG): r for r in client.search_runs(
            [exp_id], filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'", max_results=5000)}
    try:
        pick = result.pick() if len(result.front) else None
        pick_trial = None if pick is None else int(pick["trial"])
        with tempfile.TemporaryDirectory() as tmp:
            for name, frame in (("front.csv", result.front), ("trials.csv", result.trials)):
                path = Path(tmp) / name
                frame.to_csv(path, index=False)
                client.log_artifact(run_id, str(path))
        front_trials = set(int(t) for t in result.front["trial"])
        for _, row in result.front.iterrows():
            trial = int(row["trial"])
            tags = [RunTag("recipe", row["recipe"]), RunTag("technique", _penalty(result, trial)),
                    RunTag("family", str(row.get("family", "linear"))),
                    RunTag("pareto", "true"), RunTag("pick", str(trial == pick_trial).lower()),
                    RunTag(TRIAL_TAG, str(trial))]
            metrics = [Metric(k, float(row[k]), 0, 0) for k in CHILD_METRICS
                       if not (isinstance(row[k], float) and math.isnan(row[k]))]
            child = children.get(str(trial))
            if child is None:
                child_run = client.create_run(exp_id, run_name=f"trial-{trial}-{row['recipe']}",
                                              tags={"mlflow.parentRunId": run_id})
                params = [Param(k, str(row[k])) for k in result.front.columns
                          if "." in k and not _missing(row[k])]
                client.log_batch(child_run.info.run_id, metrics=metrics, params=params, tags=tags)
                client.set_terminated(child_run.info.run_id)
            else:
                client.log_batch(child.info.run_id, metrics=metrics, tags=tags)
        for trial, child in children.items():
            if trial is not None and int(trial) not in front_trials:
                client.set_tag(child.info.run_id, "pareto", "false")
                client.set_tag(child.info.run_id, "pick", "false")
        summary = [Metric("front_size", float(len(result.front)), 0, 0),
                   Metric("n_trials", float(len(result.trials)), 0, 0),
                   Metric("n_failed", float(len(result.failed)), 0, 0)]
        if pick is not None:
            summary += [Metric(f"pick_{k}", float(pick[k]), 0, 0)
                        for k in ("error", "sparsity", "size_bytes", "test_error")
                        if not _missing(pick[k])]
            client.set_tag(run_id, "pick_trial", str(pick_trial))
        client.log_batch(run_id, metrics=summary)
        client.set_terminated(run_id, status="KILLED" if result.interrupted else "FINISHED")
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    result.study.set_user_attr("autoreg.mlflow_run_id", run_id)
    result.study.set_user_attr("autoreg.tracking_uri", redact(uri))
    return run_id


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
