"""Bad input, case by case, through the command line and the Python API alike.

Every case must end the same way on both paths: one message that says what is wrong and what to
do (the CLI prints it as one ``autoreg: error:`` line, the API raises it as an AutoRegError), exit
code 2 for usage and data errors, and nothing left behind: no study in the storage, no MLflow
store or run, no model files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import autoreg
from autoreg.cli import main
from autoreg.errors import AutoRegError

STUDY = "bad"


# -- files the cases read -----------------------------------------------------------------------
def good_frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    return pd.DataFrame({"a": a, "b": b, "c": rng.integers(0, 3, n).astype(float),
                         "y": 2 * a - b + 0.1 * rng.standard_normal(n)})


def good_csv(t: Path) -> Path:
    path = t / "data.csv"
    good_frame().to_csv(path, index=False)
    return path


def file_with(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def make(t: Path) -> Path:
        path = t / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return make


def rows(header: str, line: Callable[[int], str], n: int = 30) -> str:
    return header + "\n" + "".join(line(i) + "\n" for i in range(n))


def a_file(t: Path) -> Path:
    """A plain file, where a folder is expected: nothing can be created under it, even by root."""
    path = t / "a_file"
    path.write_text("not a folder")
    return path


def groups_file(t: Path) -> Path:
    path = t / "groups.json"
    path.write_text(json.dumps([["a", "zz"]]))
    return path


def existing_study(t: Path, monkeypatch) -> None:
    """A study named like the cases' one, made with seed 1 (the cases run with seed 0)."""
    autoreg.search(good_csv(t), target="y", n_trials=1, seed=1, storage=str(t / "studies.journal"),
                   study_name=STUDY, artifacts=str(t / "setup-models"), log_mlflow=False)


# -- the table ----------------------------------------------------------------------------------
@dataclass
class Case:
    """One bad input. ``data``/``target`` go to both paths; ``cli`` is the rest of the command
    line, ``api`` the rest of the keyword arguments; ``needles`` must all be in the message."""

    id: str
    code: int
    needles: tuple[str, ...]
    data: Callable[[Path], object] = good_csv
    target: str | None = "y"
    cli: list[str] | Callable[[Path], list[str]] = field(default_factory=list)
    api: dict | Callable[[Path], dict] = field(default_factory=dict)
    setup: Callable | None = None
    xfail: str | None = None


def case(id, code, needles, **kw) -> Case:
    return Case(id, code, (needles,) if isinstance(needles, str) else tuple(needles), **kw)


def tiny_csv(n: int) -> Callable[[Path], Path]:
    return file_with(f"rows{n}.csv", rows("a,b,y", lambda i: f"{i},{i % 3},{i * 1.5}", n))


