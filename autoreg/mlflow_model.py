"""autoreg models as MLflow models: a pyfunc flavor over the compact export.

A logged model is an MLflow 3 *logged model* (``models:/<model_id>``) linked to the run it was
logged from, so ``mlflow.pyfunc.load_model(uri).predict(df)`` works, and so does
``runs:/<run_id>/model``. Inside it is the compact export (``artifacts/model.autoreg``), read by
:func:`autoreg.load` (numpy only, no pickle) and a three-line entry point stored as code (MLflow's
"models from code"): nothing is pickled, so the model loads even where MLflow's pickle loading is
turned off (``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``). The same file is also logged as a
plain run artifact, ``model.autoreg``.

``predict`` returns what the autoreg predictor's ``predict`` returns. The ``output`` param picks
another method: ``predict(df, params={"output": "proba"})`` gives ``predict_proba`` (classes in
``metadata["autoreg"]["classes"]`` order), ``"decision"`` gives ``decision_function``.

Logging uses only an :class:`mlflow.MlflowClient` and a run id: no active run, no global tracking
URI, no requirement inference. mlflow is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from ._version import __version__
from .errors import AutoRegError, first_line

ARTIFACT = "model.autoreg"  # the compact export: a plain run artifact and the model's artifact
OUTPUTS = {"predict": "predict", "proba": "predict_proba", "decision": "decision_function"}
ENTRY_POINT = "autoreg_pyfunc.py"
_ENTRY_CODE = '''"""MLflow entry point of an autoreg model (code: autoreg.mlflow_model)."""
from mlflow.models import set_model

from autoreg.mlflow_model import AutoRegModel

set_model(AutoRegModel())
'''


class MlflowModelError(AutoRegError):
    """An autoreg model could not be logged, registered or served through MLflow."""


# -- the pyfunc model ---------------------------------------------------------------------------
def _model_class():
    import pandas as pd
    from mlflow.pyfunc import PythonModel

    class AutoRegModel(PythonModel):
        """An autoreg compact export as an MLflow pyfunc model.

        ``params={"output": ...}``: ``"predict"`` (default; labels or values), ``"proba"``
        (class probabilities, classification only) or ``"decision"`` (raw scores).
        """

        predictor = None

        def load_context(self, context):
            from . import load

            self.predictor = load(context.artifacts["model"])

        def predict(self, context, model_input, params=None):
            return predict(self.predictor, model_input, params)

        # A DataFrame hint is one MLflow neither validates against nor asks to be improved
        # (it warns about a missing hint); the signature does the checking. Arrays and sparse
        # matrices are accepted as well. Set here: MLflow reads it when the class is created.
        predict.__annotations__ = {"model_input": pd.DataFrame}

    AutoRegModel.__qualname__ = "AutoRegModel"
    return AutoRegModel


def __getattr__(name):
    # The class needs mlflow to exist; build it when first asked for, once.
    if name == "AutoRegModel":
        cls = globals()["AutoRegModel"] = _model_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def predict(predictor, model_input, params=None):
    """What the pyfunc model returns for ``model_input`` (after MLflow's schema checks)."""
    output = (params or {}).get("output") or "predict"
    method = OUTPUTS.get(output, output if output in OUTPUTS.values() else None)
    if method is None:
        raise MlflowModelError(f"unknown output {output!r}; use one of {', '.join(OUTPUTS)}")
    if method == "predict_proba" and predictor.task == "regression":
        raise MlflowModelError("output 'proba' is for classification models; this one is a "
                               "regression model")
    if predictor.n_features_used == 0:
        # A constant model reads no column; MLflow may have handed it none.
        import numpy as np

        model_input = np.zeros((_n_rows(model_input), predictor.n_columns))
    return getattr(predictor, method)(model_input)


def _n_rows(X) -> int:
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None else len(X)


# -- signature ----------------------------------------------------------------------------------
def model_signature(predictor, columns=None):
    """The MLflow signature of ``predictor``.

    Inputs: a model trained on a DataFrame takes named columns. Each column the model uses is
    required; with ``columns`` (the data's ``[{"name", "type"}, ...]``, MLflow type names) a
    numeric column keeps its type from the data, and the columns it does not use are listed as
    optional, so the full table passes without MLflow warning about extra inputs. Categorical
    columns, and numeric ones of unknown type, are ``Any``: the model reads them as strings and
    numbers itself. A model trained on an array or a sparse matrix takes a float64 tensor of shape
    ``(-1, n_columns)`` (a DataFrame's columns are then taken by position). Outputs describe
    ``predict``; the ``output`` param selects ``proba`` or ``decision`` instead.
    """
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    meta = predictor.meta
    if meta["input"]["type"] == "frame":
        types = {str(c["name"]): c.get("type") for c in columns or ()}
        used = {}
        for name, pos in zip(meta.get("num") or [], predictor._num_pos.tolist(), strict=True):
            kind = types.get(str(name))
            used[str(name)] = (pos, kind if kind in ("double", "float", "long", "integer",
                                                      "boolean") else AnyType())
        for spec in meta.get("cat") or []:
            used[str(spec["col"])] = (spec["pos"], AnyType())
        specs = [(pos, ColSpec(kind, name)) for name, (pos, kind) in used.items()]
        names = [str(c["name"]) for c in columns or ()]
        if len(names) == predictor.n_columns:
            specs += [(pos, ColSpec(AnyType(), name, required=False))
                      for pos, name in enumerate(names) if name not in used]
        inputs = Schema([s for _, s in sorted(specs, key=lambda p: p[0])]) if specs else None
    else:
        inputs = Schema([TensorSpec(np.dtype("float64"), (-1, predictor.n_columns))])
    if predictor.task == "regression":
        out = "double"
    else:
        kind = np.asarray(predictor.classes_).dtype.kind
        out = {"b": "boolean", "i": "long", "u": "long", "f": "double"}.get(kind, "string")
    params = ParamSchema([ParamSpec("output", "string", "predict")])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(out)]), params=params)


