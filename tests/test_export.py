"""The compact export format: exact round trips, the smallest encoding, and clean refusals."""

from __future__ import annotations

import ast
import inspect
import json
import math
import pickle
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autoreg
from autoreg import export, model
from autoreg.errors import ExportFormatError

DTYPES = ["float64", "float32", "float16", "int64", "int32", "int16", "int8",
          "uint64", "uint32", "uint16", "uint8", "bool"]
HEADER_START = len(export.MAGIC) + 4
FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- helpers computed independently of autoreg.export -----------------------------------------
def canonical(arr: np.ndarray) -> np.ndarray:
    """What a round trip must give back: the same bits, except -0.0 which is stored as +0.0."""
    arr = np.array(arr)
    if arr.dtype.kind == "f":
        arr[arr == 0] = 0
    return arr


def encoding_sizes(arr: np.ndarray) -> dict[str, int]:
    size, item = arr.size, arr.dtype.itemsize
    nnz = int(np.count_nonzero(arr))  # NaN counts as non-zero, -0.0 as zero
    index_bytes = next(b for b, top in ((1, 2**8), (2, 2**16), (4, 2**32), (8, math.inf))
                       if size <= top)
    return {"d": size * item,
            "c": nnz * (index_bytes + item),
            "b": (size + 7) // 8 + nnz * item}


def header_of(buf: bytes) -> dict:
    (hlen,) = struct.unpack("<I", buf[len(export.MAGIC): HEADER_START])
    return json.loads(buf[HEADER_START: HEADER_START + hlen])


def raw_file(header, tail: bytes = b"") -> bytes:
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    return export.MAGIC + struct.pack("<I", len(body)) + body + tail


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    want = canonical(want)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert got.tobytes() == want.tobytes()


# -- strategies ---------------------------------------------------------------------------------
dtypes = st.sampled_from(DTYPES).map(np.dtype)
shapes = hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=24)


@st.composite
def dense_arrays(draw):
    dtype = draw(dtypes)
    return draw(hnp.arrays(dtype, draw(shapes)))  # NaN, inf and -0.0 included for floats


@st.composite
def sparse_arrays(draw):
    """Mostly zeros: a few drawn non-zeros scattered over a tensor of up to ~40k elements."""
    dtype = draw(dtypes)
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=200))
    size = math.prod(shape)
    flat = np.zeros(size, dtype=dtype)
    k = draw(st.integers(0, max(1, size // 5)))
    idx = draw(st.lists(st.integers(0, size - 1), max_size=min(k, 60), unique=True))
    one = np.ones(1, dtype)
    values = draw(hnp.arrays(dtype, len(idx), elements=hnp.from_dtype(dtype).filter(
        lambda v: v != 0), fill=st.just(one[0])))
    flat[idx] = values
    return flat.reshape(shape)


tensor_dicts = st.dictionaries(st.text(min_size=1, max_size=8), dense_arrays() | sparse_arrays(),
                               max_size=4)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**70) | st.text(max_size=6)
    | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(["d", "c", "b"] + DTYPES),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner,
                                                               max_size=3),
    max_leaves=12)


# -- round trips --------------------------------------------------------------------------------
@FAST
@given(arr=dense_arrays(), meta=st.dictionaries(st.text(max_size=5).filter(
    lambda k: k != "tensors"), json_values, max_size=3))
def test_dense_tensors_of_every_dtype_round_trip(arr, meta):
    meta_back, tensors = export.loads(export.dumps(meta, {"w": arr}))
    assert meta_back == meta
    assert list(tensors) == ["w"]
    assert_same(tensors["w"], arr)


@FAST
@given(arr=sparse_arrays())
def test_sparse_tensors_round_trip(arr):
    _, tensors = export.loads(export.dumps({}, {"w": arr}))
    assert_same(tensors["w"], arr)