CASES = [
    # files that cannot be read
    case("missing_file", 2, ("file not found: ", "missing.csv", "check the path"),
         data=lambda t: t / "missing.csv"),
    case("unknown_dataset_name", 2, ("no built-in dataset named 'nosuchset'", "built-ins are"),
         data=lambda t: "nosuchset", target=None),
    case("directory", 2, "is a directory, not a CSV or Parquet file", data=lambda t: t),
    case("empty_file", 2, ("empty.csv is empty", "needs a header row"),
         data=file_with("empty.csv", "")),
    case("blank_lines_only", 2, "is empty", data=file_with("blank.csv", "\n\n\n")),
    case("binary_garbage_named_csv", 2, ("binary data", "give a CSV or Parquet file"),
         data=file_with("garbage.csv", bytes(range(256)) * 8)),
    case("not_utf8", 2, ("not UTF-8 text", "save it as UTF-8"),
         data=file_with("latin1.csv", rows("a,b,y", lambda i: f"{i},caf\xe9,{i}")
                        .encode("latin-1"))),
    case("unknown_extension", 2, ("cannot read", "data.xlsx", "reads .csv, .tsv, .txt and "
                                  ".parquet"), data=file_with("data.xlsx", "a,y\n1,2\n")),
    case("parquet_garbage", 2, ("cannot read", "bad.parquet", "is it a Parquet file"),
         data=file_with("bad.parquet", "this is not parquet")),
    case("parquet_named_csv", 2, "it is a Parquet file; name it .parquet",
         data=lambda t: _parquet_as_csv(t)),
    case("ragged_rows", 2, ("Expected 3 fields in line 4, saw 5", "every row needs the "
                            "header's number of fields"),
         data=file_with("ragged.csv", "a,b,y\n1,2,3\n4,5,6\n7,8,9,10,11\n")),
    case("unclosed_quote", 2, ("cannot read", "quotes must be closed"),
         data=file_with("quote.csv", 'a,b,y\n1,"2,3\n4,5,6\n')),
    # the target
    case("no_target_named", 2, ("name the target column of data.csv with --target",
                                "columns: a, b, c, y"), target=None),
    case("unknown_target", 2, ("target column 'price' not found; columns are: a, b, c, y",
                               "(use --target NAME)"), target="price"),
    case("target_in_other_case", 2, "did you mean 'y'?", target="Y"),
    case("builtin_with_target", 2, "brings its own target; drop --target",
         data=lambda t: "diabetes"),
    case("target_nan", 2, ("the target has 3 missing value(s)", "drop those rows"),
         data=file_with("nan.csv", rows("a,b,y", lambda i: f"{i},{i % 4},"
                                        + ("" if i % 10 == 0 else str(i * 0.5))))),
    case("target_inf", 2, ("the target holds 1 infinite value(s)", "drop those rows"),
         data=file_with("inf.csv", rows("a,b,y", lambda i: f"{i},{i % 4},"
                                        + ("inf" if i == 7 else str(i * 0.5))))),
    case("single_class", 2, ("single class ('yes')", "check that --target names the right "
                             "column"),
         data=file_with("one.csv", rows("a,b,y", lambda i: f"{i},{i % 4},yes"))),
    case("string_target_as_regression", 2, ("task is regression but the target is not "
                                            "numeric", "use --task classification"),
         data=file_with("str.csv", rows("a,b,y", lambda i: f"{i},{i % 4},{'abc'[i % 3]}")),
         cli=["--task", "regression"], api=dict(task="regression")),
    case("binary_task_three_classes", 2, ("task 'binary' asked for, but the target has 3 "
                                          "classes", "use --task multiclass"),
         data=file_with("three.csv", rows("a,b,y", lambda i: f"{i},{i % 4},{'abc'[i % 3]}")),
         cli=["--task", "binary"], api=dict(task="binary")),
    # the features and the rows
    case("only_the_target", 2, ("no feature columns", "add columns"),
         data=file_with("y.csv", rows("y", lambda i: str(i * 0.5)))),
    case("all_missing_columns", 2, ("no feature column varies", "nothing to learn from"),
         data=file_with("empty_cols.csv", rows("a,b,y", lambda i: f",,{i * 0.5}"))),
    case("constant_columns", 2, ("no feature column varies: all 2 are constant or empty",),
         data=file_with("constant.csv", rows("a,b,y", lambda i: f"1,red,{i * 0.5}"))),
    case("zero_rows", 2, ("at least 2 rows of data, got 0", "add rows"),
         data=file_with("header.csv", "a,b,y\n")),
    case("one_row", 2, "at least 2 rows of data, got 1", data=tiny_csv(1)),
    case("too_few_rows_to_split", 2, ("4 rows are too few", "at least 5 rows"),
         data=tiny_csv(4)),
    case("fewer_rows_than_folds", 2, ("9 training rows are too few for 10-fold",
                                      "use fewer folds or more data"),
         data=tiny_csv(12), cli=["--validation", "10"], api=dict(validation=10)),
    # techniques, families, objectives, metric
    case("unknown_technique", 2, ("unknown technique 'l9'", "see autoreg plugins"),
         cli=["--techniques", "l9"], api=dict(techniques=["l9"])),
    case("no_techniques", 2, "no techniques given; name at least one",
         cli=["--techniques", ","], api=dict(techniques=[])),
    case("technique_for_another_family", 2, ("technique 'dropout' cannot be used",
                                             "add --family mlp"),
         cli=["--techniques", "dropout"], api=dict(techniques=["dropout"])),
    case("unknown_family", 2, "unknown family 'tree'; known: linear",
         cli=["--family", "tree"], api=dict(families=["tree"])),
    case("family_twice", 2, "family 'linear' is listed twice",
         cli=["--family", "linear,linear"], api=dict(families=["linear", "linear"])),
    case("unknown_objective", 2, "unknown objective 'speed'; choose among error",
         cli=["--objectives", "error,speed"], api=dict(objectives=("error", "speed"))),
    case("objective_twice", 2, "objective 'size' is listed twice",
         cli=["--objectives", "error,size,size"], api=dict(objectives=("error", "size", "size"))),
    case("objectives_without_error", 2, ("must include error", "add error"),
         cli=["--objectives", "size,sparsity"], api=dict(objectives=("size", "sparsity"))),
    case("unknown_metric", 2, ("unknown metric 'rmsle2'", "scikit-learn scorer name"),
         cli=["--metric", "rmsle2"], api=dict(metric="rmsle2")),
    case("metric_for_another_task", 2, ("metric 'accuracy' does not fit a regression task",
                                        "use rmse"),
         cli=["--metric", "accuracy"], api=dict(metric="accuracy")),
    # budget, validation, split, constraints, workers
    case("zero_trials", 2, "n_trials must be a positive whole number, got 0",
         cli=["--trials", "0"], api=dict(n_trials=0)),
    case("negative_trials", 2, "got -3", cli=["--trials", "-3"], api=dict(n_trials=-3)),
    case("zero_timeout", 2, "timeout must be a positive number of seconds",
         cli=["--timeout", "0"], api=dict(timeout=0.0)),
    case("negative_timeout", 2, "got -5", cli=["--timeout", "-5"], api=dict(timeout=-5.0)),
    case("one_fold", 2, "cross-validation needs at least 2 folds",
         cli=["--validation", "1"], api=dict(validation=1)),
    case("unknown_validation", 2, "validation must be 'auto', 'holdout' or a number of folds",
         cli=["--validation", "kfold"], api=dict(validation="kfold")),
    case("test_size_above_one", 2,
         "test_size must be 0 (no test split) or between 0 and 1, got 1.5",
         cli=["--test-size", "1.5"], api=dict(test_size=1.5)),
    case("test_size_negative", 2,
         "test_size must be 0 (no test split) or between 0 and 1, got -0.1",
         cli=["--test-size", "-0.1"], api=dict(test_size=-0.1)),
    case("min_sparsity_above_one", 2, "min_sparsity is a fraction between 0 and 1",
         cli=["--min-sparsity", "2"], api=dict(min_sparsity=2)),
    case("negative_max_size", 2, "max_size must be a positive number of bytes, got -5",
         cli=["--max-size", "-5"], api=dict(max_size=-5)),
    case("zero_jobs", 2, "n_jobs must be a whole number of worker processes from 1 to 256",
         cli=["--jobs", "0"], api=dict(n_jobs=0)),
    case("bad_worker_start", 2, "AUTOREG_WORKER_START must be fork or spawn",
         cli=["--jobs", "2"], api=dict(n_jobs=2),
         setup=lambda t, mp: mp.setenv("AUTOREG_WORKER_START", "teleport")),
    case("group_names_a_missing_column", 2, ("group '0' names column 'zz', which the data does "
                                             "not have", "use column names from the header"),
         cli=lambda t: ["--groups", str(groups_file(t))], api=dict(groups=[["a", "zz"]])),
    case("hidden_sizes_without_mlp", 2, "hidden sizes are for the mlp family; add it with "
         "--family mlp", cli=["--hidden", "64"], api=dict(hidden="64")),
    case("negative_seed", 2, "seed must be a whole number from 0 to 4294967295, got -1",
         cli=["--seed", "-1"], api=dict(seed=-1)),
    case("register_without_mlflow", 2, "register needs MLflow logging",
         cli=["--register", "m", "--no-mlflow"], api=dict(register="m", log_mlflow=False)),
    # where things are stored
    case("unsupported_storage_url", 2, ("unsupported storage URL ftp://host/x", "use sqlite://"),
         cli=["--storage", "ftp://host/x"], api=dict(storage="ftp://host/x")),
    case("storage_url_without_slashes", 2, ("storage URL sqlite:studies.db needs slashes",
                                             "sqlite:///studies.db"),
         cli=["--storage", "sqlite:studies.db"], api=dict(storage="sqlite:studies.db")),
    case("storage_file_under_a_file", 2, "cannot open storage file",
         cli=lambda t: ["--storage", str(a_file(t) / "studies.journal")],
         api=lambda t: dict(storage=str(a_file(t) / "studies.journal"))),
    case("sqlite_storage_under_a_file", 2, "cannot open storage sqlite:///",
         cli=lambda t: ["--storage", f"sqlite:///{a_file(t)}/s.db"],
         api=lambda t: dict(storage=f"sqlite:///{a_file(t)}/s.db")),
    case("study_exists_with_other_settings", 1, ("study 'bad' exists with seed=1, not 0",
                                                 "choose another --study name"),
         setup=existing_study),
    case("artifacts_folder_under_a_file", 2, "cannot create the model folder",
         cli=lambda t: ["--artifacts", str(a_file(t) / "models")],
         api=lambda t: dict(artifacts=str(a_file(t) / "models"))),
    case("malformed_tracking_uri", 2, ("unsupported tracking URI nosuchscheme://x",
                                        "use sqlite:///path/mlflow.db"),
         cli=["--tracking-uri", "nosuchscheme://x"], api=dict(tracking_uri="nosuchscheme://x")),
    case("tracking_sqlite_under_a_file", 2, ("does not exist",
                                              "create it or choose another --tracking-uri"),
         cli=lambda t: ["--tracking-uri", f"sqlite:///{a_file(t)}/mlflow.db"],
         api=lambda t: dict(tracking_uri=f"sqlite:///{a_file(t)}/mlflow.db")),
]


