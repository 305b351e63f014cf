"""Security: plugins load only from installed entry points or modules a user names; model files
never unpickle; passwords in storage and tracking URLs never reach the console, logs, warnings,
MLflow or the study; ``autoreg ui`` listens on loopback unless told otherwise."""

from __future__ import annotations

import io
import json
import logging
import os
import pathlib
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.parse

import numpy as np
import pytest
from clirun import run
from hypothesis import given, settings
from hypothesis import strategies as st
from postgres import postgres_url  # noqa: F401 (a fixture)

import autoreg
from autoreg import export, model
from autoreg.errors import ExportFormatError
from autoreg.storage import redact

ROOT = pathlib.Path(__file__).resolve().parents[1]
AUTOREG_EXE = str(pathlib.Path(sys.executable).with_name("autoreg"))
SECRET = "s3cr3t-pw"
PG_DOWN = f"postgresql+psycopg://alice:{SECRET}@127.0.0.1:1/db"
HTTP_DOWN = f"http://alice:{SECRET}@127.0.0.1:9"


def cli(*argv, cwd, env=None, timeout=300):
    """Run the installed ``autoreg`` command, as a user types it, in ``cwd``."""
    return subprocess.run([AUTOREG_EXE, *argv], cwd=cwd, env=env or dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def tiny(tiny_regression):
    X, y = tiny_regression
    return X, y


# -- plugins load only from where the user says ---------------------------------------------------
BAIT = ("autoreg_evil", "autoreg_plugin_extra", "evil_plugin", "register_techniques")
BAIT_CODE = """import pathlib
pathlib.Path({marker!r}).write_text("imported")


def register_techniques(register):
    pathlib.Path({marker!r}).write_text("registered")
"""


def plant_bait(folder: pathlib.Path, dist_info: bool = False) -> None:
    """Modules (and a package) that look like autoreg plugins, each writing ``<name>.imported``
    into ``folder`` when imported; with ``dist_info``, also the metadata of a distribution
    declaring one of them in the ``autoreg`` entry-point group, as an installed plugin has."""
    for name in BAIT:
        marker = str(folder / f"{name}.imported")
        (folder / f"{name}.py").write_text(BAIT_CODE.format(marker=marker))
    pkg = folder / "autoreg_evilpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(BAIT_CODE.format(marker=str(folder / "pkg.imported")))
    if dist_info:
        meta = folder / "autoreg_evil-1.0.dist-info"
        meta.mkdir()
        (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: autoreg-evil\nVersion: 1.0\n")
        (meta / "entry_points.txt").write_text("[autoreg]\nevil = autoreg_evil\n"
                                               "evilpkg = autoreg_evilpkg\n")


def imported(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.imported"))


def autoreg_env_vars() -> list[str]:
    """Every ``AUTOREG_*`` variable the package and its built-in plugins read: the tests set
    each to a bait module's name, so one added later that imports a module is caught."""
    names = set()
    for path in [*(ROOT / "autoreg").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]:
        names |= set(re.findall(r"\bAUTOREG_[A-Z_]+\b", path.read_text()))
    return sorted(names)


def test_plugin_like_modules_on_sys_path_are_not_imported_by_the_api(tmp_path, tiny,
                                                                      monkeypatch):
    from autoreg.registry import load_techniques

    installed = set(load_techniques())
    plant_bait(tmp_path)  # tmp_path is the working directory (conftest)
    monkeypatch.syspath_prepend(str(tmp_path))
    for var in autoreg_env_vars():
        if var not in ("AUTOREG_HOME", "AUTOREG_HEARTBEAT", "AUTOREG_WORKER_START",
                       "AUTOREG_DISABLE_PLUGINS"):  # (which would hide what another did)
            monkeypatch.setenv(var, "autoreg_evil")
    assert set(load_techniques()) == installed
    result = autoreg.search(*tiny, n_trials=2, log_mlflow=False)
    assert len(result.trials) == 2
    assert imported(tmp_path) == []
    assert not set(BAIT) & set(sys.modules)
    # The explicit mechanism is the way in (and the bait is live).
    assert set(load_techniques(modules=["autoreg_evil"])) == installed
    assert imported(tmp_path) == ["autoreg_evil.imported"]
    sys.modules.pop("autoreg_evil", None)


def test_the_autoreg_command_imports_nothing_from_the_working_directory(tmp_path):
    plant_bait(tmp_path, dist_info=True)
    # The bait is live: a Python that puts this folder on its path finds the entry points.
    probe = subprocess.run([sys.executable, "-c", "import importlib.metadata as md; "
                            "print(sorted(e.name for e in md.entry_points(group='autoreg')))"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert "'evil'" in probe.stdout, probe.stderr
    env = {**os.environ, **{v: "autoreg_evil" for v in autoreg_env_vars()
                            if v != "AUTOREG_DISABLE_PLUGINS"},
           "AUTOREG_HOME": str(tmp_path / "home"), "AUTOREG_HEARTBEAT": "10",
           "AUTOREG_WORKER_START": "fork"}
    for argv in (["plugins"], ["plugins", "--json"],
                 ["search", "diabetes", "--trials", "2", "--no-mlflow", "--json"]):
        out = cli(*argv, cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        assert "evil" not in out.stdout
        assert imported(tmp_path) == [], argv
    rows = json.loads(cli("plugins", "--json", cwd=tmp_path, env=env).stdout)
    assert {"dropout", "elasticnet", "group_lasso", "l1", "l2", "pruning",
            "quantization"} <= {row["name"] for row in rows}
    assert not [row for row in rows if row["distribution"] == "autoreg-evil"
                or row["plugin"] in ("evil", "evilpkg")]
    # Named with --plugin (and importable), the module is loaded: the documented way. (The
    # distribution's metadata goes first: on PYTHONPATH it would be an installed plugin.)
    shutil.rmtree(tmp_path / "autoreg_evil-1.0.dist-info")
    out = cli("--plugin", "autoreg_evil", "plugins", cwd=tmp_path,
              env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert imported(tmp_path) == ["autoreg_evil.imported"]


SHADOW_CODE = """import pathlib
pathlib.Path({marker!r}).write_text("imported")
raise ImportError("a stand-in planted in the working directory")
"""


def test_helper_processes_import_nothing_from_the_working_directory(tmp_path):
    """A data folder holding ``mlflow.py`` or ``plotly.py`` must not run them: the search
    process does not, and neither may the processes it starts to write the MLflow record."""
    for name in ("mlflow", "plotly", "matplotlib", "autoreg"):
        (tmp_path / f"{name}.py").write_text(SHADOW_CODE.format(
            marker=str(tmp_path / f"{name}.imported")))
    out = cli("search", "diabetes", "--trials", "2", "--json", "--tracking-uri",
              f"sqlite:///{tmp_path}/helpers.db", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["mlflow_run_id"]
    assert imported(tmp_path) == []


# -- model files never unpickle -------------------------------------------------------------------
class Payload:
    """Unpickling this writes ``marker``: a stand-in for the code an attacker would run."""

    def __init__(self, marker):
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return (pathlib.Path.write_text, (self.marker, "unpickled"))


@pytest.fixture
def payload(tmp_path):
    """``(pickle bytes, marker)``; the payload is live: unpickling it writes the marker."""
    marker = tmp_path / "unpickled.marker"
    data = pickle.dumps(Payload(marker), protocol=4)
    pickle.loads(data)
    assert marker.read_text() == "unpickled"
    marker.unlink()
    return data, marker


@pytest.fixture
def pickle_calls(monkeypatch):
    """Names of the unpickling functions called while the test runs (each also raises)."""
    calls = []

    def spy(name):
        def refuse(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} called")
        return refuse

    class Unpickler(pickle.Unpickler):
        def load(self):
            calls.append("pickle.Unpickler.load")
            raise AssertionError("pickle.Unpickler.load called")

    monkeypatch.setattr(pickle, "load", spy("pickle.load"))
    monkeypatch.setattr(pickle, "loads", spy("pickle.loads"))
    monkeypatch.setattr(pickle, "Unpickler", Unpickler)
    monkeypatch.setattr(np, "load", spy("numpy.load"))
    for name in ("cloudpickle", "joblib"):
        mod = sys.modules.get(name)
        if mod is not None:
            for attr in ("load", "loads"):
                if hasattr(mod, attr):
                    monkeypatch.setattr(mod, attr, spy(f"{name}.{attr}"))
    return calls


def _raw_file(header: dict, tail: bytes) -> bytes:
    body = json.dumps(header).encode()
    return export.MAGIC + len(body).to_bytes(4, "little") + body + tail


def _npy_with_object(obj) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([obj], dtype=object), allow_pickle=True)
    return buf.getvalue()


LINEAR_META = {"format": 1, "kind": "linear", "task": "regression", "n_out": 1,
               "classes": None, "input": {"type": "array", "n_columns": 1}}

# Files a user might be handed as a model: each smuggles the payload in somewhere.
SMUGGLED = {
    "a pickle": lambda p, marker: p,
    "an .npy file of objects": lambda p, marker: _npy_with_object(Payload(marker)),
    "a pickle after the magic bytes": lambda p, marker: export.MAGIC + p,
    "a pickle as a header string and a tensor": lambda p, marker: export.dumps(
        {**LINEAR_META, "note": p.decode("latin-1")}, {"b": np.frombuffer(p, np.uint8)}),
    "a pickle as an object tensor": lambda p, marker: _raw_file(
        {**LINEAR_META, "tensors": {"b": ["d", "object", [len(p)]]}}, p),
    "a pickle as raw tensor bytes": lambda p, marker: _raw_file(
        {**LINEAR_META, "tensors": {"b": ["d", "uint8", [len(p)]]}}, p),
}


@pytest.mark.parametrize("kind", list(SMUGGLED))
def test_model_readers_refuse_a_smuggled_pickle(kind, payload, pickle_calls, tmp_path):
    data, marker = payload
    buf = SMUGGLED[kind](data, marker)
    path = tmp_path / "model.autoreg"
    path.write_bytes(buf)
    try:
        meta, tensors = export.loads(buf)
    except ExportFormatError:
        pass
    else:
        # The format read the pickle's bytes as what they claim to be: text and numbers.
        assert "note" not in meta or meta["note"].encode("latin-1") == data
        assert [t.tobytes() for t in tensors.values()] == [data]
        assert all(t.dtype == np.uint8 for t in tensors.values())
        with pytest.raises(ExportFormatError):
            model.from_export(meta, tensors)
    with pytest.raises(ExportFormatError):
        autoreg.load(path)
    assert not marker.exists()
    assert pickle_calls == []


@pytest.fixture
def victim(tiny):
    """A finished study of three trials (no MLflow) in the test's autoreg home."""
    result = autoreg.search(*tiny, n_trials=3, study_name="victim", log_mlflow=False)
    return result


def _replace_models(result, data: bytes) -> None:
    for t in result.trials["trial"]:
        attrs = result.study_trial(int(t)).user_attrs["autoreg"]
        (result.models.root / attrs["model"]).write_bytes(data)


def test_a_search_result_refuses_a_replaced_model_file(victim, payload, pickle_calls):
    data, marker = payload
    trial = int(victim.pick()["trial"])
    assert victim.model(trial).predict(np.zeros((1, 6))).shape == (1,)
    _replace_models(victim, data)
    with pytest.raises(ExportFormatError, match="not an autoreg model file"):
        victim.model(trial)
    assert not marker.exists()
    assert pickle_calls == []


def test_logging_a_study_with_a_replaced_model_file_fails_cleanly(victim, payload, capsys):
    data, marker = payload
    _replace_models(victim, data)
    code, out, err = run(capsys, "front", "victim", "--log")
    assert code != 0
    assert "not an autoreg model file" in err and "Traceback" not in err
    assert not marker.exists()


def test_export_refuses_a_replaced_model_file(victim, payload, capsys, tmp_path):
    data, marker = payload
    _replace_models(victim, data)
    code, out, err = run(capsys, "export", "victim", "-o", str(tmp_path / "out.autoreg"))
    assert not marker.exists()
    assert code != 0 and "not an autoreg model file" in err
    assert not (tmp_path / "out.autoreg").exists()


def test_the_mlflow_pyfunc_loader_refuses_a_replaced_model_file(payload, pickle_calls, tmp_path):
    import mlflow

    from autoreg import mlflow_model
    from autoreg.model import LinearPredictor
    from autoreg.prep import Prep

    data, marker = payload
    X = np.random.default_rng(0).standard_normal((20, 3))
    predictor = LinearPredictor.from_fit(Prep().fit(X), np.array([[1.0], [0.0], [-2.0]]),
                                         np.array([0.5]), "regression")
    good = predictor.to_bytes()
    (tmp_path / "model.autoreg").write_bytes(good)
    local = tmp_path / "model"
    mlflow_model._save(str(local), predictor, good, str(tmp_path / "model.autoreg"), None, None)
    loaded = mlflow.pyfunc.load_model(str(local))  # the directory loads as written
    np.testing.assert_array_equal(np.asarray(loaded.predict(X)), predictor.predict(X))
    (local / "artifacts" / mlflow_model.ARTIFACT).write_bytes(data)
    with pytest.raises(Exception) as info:
        mlflow.pyfunc.load_model(str(local))
    chain, exc = [], info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(e, ExportFormatError) for e in chain), chain
    assert "not an autoreg model file" in str(info.value)
    assert not marker.exists()
    assert pickle_calls == []


# -- passwords stay secret ------------------------------------------------------------------------
def test_redact_masks_the_password_of_plain_urls():
    assert redact(PG_DOWN) == "postgresql+psycopg://alice:***@127.0.0.1:1/db"
    assert redact(HTTP_DOWN) == "http://alice:***@127.0.0.1:9"
    assert redact("mysql://bob:p%40ss@db.example:3306/x") == "mysql://bob:***@db.example:3306/x"
    for url in ("postgresql://alice@127.0.0.1/db", "sqlite:///tmp/a.db", "studies.journal",
                "http://127.0.0.1:5000", "/data/me@work/studies.journal"):
        assert redact(url) == url
    assert redact(None) is None


users = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", max_size=8)
passwords = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs")),
                    min_size=1, max_size=16)
schemes = st.sampled_from(["postgresql+psycopg", "postgresql", "mysql", "http", "https",
                           "journal+postgresql"])


@settings(max_examples=150, deadline=None)
@given(scheme=schemes, user=users, password=passwords, encode=st.booleans(),
       in_query=st.booleans())
def test_redact_masks_any_password(scheme, user, password, encode, in_query):
    written = urllib.parse.quote(password, safe="") if encode or in_query else password
    if in_query:
        url = f"{scheme}://{user}@127.0.0.1:5432/db?sslmode=require&password={written}"
        want = f"{scheme}://{user}@127.0.0.1:5432/db?sslmode=require&password=***"
    else:
        url = f"{scheme}://{user}:{written}@127.0.0.1:5432/db"
        want = f"{scheme}://{user}:***@127.0.0.1:5432/db"
    assert redact(url) == want
    # Within a driver's error message too.
    assert redact(f"cannot connect to {url} (refused)") == f"cannot connect to {want} (refused)"


class Leaks:
    """Everything a user or an operator could read: console, warnings, log records."""

    def __init__(self, capsys, caplog, recwarn):
        self.capsys, self.caplog, self.recwarn = capsys, caplog, recwarn
        caplog.set_level(logging.DEBUG)  # on the root logger

    def logged(self) -> str:
        parts = []
        for r in self.caplog.records:
            parts += [r.getMessage(), str(r.args), r.exc_text or ""]
            if r.exc_info and r.exc_info[1] is not None:
                parts.append("".join(traceback.format_exception(r.exc_info[1])))
        parts += [str(w.message) for w in self.recwarn]
        return "\n".join(parts)

    def check(self, *texts: str) -> None:
        for text in [*texts, self.logged()]:
            assert SECRET not in text
            assert urllib.parse.quote(SECRET) not in text


@pytest.fixture
def leaks(capsys, caplog, recwarn):
    return Leaks(capsys, caplog, recwarn)


@pytest.mark.parametrize("argv", [
    ["search", "diabetes", "--trials", "2", "--storage", PG_DOWN],
    ["search", "diabetes", "--trials", "2", "--storage", PG_DOWN, "--json"],
    ["search", "diabetes", "--trials", "2", "--storage", PG_DOWN.replace("postgresql+psycopg",
                                                                         "journal+postgresql")],
    ["front", "s", "--storage", PG_DOWN],
    ["front", "s", "--storage", PG_DOWN, "--json"],
    ["export", "s", "-o", "m.autoreg", "--storage", PG_DOWN, "--json"],
    ["ui", "--study", "s", "--storage", PG_DOWN, "--dry-run"],
])
def test_an_unreachable_storage_never_shows_its_password(argv, leaks):
    code, out, err = run(leaks.capsys, *argv)
    assert code != 0
    assert "alice:***@127.0.0.1:1" in err  # the user is told which storage failed
    leaks.check(out, err)


def test_the_api_error_for_an_unreachable_storage_has_no_password(tiny, leaks):
    with pytest.raises(autoreg.errors.UsageError) as info:
        autoreg.search(*tiny, n_trials=2, storage=PG_DOWN)
    leaks.check(str(info.value), "".join(traceback.format_exception(info.value)))


@pytest.mark.parametrize("as_json", [False, True])
def test_an_unreachable_tracking_server_never_shows_its_password(as_json, leaks):
    argv = ["search", "diabetes", "--trials", "2", "--study", "t", "--tracking-uri", HTTP_DOWN]
    code, out, err = run(leaks.capsys, *argv, *(["--json"] if as_json else []))
    assert code == 0, err  # the trials are safe; the record can be written later
    if as_json:
        assert json.loads(out)["tracking_uri"] == "http://alice:***@127.0.0.1:9"
    else:
        assert "not logged to MLflow" in err and "alice:***@127.0.0.1:9" in err
    code, out2, err2 = run(leaks.capsys, "front", "t", "--log", "--tracking-uri", HTTP_DOWN)
    assert code != 0 and "alice:***@127.0.0.1:9" in err2
    leaks.check(out, err, out2, err2)


def test_the_api_keeps_the_tracking_password_out_of_warnings_and_the_study(tiny, leaks):
    with pytest.warns(RuntimeWarning, match="not logged to MLflow") as caught:
        result = autoreg.search(*tiny, n_trials=2, tracking_uri=HTTP_DOWN, progress=True)
    out, err = leaks.capsys.readouterr()
    assert "autoreg" in err  # the progress bar was shown
    leaks.check(out, err, result.tracking_error, study_record(result.study),
                *[str(w.message) for w in caught])


def test_the_tracking_password_is_not_on_a_command_line():
    """Any local user can read a process's command line (``ps``)."""
    from autoreg.tracking import Recorder

    recorder = Recorder(f"postgresql+psycopg://alice:{SECRET}@127.0.0.1:1/mlflow")
    try:
        args = [] if recorder._proc is None else recorder._proc.args
        assert not any(SECRET in str(a) for a in args)
    finally:
        recorder.close(wait=0)


def study_record(study) -> str:
    """The study's attributes and every trial's, as text."""
    storage, sid = study._storage, study._study_id
    return json.dumps([storage.get_study_user_attrs(sid), storage.get_study_system_attrs(sid),
                       *[(t.user_attrs, t.system_attrs, t.params) for t in study.trials]],
                      default=str)


def _with_password(url: str) -> str:
    # The test server trusts loopback connections, so any password gets in: a password-
    # protected server seen from autoreg's side.
    return url.replace("://postgres@", f"://postgres:{SECRET}@")


def _mlflow_database(url: str, name: str) -> str:
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}"


def test_a_search_on_password_protected_servers_records_no_password(  # noqa: F811
        postgres_url, leaks, tmp_path):  # noqa: F811
    import mlflow
    import optuna
    from mlflow import MlflowClient

    storage = _with_password(postgres_url)
    tracking = _with_password(_mlflow_database(postgres_url, "mlflow_secret"))
    code, out, err = run(leaks.capsys, "search", "diabetes", "--trials", "4", "--study", "sec",
                         "--storage", storage, "--tracking-uri", tracking, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["mlflow_run_id"] and doc["storage"] == redact(storage)
    outputs = [out, err]
    for argv in (["front", "sec", "--storage", storage],
                 ["export", "sec", "-o", str(tmp_path / "m.autoreg"), "--storage", storage]):
        code, out, err = run(leaks.capsys, *argv)
        assert code == 0, err
        outputs += [out, err]
    # The study keeps the store without its password: the UI asks for it, in one line.
    code, out, err = run(leaks.capsys, "ui", "--study", "sec", "--storage", storage,
                         "--dry-run")
    assert code == 2 and err.count("\n") == 1, err
    assert f"was logged to {redact(tracking)}, kept without its password: give the store " \
        "with --tracking-uri" in err
    outputs += [out, err]
    code, out, err = run(leaks.capsys, "ui", "--tracking-uri", tracking, "--dry-run")
    assert code == 0 and "MLFLOW_BACKEND_STORE_URI=" in out, err
    outputs += [out, err]
    # The study: its attributes and every trial's.
    outputs.append(study_record(optuna.load_study(study_name="sec", storage=storage)))
    # MLflow: every run's params and tags, every logged model's, and every artifact.
    client = MlflowClient(tracking_uri=tracking)
    exp = client.get_experiment_by_name("autoreg")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) >= 2  # the parent and the front's children
    for r in runs:
        outputs.append(json.dumps([r.data.params, r.data.tags]))
        folder = tmp_path / r.info.run_id
        client.download_artifacts(r.info.run_id, "", str(folder))
        files = [p for p in folder.rglob("*") if p.is_file()]
        outputs += [p.read_bytes().decode("latin-1") for p in files]
        if r.data.tags.get("autoreg.role") == "search":
            assert {"front.csv", "trials.csv"} <= {p.name for p in files}
    for m in client.search_logged_models([exp.experiment_id]):
        outputs.append(json.dumps([m.params, m.tags]))
        folder = mlflow.artifacts.download_artifacts(m.artifact_location,
                                                     dst_path=str(tmp_path / m.model_id))
        outputs += [p.read_bytes().decode("latin-1")
                    for p in pathlib.Path(folder).rglob("*") if p.is_file()]
    leaks.check(*outputs)


# -- autoreg ui listens on loopback ---------------------------------------------------------------
@pytest.fixture
def execs(monkeypatch):
    """The command lines ``autoreg ui`` would run in place of itself."""
    calls = []
    monkeypatch.setattr(os, "execv", lambda exe, argv: calls.append(list(argv)))
    monkeypatch.setattr(os, "execve", lambda exe, argv, env: calls.append(list(argv)))
    return calls


def _option(argv: list, name: str) -> str:
    return argv[argv.index(name) + 1]


def test_ui_binds_to_loopback_unless_told_otherwise(execs, capsys, tmp_path):
    store = f"sqlite:///{tmp_path}/ui.db"
    code, out, err = run(capsys, "ui", "--tracking-uri", store, "--port", "5123")
    assert code == 0, err
    assert _option(execs[-1], "--host") == "127.0.0.1"
    assert _option(execs[-1], "--port") == "5123"
    assert execs[-1][0] == sys.executable and "ui" in execs[-1]
    assert "warning" not in err
    code, out, err = run(capsys, "ui", "--tracking-uri", store, "--host", "0.0.0.0")
    assert code == 0 and _option(execs[-1], "--host") == "0.0.0.0"
    assert "reachable from the network" in err


@pytest.mark.parametrize("argv", [
    ["ui", "--tracking-uri", HTTP_DOWN],
    ["ui", "--tracking-uri", PG_DOWN],
    ["ui", "--tracking-uri", PG_DOWN, "--dry-run"],
])
def test_ui_never_prints_a_password(argv, execs, leaks):
    code, out, err = run(leaks.capsys, *argv)
    assert code == 0
    # Nor puts it on the UI's command line, which any local user can read (ps).
    leaks.check(out, err, *(execs[-1] if execs else []))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_ui_listens_on_127_0_0_1_only(tmp_path):
    import psutil

    port = _free_port()
    log = tmp_path / "ui.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([AUTOREG_EXE, "ui", "--tracking-uri",
                                 f"sqlite:///{tmp_path}/u.db", "--port", str(port)],
                                cwd=tmp_path, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        listening = []
        while time.monotonic() < deadline and proc.poll() is None:
            family = [psutil.Process(proc.pid)]
            family += family[0].children(recursive=True)
            listening = []
            for p in family:
                try:
                    listening += [c.laddr for c in p.net_connections(kind="inet")
                                  if c.status == psutil.CONN_LISTEN]
                except psutil.NoSuchProcess:
                    continue
            if any(a.port == port for a in listening):
                break
            time.sleep(0.3)
        assert any(a.port == port for a in listening), log.read_text()
        assert {a.ip for a in listening} == {"127.0.0.1"}, listening
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        # The UI and the workers it started share its process group.
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                pass