@FAST
@given(arr=dense_arrays() | sparse_arrays())
def test_each_tensor_takes_its_smallest_encoding(arr):
    entry, blob = export.encode_tensor(arr)
    sizes = encoding_sizes(arr)
    assert len(blob) == min(sizes.values())
    assert len(blob) == sizes[entry[0]]
    # And the whole file is exactly magic + length + header + those bytes.
    buf = export.dumps({}, {"w": arr})
    (hlen,) = struct.unpack("<I", buf[len(export.MAGIC): HEADER_START])
    assert len(buf) == HEADER_START + hlen + min(sizes.values())
    assert header_of(buf)["tensors"]["w"][:3] == [entry[0], arr.dtype.name, list(arr.shape)]


@FAST
@given(tensors=tensor_dicts)
def test_several_named_tensors_round_trip_in_order(tensors):
    meta, back = export.loads(export.dumps({"kind": "x"}, tensors))
    assert meta == {"kind": "x"}
    assert list(back) == list(tensors)
    for name, arr in tensors.items():
        assert_same(back[name], arr)


@pytest.mark.parametrize("density,expected", [(0.0, "c"), (0.003, "c"), (0.3, "b"), (1.0, "d")])
def test_encoding_follows_density(density, expected):
    rng = np.random.default_rng(0)
    w = np.zeros(1000)
    w[rng.choice(1000, int(density * 1000), replace=False)] = rng.uniform(1, 2, int(density * 1000))
    entry, blob = export.encode_tensor(w)
    assert entry[0] == expected
    assert len(blob) == min(encoding_sizes(w).values())


def test_sparse_weights_make_a_much_smaller_file():
    w = np.zeros((200, 3))
    w[[5, 70, 150]] = 1.5
    sparse = export.dumps({}, {"w": w})
    dense = export.dumps({}, {"w": np.full((200, 3), 1.5)})
    assert len(dense) == HEADER_START + len(json.dumps(header_of(dense), separators=(",", ":"))) \
        + 600 * 8
    # nine non-zeros, each a 2-byte index and an 8-byte value
    assert len(sparse) == HEADER_START + len(json.dumps(header_of(sparse), separators=(",", ":"))) \
        + 9 * (2 + 8)
    assert len(sparse) < len(dense) / 30


def test_negative_zero_is_stored_as_plain_zero_whatever_the_encoding():
    for arr in (np.array([-0.0, 1.0]), np.array([-0.0] * 50 + [1.0])):
        _, t = export.loads(export.dumps({}, {"w": arr}))
        assert not np.signbit(t["w"][0])
    assert export.dumps({}, {"w": np.array([-0.0, 2.0])}) == \
        export.dumps({}, {"w": np.array([0.0, 2.0])})


def test_big_endian_input_reads_back_as_the_same_values():
    arr = np.arange(6, dtype=">f8").reshape(2, 3)
    _, t = export.loads(export.dumps({}, {"w": arr}))
    np.testing.assert_array_equal(t["w"], arr)
    assert t["w"].dtype == np.float64


def test_loaded_tensors_are_writable_copies():
    buf = export.dumps({}, {"d": np.arange(4.0), "c": np.zeros(100)})
    _, t = export.loads(buf)
    t["d"][0] = 9
    t["c"][0] = 9
    assert export.loads(buf)[1]["d"][0] == 0


@pytest.mark.parametrize("arr", [np.array(["a"]), np.array([1 + 2j]),
                                 np.array([None], dtype=object),
                                 np.array([1.0], dtype=np.longdouble)])
def test_unsupported_dtypes_are_refused(arr):
    if arr.dtype == np.float64:  # longdouble is float64 on some platforms
        pytest.skip("longdouble is float64 here")
    with pytest.raises(ExportFormatError, match="dtype"):
        export.dumps({}, {"w": arr})


def test_meta_may_not_shadow_the_tensor_table():
    with pytest.raises(ExportFormatError, match="tensors"):
        export.dumps({"tensors": 1}, {"w": np.ones(2)})