def _parquet_as_csv(t: Path) -> Path:
    path = t / "really_parquet.csv"
    good_frame().to_parquet(path)
    return path


def common_cli(t: Path) -> list[str]:
    return ["--storage", str(t / "studies.journal"), "--tracking-uri", tracking_uri(t),
            "--artifacts", str(t / "models"), "--study", STUDY, "--trials", "3", "--seed", "0"]


def common_api(t: Path) -> dict:
    return dict(storage=str(t / "studies.journal"), tracking_uri=tracking_uri(t),
                artifacts=str(t / "models"), study_name=STUDY, n_trials=3, seed=0)


def tracking_uri(t: Path) -> str:
    return f"sqlite:///{t / 'mlflow.db'}"


def run_cli(capsys, argv) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def _studies(path: Path) -> list[str]:
    import optuna

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(path)))
    return [s.study_name for s in optuna.get_all_study_summaries(storage)]


class State:
    """What a case may leave behind, looked at before and after it runs."""

    def __init__(self, t: Path):
        self.t = t
        self.journal = t / "studies.journal"
        self.before = self.journal.read_bytes() if self.journal.exists() else None

    def assert_untouched(self, how: str) -> None:
        if self.before is not None:
            assert self.journal.read_bytes() == self.before, f"{how}: the study was changed"
        elif self.journal.exists():
            assert _studies(self.journal) == [], f"{how}: a study was created"
        assert not (self.t / "mlflow.db").exists(), f"{how}: an MLflow store was created"
        models = self.t / "models"
        assert not models.exists() or not any(models.rglob("*")), f"{how}: model files made"
        home = self.t / ".autoreg"  # the default storage and model folder
        assert not home.exists() or not any(p.is_file() for p in home.rglob("*")), \
            f"{how}: files under AUTOREG_HOME"