def pip_requirements() -> list[str]:
    """What loading the model needs, pinned to this environment (no requirement inference)."""
    import numpy as np

    return [f"autoreg=={__version__}", f"numpy=={np.__version__}"]


# -- logging ------------------------------------------------------------------------------------
def log_model(client, run_id: str, model_bytes: bytes, *, name: str = "model", columns=None,
              tags: dict | None = None, link_metrics: bool = True,
              input_example=None) -> str:
    """Log an autoreg model (compact export bytes) under run ``run_id``; return its model URI.

    ``client`` is an :class:`mlflow.MlflowClient` (``None``: one for the current tracking URI).
    The run may be finished; it is not started, ended or made active. The model becomes an
    MLflow 3 logged model named ``name``, linked to the run as an output, carrying the run's
    params (and, with ``link_metrics``, its metrics) so the MLflow UI's model views can compare
    models; the compact export is also logged as the run artifact ``model.autoreg``.
    ``columns`` describes the training data (see :func:`model_signature`). ``input_example``
    (a few raw rows) is stored with the model when given; autoreg itself never logs raw data.

    Returns ``models:/<model_id>``, the URI MLflow 3 gives a logged model: it needs no lookup
    to load and is what the Model Registry links a version to. ``runs:/<run_id>/<name>`` also
    loads it while ``name`` is unique within the run.
    """
    import mlflow

    predictor = _predictor(model_bytes)  # refuse a bad file before logging
    client = client if client is not None else mlflow.MlflowClient()
    run = client.get_run(run_id)
    return _log(client, run.info, predictor, model_bytes, name=name,
                columns=columns, tags=tags, model_params=dict(run.data.params),
                metrics=_latest_points(client, run) if link_metrics else [],
                input_example=input_example)