# -- malformed input ----------------------------------------------------------------------------
def loads_or_format_error(buf: bytes):
    """``loads`` may accept a byte string that happens to be valid; any other error fails."""
    try:
        meta, tensors = export.loads(buf)
    except ExportFormatError:
        return None
    assert isinstance(meta, dict)
    assert all(isinstance(v, np.ndarray) for v in tensors.values())
    return meta, tensors


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_export_format_error(buf):
    assume(not buf.startswith(export.MAGIC))
    with pytest.raises(ExportFormatError):
        export.loads(buf)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_after_the_magic_raise_export_format_error(tail):
    loads_or_format_error(export.MAGIC + tail)


@settings(max_examples=150, deadline=None)
@given(header=st.binary(max_size=80), tail=st.binary(max_size=40))
def test_random_header_bytes_raise_export_format_error(header, tail):
    loads_or_format_error(raw_file(header, tail))


@settings(max_examples=200, deadline=None)
@given(entry=json_values, extra=json_values, tail=st.binary(max_size=64))
def test_random_json_headers_raise_export_format_error(entry, extra, tail):
    loads_or_format_error(raw_file({"tensors": {"w": entry}}, tail))
    loads_or_format_error(raw_file(extra, tail))
    loads_or_format_error(raw_file({"tensors": extra}, tail))


@FAST
@given(tensors=tensor_dicts, data=st.data())
def test_every_truncation_of_a_valid_file_is_refused(tensors, data):
    buf = export.dumps({"kind": "linear"}, tensors)
    cuts = range(len(buf)) if len(buf) < 200 else sorted(set(
        data.draw(st.lists(st.integers(0, len(buf) - 1), min_size=1, max_size=40))))
    for cut in cuts:
        with pytest.raises(ExportFormatError):
            export.loads(buf[:cut])


@FAST
@given(tensors=tensor_dicts, extra=st.binary(min_size=1, max_size=16))
def test_trailing_bytes_are_refused(tensors, extra):
    with pytest.raises(ExportFormatError, match="trailing"):
        export.loads(export.dumps({}, tensors) + extra)


@FAST
@given(tensors=tensor_dicts, data=st.data())
def test_corrupted_bytes_of_a_valid_file_never_raise_another_error(tensors, data):
    buf = bytearray(export.dumps({"kind": "linear"}, tensors))
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    loads_or_format_error(bytes(buf))


def valid_file() -> bytes:
    return export.dumps({"kind": "linear"}, {"w": np.array([0.0, 1.5, 0, 0, 0, 0, 0, 0, 0, 0])})