class TrialStarted(BaseException):
    """Raised (past every ``except Exception``) if a case gets as far as fitting a model."""


def _params():
    for c in CASES:
        marks = [pytest.mark.xfail(reason=c.xfail, strict=True)] if c.xfail else []
        yield pytest.param(c, id=c.id, marks=marks)


@pytest.mark.parametrize("c", list(_params()))
def test_bad_input_through_cli_and_api(c: Case, tmp_path, capsys, monkeypatch):
    t = tmp_path
    if c.setup is not None:
        c.setup(t, monkeypatch)
    data = c.data(t)
    state = State(t)

    def no_trial(*args, **kwargs):
        raise TrialStarted(f"{c.id}: a trial started; bad input must be refused before")

    monkeypatch.setattr("autoreg.engine.Objective.evaluate", no_trial)

    # The Python API: an AutoRegError that names the problem and what to do.
    api = dict(common_api(t), **(c.api(t) if callable(c.api) else c.api))
    with pytest.raises(AutoRegError) as info:
        autoreg.search(data, target=c.target, **api)
    message = str(info.value)
    for needle in c.needles:
        assert needle in message
    assert info.value.exit_code == c.code
    assert "\n" not in message
    state.assert_untouched("API")

    # The command line: the same message as one line on stderr, and the exit code.
    argv = ["search", str(data), *(["--target", c.target] if c.target else []), *common_cli(t),
            *(c.cli(t) if callable(c.cli) else c.cli)]
    code, out, err = run_cli(capsys, argv)
    assert (code, out) == (c.code, "")
    assert err.splitlines() == [f"autoreg: error: {message}"]
    state.assert_untouched("CLI")