def log_new_model(client, run_info, model_bytes: bytes, *, metrics: list, params: list,
                  columns=None, run_tags: dict | None = None) -> str:
    """:func:`log_model` for a run just created (``run_info``, its ``RunInfo``) that has no
    metrics or params yet: they are logged here (``mlflow.entities.Metric`` and ``Param``
    lists), in the one batch that also links the metrics to the model, with the run tag
    ``autoreg.model_uri`` and ``run_tags``. This saves reading the run back and writing each
    metric twice, for every front trial of a search (:mod:`autoreg.tracking`)."""
    return _log(client, run_info, _predictor(model_bytes), model_bytes,
                name="model", columns=columns, tags=None,
                model_params={p.key: p.value for p in params}, metrics=metrics,
                run_params=params, run_tags=run_tags or {})


def _predictor(model_bytes: bytes):
    from . import export
    from .model import from_export

    return from_export(*export.loads(model_bytes, quantized=True))


def _log(client, run_info, predictor, model_bytes, *, name, columns, tags,
         model_params, metrics, run_params=(), input_example=None, run_tags=None) -> str:
    """``run_tags``: None, or tags for the run, logged with ``autoreg.model_uri``."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric, RunTag

    run_id, experiment_id = run_info.run_id, run_info.experiment_id
    model_tags = {"autoreg.version": __version__, "autoreg.task": predictor.task,
                  "autoreg.kind": predictor.kind, **{k: str(v) for k, v in (tags or {}).items()}}
    logged = client.create_logged_model(experiment_id, name=name, source_run_id=run_id,
                                        tags=model_tags, params=model_params,
                                        model_type="autoreg")
    model_id = logged.model_id
    try:
        with tempfile.TemporaryDirectory(prefix="autoreg-mlflow-") as tmp:
            file = os.path.join(tmp, ARTIFACT)
            with open(file, "wb") as fh:
                fh.write(model_bytes)
            log_artifact(client, run_info, file)
            local = os.path.join(tmp, "model")
            _save(local, predictor, model_bytes, file, columns, input_example,
                  artifact_path=logged.artifact_location, run_id=run_id, model_uuid=model_id,
                  model_id=model_id)
            store = artifact_store(client, logged.artifact_location)
            if store is None:
                client.log_model_artifacts(model_id, local)
            else:
                store.log_artifacts(local)
        client.log_outputs(run_id, [LoggedModelOutput(model_id, step=0)])
        # The run's metrics recorded as the model's too (MLflow does both for a metric that
        # names a model); points the run has already are not added again.
        points = [Metric(m.key, m.value, m.timestamp, m.step, model_id=model_id)
                  for m in metrics]
        run_tags = None if run_tags is None else \
            [RunTag(k, v) for k, v in {**run_tags, URI_TAG: f"models:/{model_id}"}.items()]
        if points or run_params or run_tags:
            client.log_batch(run_id, metrics=points, params=list(run_params),
                             tags=run_tags or [])
    except BaseException:
        with contextlib.suppress(Exception):  # keep the original error
            client.finalize_logged_model(model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(model_id, LoggedModelStatus.READY)
    return f"models:/{model_id}"


#: The run tag holding the URI of the run's model (set by :func:`log_new_model`).
URI_TAG = "autoreg.model_uri"


def artifact_store(client, location: str):
    """The artifact repository at ``location`` (a run's ``artifact_uri`` or a logged model's
    ``artifact_location``), opened directly: ``MlflowClient.log_artifact`` reads the run (or
    model) back from the store for every file it logs. None where MLflow adds more than the
    location to open it (Databricks): then the client's own methods are the way."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    if str(client.tracking_uri).startswith("databricks"):
        return None
    return get_artifact_repository(location, tracking_uri=client.tracking_uri)


def log_artifact(client, run_info, path: str) -> None:
    """Log the file ``path`` to the run of ``run_info`` (its ``RunInfo``)."""
    store = artifact_store(client, run_info.artifact_uri)
    if store is None:
        client.log_artifact(run_info.run_id, path)
    else:
        store.log_artifact(path)


