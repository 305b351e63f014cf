"""Properties of the data loader on generated files: malformed input is refused with a DataError
or UsageError (never a crash), and well-formed data reads back exactly, from CSV and Parquet
alike."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoreg import data
from autoreg.cli import main
from autoreg.errors import DataError, UsageError

# tmp_path and capsys are shared by the examples of one test; each example overwrites its file.
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


# -- malformed files ----------------------------------------------------------------------------
CELLS = st.one_of(
    st.sampled_from(["", "y", "a", "a", "1", "-2.5", "1e308", "-1e-320", "nan", "NaN", "inf",
                     "-inf", "Infinity", "NA", "null", "True", "\"", "\"\"", "'", ",", ";",
                     "\t", "|", " ", "\\", "#", "\"a,b\"", "\"x\ny\"", "é", "日本"]),
    st.text(st.characters(exclude_characters="\x00"), max_size=8),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-10**20, max_value=10**20).map(str),
)


@st.composite
def delimited_text(draw) -> bytes:
    """A header and ragged rows of odd cells, joined by mixed separators and line ends, in one
    of several encodings, sometimes with a byte-order mark, a huge field or blank lines."""
    sep = draw(st.sampled_from([",", ",", ";", "\t", "|"]))
    header = draw(st.lists(CELLS, min_size=1, max_size=5))
    if draw(st.integers(0, 4)):
        header.append("y")  # mostly a target to find
    width = len(header)
    lines = [header]
    for _ in range(draw(st.integers(0, 12))):
        n = draw(st.sampled_from([width, width, width, max(width - 1, 0), width + 1, 0]))
        lines.append(draw(st.lists(CELLS, min_size=n, max_size=n)))
    if draw(st.integers(0, 9)) == 0 and len(lines) > 1:
        lines[-1] = lines[-1] + ["9" * draw(st.integers(10_000, 200_000))]  # a huge field
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = end.join(sep.join(cells) for cells in lines)
    if draw(st.booleans()):
        text += end * draw(st.integers(1, 3))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1",
                                     "cp1252"]))
    return text.encode(encoding, errors="replace")


def _refused_or_valid(path, target="y"):
    """Load ``path``: either a DataError/UsageError, or a dataset that holds together."""
    try:
        ds = data.load(path, target=target)
    except (DataError, UsageError) as exc:
        message = str(exc)
        assert message and "\n" not in message
        return None
    assert ds.n_rows >= 2 and ds.n_columns >= 1
    assert len(ds.y) == ds.n_rows
    assert ds.task in ("regression", "binary", "multiclass")
    if ds.task == "regression":
        assert np.isfinite(ds.y).all()
    else:
        assert len(ds.classes) >= 2
    assert len(ds.digest) == 16
    return ds


@SETTINGS
@given(content=st.binary(max_size=2000), suffix=st.sampled_from([".csv", ".tsv", ".parquet",
                                                                 ".txt"]))
def test_random_bytes_are_refused_or_read(content, suffix, tmp_path):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(content)
    _refused_or_valid(path)


@SETTINGS
@given(content=delimited_text())
def test_malformed_delimited_text_is_refused_or_read(content, tmp_path):
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    _refused_or_valid(path)


@SETTINGS
@given(content=delimited_text())
def test_the_command_line_says_one_line_about_malformed_files(content, tmp_path, capsys):
    """Through ``autoreg search``, up to the point where the study would be opened: whatever
    the file, one ``autoreg: error:`` line, exit code 2, nothing on stdout."""
    import autoreg.engine

    def stop(*args, **kwargs):
        raise UsageError("stopped before the study: the data was accepted")

    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(autoreg.engine, "_open_study", stop)
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main(["search", str(path), "--target", "y", "--no-mlflow", "--trials", "1",
                  "--storage", str(tmp_path / "studies.journal")])
    out, err = capsys.readouterr()
    assert info.value.code == 2, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("autoreg: error: "), err
    assert "Traceback" not in err


# -- round trips --------------------------------------------------------------------------------
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(lambda n: n != "target")
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def numeric_frames(draw) -> pd.DataFrame:
    """A numeric frame with a ``target`` column: floats (some missing) and integers."""
    n = draw(st.integers(2, 25))
    names = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    columns = {"row": np.arange(n, dtype=np.float64)}  # so that some column always varies
    for name in names:
        if draw(st.booleans()):
            values = np.array(draw(st.lists(FINITE, min_size=n, max_size=n)), dtype=np.float64)
            missing = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
            values[missing & draw(st.booleans())] = np.nan
        else:
            values = np.array(draw(st.lists(st.integers(-2**62, 2**62), min_size=n,
                                            max_size=n)), dtype=np.int64)
        columns[name] = values
    target = draw(st.lists(FINITE, min_size=n, max_size=n, unique=True))
    columns["target"] = np.array(target, dtype=np.float64)
    return pd.DataFrame(columns)


def _assert_same_frame(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert got.shape == want.shape
    for col in want.columns:
        assert got[col].dtype == want[col].dtype, col
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy())


@SETTINGS
@given(frame=numeric_frames())
def test_csv_and_parquet_read_back_the_same_dataset(frame, tmp_path):
    csv, parquet = tmp_path / "frame.csv", tmp_path / "frame.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet, index=False)
    in_memory = data.load(frame, target="target")
    features = frame.drop(columns=["target"])
    for path in (csv, parquet):
        ds = data.load(path, target="target")
        _assert_same_frame(ds.X, features)
        np.testing.assert_array_equal(ds.y, frame["target"].to_numpy())
        assert ds.task == in_memory.task
        assert ds.digest == in_memory.digest, path.suffix


@SETTINGS
@given(frame=numeric_frames(), bom=st.booleans(), end=st.sampled_from(["\n", "\r\n"]),
       blank=st.booleans(), encoding=st.sampled_from(["utf-8", "utf-16"]),
       sep=st.sampled_from([",", ";", "\t", "|"]))
def test_how_a_csv_is_written_does_not_change_what_is_read(frame, bom, end, blank, encoding,
                                                           sep, tmp_path):
    """A byte-order mark, Windows line ends, blank lines, UTF-16 or another separator: the
    same numbers, the same digest."""
    plain = tmp_path / "plain.csv"
    frame.to_csv(plain, index=False)
    text = frame.to_csv(index=False, sep=sep, lineterminator=end)
    if blank:
        text = text.replace(end, end + end, 1) + end
    if bom and encoding == "utf-8":
        encoding = "utf-8-sig"
    odd = tmp_path / "odd.csv"
    odd.write_bytes(text.encode(encoding))
    want = data.load(plain, target="target")
    got = data.load(odd, target="target")
    _assert_same_frame(got.X, want.X)
    assert got.digest == want.digest


@pytest.mark.parametrize("value", ["1e308", "-1e308", "5e-324", "0.1", "-0.0",
                                   "1.7976931348623157e308", "0.30000000000000004"])
def test_numbers_read_back_bit_for_bit(value, tmp_path):
    path = tmp_path / "n.csv"
    path.write_text(f"x,target\n{value},1.5\n2,2.5\n3,3.5\n")
    got = data.load(path, target="target").X["x"].iloc[0]
    assert got == float(value) and math.copysign(1, got) == math.copysign(1, float(value))