def test_a_constant_column_among_useful_ones_is_fine(tmp_path, capsys):
    """Constant and empty columns next to informative ones are not an error."""
    frame = good_frame().assign(const=7.0, empty=np.nan)
    path = tmp_path / "with_constants.csv"
    frame.to_csv(path, index=False)
    code, out, err = run_cli(capsys, ["search", path, "--target", "y", "--trials", "2",
                                      "--no-mlflow", "--json", "--no-paths"])
    assert code == 0, err
    assert json.loads(out)["n_trials"] == 2


# -- the command line alone: options the API takes as Python values -----------------------------
@pytest.mark.parametrize("argv, code, needles", [
    (["search", "--trials", "many"], 2, ("'many' is not a valid integer", "autoreg search --help")),
    (["search", "--task", "clustering"], 2, ("Invalid value for '--task'", "'clustering'")),
    (["search", "--sampler", "cmaes"], 2, ("Invalid value for '--sampler'",)),
    (["search", "--groups", "missing.json"], 2, ("groups file not found: missing.json",)),
    (["search", "--groups", "broken.json"], 2, ("groups file broken.json is not valid JSON",)),
    (["search", "--frobnicate"], 2, ("No such option '--frobnicate'",)),
    (["front", "nosuchstudy", "--storage", "studies.journal"], 1,
     ("no study named 'nosuchstudy'",)),
    (["export", "nosuchstudy", "-o", "m.autoreg", "--storage", "studies.journal"], 1,
     ("no study named 'nosuchstudy'",)),
    (["export", "nosuchstudy", "-o", "no/such/dir/m.autoreg", "--storage", "studies.journal"],
     2, ("cannot write no/such/dir/m.autoreg", "does not exist; create it or choose")),
    (["ui", "--port", "0", "--tracking-uri", "sqlite:///x.db"], 2,
     ("--port must be between 1 and 65535",)),
])
def test_bad_command_lines(argv, code, needles, tmp_path, capsys):
    (tmp_path / "broken.json").write_text("[[\"a\",")
    state = State(tmp_path)
    got, out, err = run_cli(capsys, argv)
    assert (got, out) == (code, "")
    assert len(err.splitlines()) == 1 and err.startswith("autoreg: error: ")
    for needle in needles:
        assert needle in err
    state.assert_untouched("CLI")
    assert not (tmp_path / "m.autoreg").exists()


def test_export_to_an_unwritable_path_keeps_the_study(tmp_path, capsys):
    """The study exists; the output cannot be written: a usage error, the study unchanged."""
    existing_study(tmp_path, None)
    state = State(tmp_path)
    target = a_file(tmp_path) / "m.autoreg"
    code, out, err = run_cli(capsys, ["export", STUDY, "-o", target, "--storage",
                                      tmp_path / "studies.journal"])
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"autoreg: error: cannot write {target}: {target.parent} is "
                                "not a folder; choose another -o path"]
    state.assert_untouched("export")


