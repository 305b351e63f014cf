"""Reading what a user hands over: frames, arrays, sparse matrices, files and built-in names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from autoreg import data
from autoreg.errors import DataError, UsageError


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "x1": rng.standard_normal(30),
        "x2": rng.integers(0, 5, 30),
        "colour": rng.choice(["red", "green"], 30),
        "price": rng.normal(100, 20, 30),
    })


# -- inputs -------------------------------------------------------------------------------------
def test_dataframe_with_target_column(frame):
    ds = data.load(frame, target="price")
    assert list(ds.X.columns) == ["x1", "x2", "colour"]
    np.testing.assert_array_equal(ds.y, frame["price"].to_numpy())
    assert ds.task == "regression" and ds.classes is None
    assert (ds.n_rows, ds.n_columns) == (30, 3)
    assert "price" in frame.columns  # the caller's frame is not modified


def test_dataframe_column_names_become_strings():
    df = pd.DataFrame(np.arange(12.0).reshape(4, 3))
    ds = data.load(df, y=[0.5, 1.5, 2.5, 3.7])
    assert list(ds.X.columns) == ["0", "1", "2"]


def test_numpy_x_and_y():
    X = np.arange(20.0).reshape(10, 2)
    ds = data.load(X, np.linspace(0, 1, 10))
    assert isinstance(ds.X, np.ndarray) and ds.X.dtype == np.float64 and ds.X.shape == (10, 2)
    ds = data.load(np.arange(10), np.linspace(0, 1, 10))
    assert ds.X.shape == (10, 1)  # a single feature given as a vector


@pytest.mark.parametrize("convert", [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array,
                                     sp.coo_array])
def test_sparse_input_becomes_csr_without_densifying(convert, monkeypatch):
    X = sp.random(50, 400, density=0.01, format="csr", random_state=0)
    given = convert(X)

    def boom(*args, **kwargs):
        raise AssertionError("the sparse input was densified")

    for klass in type(given).__mro__ + sp.csr_matrix.__mro__:
        for name in ("toarray", "todense"):
            if name in vars(klass):
                monkeypatch.setattr(klass, name, boom)
    ds = data.load(given, np.arange(50.0))
    assert isinstance(ds.X, sp.csr_matrix)
    assert ds.is_sparse and ds.X.nnz == X.nnz and ds.X.shape == (50, 400)
    assert ds.X.dtype == np.float64
    assert (ds.X != X).nnz == 0


def test_integer_and_boolean_sparse_matrices_are_numbers():
    X = sp.random(20, 5, density=0.3, format="csr", random_state=0)
    for given in (X.astype(bool), (X * 10).astype(np.int32)):
        ds = data.load(given, np.arange(20.0))
        assert ds.X.dtype == np.float64 and ds.X.nnz == given.nnz


def test_sparse_input_with_nan_is_refused():
    X = sp.random(20, 5, density=0.3, format="csr", random_state=0)
    X.data[0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        data.load(X, np.arange(20.0))


def test_csv_and_parquet_paths(frame, tmp_path):
    frame.to_csv(tmp_path / "houses.csv", index=False)
    frame.to_parquet(tmp_path / "houses.parquet")
    for path in (tmp_path / "houses.csv", str(tmp_path / "houses.parquet")):
        ds = data.load(path, target="price")
        assert ds.name == "houses"
        assert list(ds.X.columns) == ["x1", "x2", "colour"]
        np.testing.assert_allclose(ds.X["x1"].to_numpy(), frame["x1"].to_numpy())
        np.testing.assert_allclose(ds.y, frame["price"].to_numpy())
        assert ds.task == "regression"


def test_gzipped_csv_and_tsv_paths(frame, tmp_path):
    frame.to_csv(tmp_path / "houses.csv.gz", index=False)
    frame.to_csv(tmp_path / "houses.tsv", sep="\t", index=False)
    for path in (tmp_path / "houses.csv.gz", tmp_path / "houses.tsv"):
        ds = data.load(path, target="price")
        assert ds.name == "houses"
        assert ds.n_columns == 3
        np.testing.assert_allclose(ds.y, frame["price"].to_numpy())


@pytest.mark.parametrize("name,task,shape,n_classes", [
    ("diabetes", "regression", (442, 10), None),
    ("breast_cancer", "binary", (569, 30), 2),
    ("digits", "multiclass", (1797, 64), 10),
    ("wine", "multiclass", (178, 13), 3),
    ("synthetic_sparse", "regression", (400, 2000), None),
])
def test_builtin_datasets(name, task, shape, n_classes):
    ds = data.load(name)
    assert ds.name == name
    assert ds.task == task
    assert (ds.n_rows, ds.n_columns) == shape
    assert len(ds.y) == shape[0]
    assert (ds.classes is None) == (n_classes is None)
    if n_classes:
        assert len(ds.classes) == n_classes


def test_no_data_means_the_demo():
    assert data.load(None).name == "diabetes"


def test_a_local_file_wins_over_a_builtin_name(frame):
    frame.to_csv("wine", index=False)  # cwd is this test's own folder
    with pytest.raises(DataError, match="cannot read wine"):
        data.load("wine", target="price")


def test_same_data_same_digest_and_changes_show(frame):
    a = data.load(frame, target="price").digest
    assert data.load(frame.copy(), target="price").digest == a
    changed = frame.copy()
    changed.loc[3, "x1"] += 1e-9
    assert data.load(changed, target="price").digest != a
    assert data.load(frame, target="x1").digest != a


# -- task detection -----------------------------------------------------------------------------
X30 = np.random.default_rng(1).standard_normal((30, 2))


@pytest.mark.parametrize("y,task,classes", [
    (np.linspace(0, 3, 30), "regression", None),
    (np.arange(30), "regression", None),  # 30 distinct integers: a count, not labels
    (np.tile([0, 1], 15), "binary", [0, 1]),
    (np.tile([0.5, 2.5], 15), "binary", [0.5, 2.5]),
    (np.tile([True, False], 15), "binary", [False, True]),
    (np.tile(["spam", "ham"], 15), "binary", ["ham", "spam"]),
    (np.tile(["a", "b", "c"], 10), "multiclass", ["a", "b", "c"]),
    (np.tile(np.arange(15), 2), "multiclass", list(range(15))),
    (np.tile(np.arange(20), 2)[:30], "multiclass", list(range(20))),
    (np.arange(30) % 21, "regression", None),  # 21 integer values: past the label limit
    (pd.Series(np.tile(["x", "y", "z"], 10), dtype="category"), "multiclass", ["x", "y", "z"]),
    (np.array(list(np.linspace(0, 3, 30)), dtype=object), "regression", None),
    (pd.Series(np.linspace(0, 3, 30)).astype("Float64"), "regression", None),
    (pd.Series(np.tile([1, 2, 3], 10)).astype("Int64"), "multiclass", [1, 2, 3]),
])
def test_task_is_detected_from_the_target(y, task, classes):
    ds = data.load(X30, y)
    assert ds.task == task
    if classes is None:
        assert ds.classes is None
        assert ds.y.dtype == np.float64
    else:
        assert list(ds.classes) == classes


@pytest.mark.parametrize("y,asked,task", [
    (np.tile([0, 1, 2], 10), "regression", "regression"),
    (np.linspace(0, 3, 30).round(), "classification", "multiclass"),
    (np.tile([0, 1], 15), "classification", "binary"),
    (np.tile(["a", "b"], 15), "binary", "binary"),
    (np.tile(["a", "b", "c"], 10), "multiclass", "multiclass"),
])
def test_task_can_be_overridden(y, asked, task):
    ds = data.load(X30, y, task=asked)
    assert ds.task == task
    if task == "regression":
        assert ds.y.dtype == np.float64 and ds.classes is None


def test_numeric_strings_can_be_a_regression_target():
    ds = data.load(X30, np.array([f"{v:.2f}" for v in np.linspace(0, 3, 30)]), task="regression")
    np.testing.assert_allclose(ds.y, np.linspace(0, 3, 30), atol=0.005)


# -- errors -------------------------------------------------------------------------------------
def write(path, text: str):
    path.write_text(text)
    return path


@pytest.mark.parametrize("make,kwargs,error,message", [
    (lambda p: p / "missing.csv", {"target": "y"}, DataError, "file not found: .*missing.csv"),
    (lambda p: "no_such_set", {}, DataError, "no file and no built-in dataset named "
                                                 "'no_such_set'; built-ins are .*diabetes"),
    (lambda p: write(p / "empty.csv", ""), {"target": "y"}, DataError, "empty.csv is empty"),
    (lambda p: write(p / "blank.csv", "\n\n"), {"target": "y"}, DataError, "is empty"),
    (lambda p: write(p / "header.csv", "a,b,y\n"), {"target": "y"}, DataError,
     "at least 2 rows of data, got 0"),
    (lambda p: write(p / "t.csv", "a,b\n1,2\n3,4\n"), {"target": "price"}, DataError,
     "target column 'price' not found; columns are: a, b"),
    (lambda p: write(p / "t.csv", "a,b\n1,2\n3,4\n"), {}, UsageError, "--target"),
    (lambda p: p, {"target": "y"}, DataError, "is a directory"),
    (lambda p: write(p / "data.xlsx", "a,b\n1,2\n"), {"target": "b"}, DataError,
     "reads .csv, .tsv, .txt and .parquet files"),
    (lambda p: write(p / "data.json", "{}"), {"target": "b"}, DataError, "cannot read"),
    (lambda p: write(p / "bad.parquet", "not parquet"), {"target": "b"}, DataError,
     "cannot read .*bad.parquet"),
    (lambda p: "diabetes", {"target": "y"}, UsageError, "brings its own target"),
])
def test_bad_paths_and_files(tmp_path, make, kwargs, error, message):
    with pytest.raises(error, match=message):
        data.load(make(tmp_path), **kwargs)


@pytest.mark.parametrize("X,y,kwargs,error,message", [
    (X30, np.r_[np.linspace(0, 1, 29), np.nan], {}, DataError, "1 missing value"),
    (X30, np.r_[np.linspace(0, 1, 29), np.inf], {}, DataError, "infinite"),
    (X30, np.array(["a"] * 29 + [None], dtype=object), {}, DataError, "1 missing value"),
    (X30, np.array(["a"] * 30), {}, DataError, r"single class \('a'\)"),
    (X30, np.ones(30, dtype=int), {}, DataError, r"single class \(1\)"),
    (X30, np.tile(["a", "b", "c"], 10), {"task": "regression"}, DataError, "not numeric"),
    (X30, np.tile(["a", "b", "c"], 10), {"task": "binary"}, DataError, "3 classes"),
    (X30, np.tile([0, 1], 15), {"task": "multiclass"}, DataError, "2 classes"),
    (X30, np.arange(29.0), {}, DataError, "X has 30 rows but y has 29"),
    (X30[:1], np.array([1.0]), {}, DataError, "at least 2 rows of data, got 1"),
    (np.empty((5, 0)), np.arange(5.0), {}, DataError, "no feature columns"),
    (np.zeros((4, 2, 2)), np.arange(4.0), {}, DataError, "2-dimensional"),
    (np.r_[X30[:29], [[np.inf, 0]]], np.arange(30.0), {}, DataError, "infinite"),
    (pd.DataFrame({"a": [1.0, np.inf, 2.0], "t": [1.0, 2.0, 3.5]}), None, {"target": "t"},
     DataError, "column 'a' holds infinite values"),
    (pd.DataFrame({"a": [1.0, 2.0], "t": [1.0, 2.0]}), None, {"target": "nope"}, DataError,
     "target column 'nope' not found; columns are: a, t"),
    (pd.DataFrame({"a": [1.0, 2.0], "t": [1.0, 2.0]}), [1.0, 2.0], {"target": "t"}, UsageError,
     "either target= or y"),
    (pd.DataFrame({"a": [1.0, 2.0], "t": [1.0, 2.0]}), None, {}, UsageError, "no target"),
    (X30, None, {}, UsageError, "no target"),
    (pd.DataFrame({"a": [1.0, 2.0], "t": [1.0, 2.0]}), "t", {}, UsageError, "pass target='t'"),
    (X30, np.arange(30.0), {"target": "t"}, UsageError, "target= names a column"),
    (X30, np.arange(30.0), {"task": "clustering"}, UsageError, "unknown task 'clustering'"),
    (X30, np.ones((30, 2)), {}, DataError, "1-dimensional"),
    (sp.csr_matrix(np.ones((3, 2), dtype=complex)), np.arange(3.0), {}, DataError, "numeric"),
])
def test_bad_arrays_and_targets(X, y, kwargs, error, message):
    with pytest.raises(error, match=message):
        data.load(X, y, **kwargs)


def test_errors_are_value_errors_for_sklearn_style_callers():
    with pytest.raises(ValueError):
        data.load(X30, np.ones(30), task="binary")


# -- files as they come -------------------------------------------------------------------------
@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_csv_with_another_separator_is_read_by_it(frame, tmp_path, sep):
    plain, other = tmp_path / "plain.csv", tmp_path / "other.csv"
    frame.to_csv(plain, index=False)
    frame.to_csv(other, index=False, sep=sep)
    got = data.load(other, target="price")
    assert list(got.X.columns) == ["x1", "x2", "colour"]
    assert got.digest == data.load(plain, target="price").digest


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_byte_order_mark_is_read(frame, tmp_path, encoding):
    path = tmp_path / "bom.csv"
    path.write_bytes(frame.to_csv(index=False).encode(encoding))
    assert list(data.load(path, target="price").X.columns) == ["x1", "x2", "colour"]


def test_constant_and_empty_columns_next_to_useful_ones_are_kept(frame):
    ds = data.load(frame.assign(const=1.0, empty=np.nan, label="same"), target="price")
    assert ds.n_columns == 6


@pytest.mark.parametrize("extra", [{}, {"task": "regression"}])
def test_no_varying_column_is_refused(extra):
    frame = pd.DataFrame({"a": [1.0] * 6, "b": [np.nan] * 6, "c": ["k"] * 6,
                          "t": [1.5, 2.5, 3.5, 4.5, 5.5, 6.5]})
    with pytest.raises(DataError, match="no feature column varies: all 3 are constant or empty"):
        data.load(frame, target="t", **extra)
    with pytest.raises(DataError, match="no feature column varies"):
        data.load(sp.csr_matrix((6, 3)), np.arange(6.0))


def test_a_target_in_another_case_is_suggested(frame):
    with pytest.raises(DataError, match="did you mean 'price'"):
        data.load(frame, target="Price")


def test_a_target_with_integers_past_64_bits_is_numeric(tmp_path):
    """pandas keeps such integers as Python objects; they are numbers all the same (found by
    tests/test_data_properties.py: int64 conversion overflowed into an internal error)."""
    path = tmp_path / "big.csv"
    rows = "\n".join(f"{i},{v}" for i, v in enumerate([-9223372036854775809, *range(1, 40)]))
    path.write_text("a,y\n" + rows + "\n")
    ds = data.load(str(path), target="y")
    assert ds.y.dtype == np.float64 and ds.y[0] == -9223372036854775809.0


def test_odd_column_names_stay_one_short_line_in_messages(tmp_path):
    """A quoted newline or a 2,000-character name in a CSV header (found by
    tests/test_data_properties.py) is escaped and cut in the message."""
    path = tmp_path / "odd.csv"
    path.write_text('"a\nb",' + "9" * 2000 + ",c\n1,2,3\n4,5,6\n")
    with pytest.raises(DataError) as info:
        data.load(str(path), target="y")
    message = str(info.value)
    assert "\n" not in message and len(message) < 300
    assert "a\\nb" in message and "999..." in message