def warm_up() -> None:
    """Pay ahead what the first model save of a process costs beyond every later one: the
    pyfunc module, and MLflow's check of the pinned requirements against every installed
    package (about 1.5 s with a large environment; its answer is kept for the process). The
    :class:`autoreg.tracking.Recorder` calls this while the trials run."""
    import mlflow.pyfunc  # noqa: F401
    from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

    with _quiet():
        warn_dependency_requirement_mismatches(pip_requirements())


def _save(local, predictor, model_bytes, file, columns, input_example, **info) -> None:
    """Write the pyfunc model directory ``local``: MLflow's own ``save_model`` for the first
    model of a process (or one with an input example), a copy of that model with this one's
    export, signature and metadata for every later one (see :class:`_Template`)."""
    import mlflow
    from mlflow.models import Model

    signature = model_signature(predictor, columns)
    metadata = {"autoreg": _metadata(predictor, len(model_bytes))}
    if input_example is None and _Template.made is not None:
        _Template.made.write(local, model_bytes, signature=signature, metadata=metadata, **info)
        return
    entry = os.path.join(os.path.dirname(file), ENTRY_POINT)
    with open(entry, "w", encoding="utf-8") as fh:
        fh.write(_ENTRY_CODE)
    with _quiet():
        mlflow.pyfunc.save_model(
            local, python_model=entry, artifacts={"model": file}, signature=signature,
            input_example=input_example, pip_requirements=pip_requirements(),
            mlflow_model=Model(**info), metadata=metadata)
    if input_example is None:
        _Template.made = _Template(local, len(model_bytes))