def test_saving_a_model_to_an_unwritable_path(tmp_path):
    existing_study(tmp_path, None)
    import optuna

    from autoreg.result import SearchResult
    from autoreg.storage import ModelStore, open_storage

    store = open_storage(str(tmp_path / "studies.journal"))
    result = SearchResult(optuna.load_study(study_name=STUDY, storage=store), store=store,
                          models=ModelStore(tmp_path / "setup-models"))
    with pytest.raises(AutoRegError, match="cannot write .*; choose a writable path"):
        result.model(int(result.front["trial"].iloc[0])).save(a_file(tmp_path) / "m.autoreg")


# -- the Python API alone: inputs the command line cannot express -------------------------------
X30 = np.random.default_rng(3).standard_normal((30, 3))
Y30 = X30 @ [1.0, -2.0, 0.5]


@pytest.mark.parametrize("args, kwargs, code, needle", [
    ((X30, Y30[:29]), {}, 2, "X has 30 rows but y has 29; give one target value per row"),
    ((X30, Y30), {"task": "clustering"}, 2, "unknown task 'clustering'"),
    ((X30, Y30), {"sampler": "cmaes"}, 2, "unknown sampler 'cmaes'"),
    ((X30, None), {}, 2, "no target: pass y, or target= naming a column"),
    ((pd.DataFrame(X30, columns=["a", "a", "b"]).assign(y=Y30), None), {"target": "y"}, 2,
     "column names must be unique, but 'a' names more than one column"),
    ((pd.DataFrame({"when": pd.date_range("2020", periods=30), "y": Y30}), None),
     {"target": "y"}, 2, "column 'when' holds dates or durations"),
    ((np.ones((30, 3)), Y30), {}, 2, "no feature column varies"),
    ((X30, np.where(np.arange(30) == 4, np.nan, Y30)), {}, 2, "1 missing value(s)"),
    ((X30, Y30), {"objectives": ()}, 2, "no objectives given"),
    ((X30, Y30), {"log_trials": "some"}, 2, "log_trials must be 'front' or 'all'"),
    ((X30, Y30), {"n_trials": 2.5}, 2, "n_trials must be a positive whole number, got 2.5"),
    ((X30, Y30), {"n_trials": True}, 2, "n_trials must be a positive whole number, got True"),
    ((X30, Y30), {"register": " "}, 2, "register needs a model name"),
    ((X30, Y30), {"groups": "a,b"}, 2, "groups must be a list of column lists or a dict"),
    ((X30, Y30), {"timeout": "ten"}, 2, "timeout must be a positive number"),
])
def test_bad_python_arguments(args, kwargs, code, needle, tmp_path):
    state = State(tmp_path)
    with pytest.raises(AutoRegError) as info:
        autoreg.search(*args, **{**common_api(tmp_path), **kwargs})
    assert needle in str(info.value) and info.value.exit_code == code
    state.assert_untouched("API")


def test_names_may_be_given_as_one_comma_separated_string(tmp_path):
    """``techniques="l1,l2"`` means two techniques, as on the command line, not five letters."""
    with pytest.raises(AutoRegError, match="unknown technique 'l9'"):
        autoreg.search(X30, Y30, techniques="l1,l9", **common_api(tmp_path))
    with pytest.raises(AutoRegError, match="objective 'size' is listed twice"):
        autoreg.search(X30, Y30, objectives="error,size,size", **common_api(tmp_path))


# -- a real terminal ----------------------------------------------------------------------------
@pytest.mark.parametrize("argv, needle", [
    (["search", "garbage.csv", "--target", "y"], "binary data"),
    (["search", "data.csv", "--target", "price"], "target column 'price' not found"),
])
def test_a_real_process_prints_one_line_and_no_traceback(argv, needle, tmp_path):
    file_with("garbage.csv", bytes(range(256)))(tmp_path)
    good_csv(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "autoreg.cli", *argv, "--storage",
                           "studies.journal", "--tracking-uri", tracking_uri(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("autoreg: error: ") and needle in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "studies.journal").exists()
    assert not (tmp_path / "mlflow.db").exists()