@pytest.mark.parametrize("buf,message", [
    (b"", "magic"),
    (b"AUTOREG", "magic"),
    (b"PK\x03\x04" + bytes(20), "magic"),
    (b"\x80\x04\x95" + bytes(20), "magic"),  # a pickle
    (b"AUTOREG\x02" + valid_file()[8:], "magic"),  # a future format version
    (export.MAGIC + struct.pack("<I", 10**6) + b"{}", "truncated"),
    (raw_file(b"{not json"), "corrupt"),
    (raw_file(b"\xff\xfe{}"), "corrupt"),
    (raw_file(b"[" * 50_000 + b"]" * 50_000), "corrupt"),
    (raw_file([1, 2]), "tensor table"),
    (raw_file({"kind": "linear"}), "tensor table"),
    (raw_file({"tensors": []}), "tensor table"),
    (raw_file({"tensors": {"w": "d"}}), "entry"),
    (raw_file({"tensors": {"w": ["d", "float64"]}}), "entry"),
    (raw_file({"tensors": {"w": ["d", "float64", [1], 1]}}, bytes(8)), "entry"),
    (raw_file({"tensors": {"w": ["z", "float64", [1]]}}, bytes(8)), "encoding"),
    (raw_file({"tensors": {"w": ["d", "object", [1]]}}, bytes(8)), "dtype"),
    (raw_file({"tensors": {"w": ["d", "float128", [1]]}}, bytes(16)), "dtype"),
    (raw_file({"tensors": {"w": ["d", "float64", [-1]]}}, bytes(8)), "shape"),
    (raw_file({"tensors": {"w": ["d", "float64", [2.0]]}}, bytes(16)), "shape"),
    (raw_file({"tensors": {"w": ["d", "uint8", [True]]}}, bytes(1)), "shape"),
    (raw_file({"tensors": {"w": ["d", "uint8", "ab"]}}, bytes(2)), "shape"),
    (raw_file({"tensors": {"w": ["d", "float64", [2]]}}, bytes(8)), "truncated"),
    (raw_file({"tensors": {"w": ["c", "uint8", [2], 3]}}, bytes(6)), "non-zero count"),
    (raw_file({"tensors": {"w": ["c", "uint8", [4], -1]}}), "non-zero count"),
    (raw_file({"tensors": {"w": ["c", "uint8", [4], "1"]}}, bytes(2)), "non-zero count"),
    (raw_file({"tensors": {"w": ["c", "uint8", [10**30], 0]}}), "corrupt"),
    (raw_file({"tensors": {"w": ["c", "uint8", [2**50], 0]}}), "too large|corrupt"),
    (raw_file({"tensors": {"w": ["c", "uint8", [4], 1]}}, bytes([7, 1])), "indices"),
    (raw_file({"tensors": {"w": ["c", "uint8", [4], 2]}}, bytes([2, 1, 5, 5])), "indices"),
    (raw_file({"tensors": {"w": ["c", "uint8", [4], 2]}}, bytes([1, 1, 5, 5])), "indices"),
    (raw_file({"tensors": {"w": ["c", "uint8", [4], 1]}}, bytes([1, 0])), "zero"),
    (raw_file({"tensors": {"w": ["b", "uint8", [4], 1]}}, bytes([0b1100_0000, 5])), "bitmap"),
    (raw_file({"tensors": {"w": ["b", "uint8", [4], 1]}}, bytes([0b1000_1000, 5])), "past the end"),
    (valid_file() + b"\x00", "trailing"),
])
def test_malformed_files_raise_export_format_error(buf, message):
    with pytest.raises(ExportFormatError, match=message):
        export.loads(buf)


def test_non_bytes_are_refused():
    with pytest.raises(ExportFormatError):
        export.loads("AUTOREG")


def test_loading_a_missing_file_or_a_directory_says_so(tmp_path):
    with pytest.raises(ExportFormatError, match="not found"):
        autoreg.load(tmp_path / "nope.autoreg")
    with pytest.raises(ExportFormatError, match="directory"):
        autoreg.load(tmp_path)
    (tmp_path / "junk.autoreg").write_bytes(b"hello world, not a model")
    with pytest.raises(ExportFormatError, match="magic"):
        autoreg.load(tmp_path / "junk.autoreg")


# -- no pickle, anywhere ------------------------------------------------------------------------
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal",
                  "shelve"}


@pytest.mark.parametrize("module", [export, model])
def test_no_pickle_on_the_loading_path(module):
    tree = ast.parse(inspect.getsource(module))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.keyword):
            assert node.arg != "allow_pickle"
        elif isinstance(node, ast.Attribute):
            # np.load(allow_pickle=...) is numpy's door to pickled objects
            assert node.attr not in ("load", "loads") or not (
                isinstance(node.value, ast.Name) and node.value.id in ("np", "numpy")), \
                ast.unparse(node)
    assert not imported & UNSAFE_MODULES


def test_loading_a_model_never_calls_pickle(tmp_path, monkeypatch):
    from sklearn.linear_model import Ridge

    from autoreg.prep import Prep

    X = np.random.default_rng(0).standard_normal((20, 3))
    prep = Prep().fit(X)
    ridge = Ridge().fit(prep.transform(X), X[:, 0])
    predictor = model.LinearPredictor.from_fit(prep, ridge.coef_, ridge.intercept_, "regression")
    predictor.save(tmp_path / "m.autoreg")

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used while loading a model")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    loaded = autoreg.load(tmp_path / "m.autoreg")
    np.testing.assert_array_equal(loaded.predict(X), predictor.predict(X))