class _Template:
    """The files every autoreg pyfunc model shares, taken from the first one MLflow saved in
    this process: requirements, conda and virtualenv files, the entry point, and MLmodel's
    pyfunc flavor. Every later model is these plus its own export and an MLmodel with its own
    ids, signature and metadata: MLflow's ``save_model`` costs ~20 ms a model (its first call
    ~0.5 s more, checking the pinned requirements against every installed package), a copy
    ~3 ms. ``test_mlflow_model`` checks that a copy holds what ``save_model`` writes."""

    made = None  # the process's template, once a model was saved
    OWN = ("artifact_path", "run_id", "model_uuid", "model_id", "utc_time_created",
           "signature", "is_signature_from_type_hint", "type_hint_from_example", "metadata",
           "model_size_bytes")  # the MLmodel fields of one model alone

    def __init__(self, local: str, export_size: int):
        from mlflow.models import Model

        model = Model.load(local)
        self.mlmodel = {k: v for k, v in model.to_dict().items() if k not in self.OWN}
        # What MLflow counts as the model's size: the export and the entry point.
        self.base_size = (model.model_size_bytes or 0) - export_size
        self.files = {}
        for root, _, names in os.walk(local):
            for n in names:
                path = os.path.join(root, n)
                rel = os.path.relpath(path, local)
                if rel not in ("MLmodel", os.path.join("artifacts", ARTIFACT)):
                    with open(path, "rb") as fh:
                        self.files[rel] = fh.read()

    def write(self, local: str, model_bytes: bytes, *, signature, metadata, **info) -> None:
        from mlflow.models import Model

        for rel, data in [*self.files.items(), (os.path.join("artifacts", ARTIFACT), model_bytes)]:
            path = os.path.join(local, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
        model = Model.from_dict({**self.mlmodel, **info, "metadata": metadata,
                                 "model_size_bytes": self.base_size + len(model_bytes)})
        model.signature = signature
        model.save(os.path.join(local, "MLmodel"))


@contextlib.contextmanager
def _quiet():
    """No progress bar for copying one small local file, no advice to add an input example
    (autoreg logs no raw rows) for each of the 10-30 models of a search."""
    import warnings

    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*input example was not provided")
            yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _metadata(predictor, size_bytes: int) -> dict:
    meta = predictor.meta
    return {"version": __version__, "kind": predictor.kind, "task": predictor.task,
            "classes": meta.get("classes"), "input_type": meta["input"]["type"],
            "n_columns": predictor.n_columns, "n_features_used": predictor.n_features_used,
            "size_bytes": size_bytes, "outputs": list(OUTPUTS)}


def _latest_points(client, run) -> list:
    """The run's latest metric points (key, value, timestamp, step), to be recorded as the
    model's too. Logged back to the run, MLflow finds them already present: its history does
    not change."""
    # get_run returns the latest points with their timestamps (the private list MLflow's
    # RunData keeps them in); reading each metric's history instead costs a request per key.
    latest = getattr(run.data, "_metric_objs", None)
    if latest is None:
        latest = [client.get_metric_history(run.info.run_id, key)[-1] for key in run.data.metrics]
    return list(latest)


# -- registry -----------------------------------------------------------------------------------
def register(model_uri: str, name: str, *, client=None, tags: dict | None = None) -> int:
    """Add ``model_uri`` (from :func:`log_model`) to the Model Registry as the next version of
    ``name`` (created if new); return the version number.

    Works as ``mlflow.register_model`` does, but through ``client`` (default: the current
    tracking URI), so a search logged to an explicit ``tracking_uri`` registers there too.
    """
    import json

    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    if not isinstance(name, str) or not name.strip():
        raise MlflowModelError(f"a registered model needs a name, got {name!r}")
    client = client if client is not None else mlflow.MlflowClient()
    try:
        model_id, run_id = _resolve(client, model_uri)
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        source = model_uri if model_id is None else _source(client, model_id)
        version = client.create_model_version(name, source, run_id=run_id, model_id=model_id,
                                              tags=tags)
        if model_id is not None:
            # What mlflow.register_model records: the model's page lists its versions.
            model = client.get_logged_model(model_id)
            links = json.loads(model.tags.get(MLFLOW_MODEL_VERSIONS, "[]"))
            links.append({"name": version.name, "version": version.version})
            client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(links)})
    except MlflowModelError:
        raise
    except Exception as exc:
        raise MlflowModelError(f"cannot register {model_uri} as {name!r}: "
                               f"{first_line(exc)}") from None
    return int(version.version)


def _source(client, model_id: str) -> str:
    """The source to register a logged model from. Like mlflow.register_model: a runs:/ URI
    becomes the logged model it names (its files do not live under the run). A local store
    (SQLite) looks a ``models:/`` source up through the *global* tracking URI, so for a client
    pointed elsewhere the model's artifact location is given instead."""
    import mlflow

    uri = getattr(client, "tracking_uri", None)
    if uri is None or uri.startswith(("http://", "https://")) or uri == mlflow.get_tracking_uri():
        return f"models:/{model_id}"
    return client.get_logged_model(model_id).artifact_location


def _resolve(client, model_uri: str) -> tuple[str | None, str | None]:
    """The logged model id and source run id behind ``models:/<id>`` or ``runs:/<run>/<name>``."""
    if model_uri.startswith("models:/"):
        ref = model_uri[len("models:/"):].strip("/")
        if "/" in ref:  # models:/<name>/<version>: already a registered version
            return None, None
        model = client.get_logged_model(ref)
        return model.model_id, model.source_run_id
    if model_uri.startswith("runs:/"):
        run_id, _, path = model_uri[len("runs:/"):].partition("/")
        run = client.get_run(run_id)
        found = client.search_logged_models(
            [run.info.experiment_id],
            filter_string=f"source_run_id = '{run_id}' AND name = '{path.strip('/')}'")
        if len(found) != 1:
            raise MlflowModelError(f"{model_uri}: expected one logged model named "
                                   f"{path!r} in run {run_id}, found {len(found)}")
        return found[0].model_id, run_id
    return None, None
