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


def assert_same(got: np.ndarray, want) -> None:
    """``got`` holds exactly the bits ``want`` stands for (a Quantized tensor: its float32
    values ``codes * scales``)."""
    want = want.dequantize() if isinstance(want, export.Quantized) else canonical(want)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert got.tobytes() == want.tobytes()


# -- strategies ---------------------------------------------------------------------------------
dtypes = st.sampled_from(DTYPES).map(np.dtype)
FLOATS = {"float16": "uint16", "float32": "uint32", "float64": "uint64"}
# Up to 2-d with long sides, or 3-d with short ones (a 24**3 tensor is slow to draw).
shapes = (hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=24)
          | hnp.array_shapes(min_dims=3, max_dims=3, min_side=0, max_side=6))


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


def _random_values(rng, dtype: np.dtype, n: int) -> np.ndarray:
    """``n`` values of ``dtype`` from uniformly random bits: for floats every bit pattern may
    come up (NaNs with any payload and sign, infinities, subnormals, -0.0)."""
    if dtype == np.bool_:
        return rng.integers(0, 2, n).astype(bool)
    bits = np.dtype(FLOATS.get(dtype.name, dtype.name))
    raw = rng.integers(0, 2 ** (8 * bits.itemsize), n, dtype=np.uint64)
    return raw.astype(bits).view(dtype)


@st.composite
def bit_pattern_arrays(draw):
    """Dense float tensors whose elements are arbitrary bit patterns."""
    dtype = np.dtype(draw(st.sampled_from(sorted(FLOATS))))
    shape = draw(shapes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return _random_values(rng, dtype, math.prod(shape)).reshape(shape)


@st.composite
def density_arrays(draw):
    """Any dtype and shape (1-d to 3-d) with a drawn fraction of non-zeros: none, all, or any
    fraction between; the non-zeros are random bit patterns (NaN payloads included)."""
    dtype = draw(dtypes)
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=40).filter(
        lambda s: math.prod(s) <= 4000))
    density = draw(st.sampled_from([0.0, 1.0]) | st.floats(0, 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    size = math.prod(shape)
    values = _random_values(rng, dtype, size)
    zero = values == 0  # 0 and -0.0: replace by a non-zero so the density is as drawn
    values[zero] = np.ones(1, dtype)[0]
    keep = rng.random(size) < density
    return np.where(keep, values, np.zeros(1, dtype)[0]).astype(dtype).reshape(shape)


@st.composite
def quantized_tensors(draw):
    """Quantized tensors made directly from codes and scales: every width, 1-d to 3-d (empty
    sides included), any density of non-zero codes, any finite float32 scales (negative,
    zero, -0.0 and subnormal too; small enough that 127 times one is a float32: up to 2**120)."""
    bits = draw(st.sampled_from(export.QUANT_BITS))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=12))
    qmax = 2 ** (bits - 1) - 1
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    density = draw(st.sampled_from([0.0, 1.0]) | st.floats(0, 1))
    codes = rng.integers(1, qmax + 1, shape) * rng.choice([-1, 1], shape)
    codes = np.where(rng.random(shape) < density, codes, 0).astype(np.int8)
    scales = draw(hnp.arrays(np.float32, shape[-1], elements=st.floats(
        -2**120, 2**120, width=32)))
    return export.Quantized(codes, scales, bits)


tensor_dicts = st.dictionaries(st.text(min_size=1, max_size=8),
                               dense_arrays() | sparse_arrays() | quantized_tensors(),
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


@FAST
@given(arr=bit_pattern_arrays())
def test_any_float_bit_pattern_round_trips_exactly(arr):
    """NaN payloads and signs, infinities and subnormals come back bit for bit; only -0.0
    becomes +0.0, as the format documents."""
    _, tensors = export.loads(export.dumps({}, {"w": arr}))
    assert_same(tensors["w"], arr)
    nan = np.isnan(arr)
    assert tensors["w"][nan].tobytes() == arr[nan].tobytes()


@FAST
@given(arr=density_arrays())
def test_tensors_of_any_density_round_trip_in_their_smallest_encoding(arr):
    buf = export.dumps({}, {"w": arr})
    _, tensors = export.loads(buf)
    assert_same(tensors["w"], arr)
    entry = header_of(buf)["tensors"]["w"]
    sizes = encoding_sizes(arr)
    assert sizes[entry[0]] == min(sizes.values())
    if not arr.size or np.count_nonzero(arr) == arr.size:
        assert entry[0] == "d"  # nothing to gain from a sparse encoding
    elif not np.count_nonzero(arr):
        assert entry[0] in ("c", "b") and entry[3] == 0


@FAST
@given(q=quantized_tensors(), meta=st.dictionaries(st.text(max_size=5).filter(
    lambda k: k != "tensors"), json_values, max_size=3))
def test_quantized_tensors_round_trip_through_dumps_and_loads(q, meta):
    buf = export.dumps(meta, {"q": q, "d": np.arange(3.0)})
    meta_back, tensors = export.loads(buf)
    assert meta_back == meta
    assert list(tensors) == ["q", "d"]
    out = tensors["q"]
    assert out.dtype == np.float32 and out.shape == q.shape
    assert out.tobytes() == q.dequantize().tobytes()
    entry = header_of(buf)["tensors"]["q"]
    assert entry[0] in ("q", "qb") and entry[3] == q.bits
    # Packed at the bit width: the codes cost bits/8 bytes each at most, plus the scales.
    n_scales = q.shape[-1]
    assert len(export.encode_tensor(q)[1]) <= 4 * n_scales + (q.codes.size * q.bits + 7) // 8


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


# -- damaged model files ------------------------------------------------------------------------
def _model_files() -> list[bytes]:
    """A linear regression over a frame with a categorical column, a quantized multiclass
    linear model and a quantized mlp: the model files a search writes."""
    import pandas as pd

    from autoreg.model_mlp import MLPPredictor
    from autoreg.prep import Prep

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.standard_normal(30), "b": rng.standard_normal(30),
                          "city": rng.choice(["oslo", "rome"], 30)})
    frame.loc[::5, "a"] = np.nan
    prep = Prep().fit(frame)
    X = rng.standard_normal((30, 4))
    prep_x = Prep().fit(X)
    w = rng.standard_normal((4, 3)) * (rng.random((4, 3)) < 0.6)
    return [
        model.LinearPredictor.from_fit(prep, rng.standard_normal((prep.n_features, 1)),
                                       np.array([0.5]), "regression").to_bytes(),
        model.LinearPredictor.from_fit(prep_x, export.quantize(w, 4), np.zeros(3), "multiclass",
                                       ["x", "y", "z"]).to_bytes(),
        MLPPredictor.from_fit(prep_x, [export.quantize(w, 8), rng.standard_normal((3, 1))],
                              [np.zeros(3), np.zeros(1)], "binary", [0, 1]).to_bytes(),
    ]


MODEL_FILES = _model_files()


def from_export_or_format_error(buf: bytes) -> None:
    """Reading a damaged model file either gives a predictor or raises ExportFormatError."""
    try:
        predictor = model.from_export(*export.loads(buf))
    except ExportFormatError:
        return
    assert hasattr(predictor, "predict")


def test_the_model_files_load():
    for buf in MODEL_FILES:
        assert model.from_export(*export.loads(buf)).n_features_used > 0


@settings(max_examples=150, deadline=None)
@given(which=st.sampled_from(range(len(MODEL_FILES))), data=st.data())
def test_damaged_model_files_raise_only_export_format_error(which, data):
    buf = bytearray(MODEL_FILES[which])
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    from_export_or_format_error(bytes(buf))
    cut = data.draw(st.integers(0, len(MODEL_FILES[which]) - 1))
    with pytest.raises(ExportFormatError):
        model.from_export(*export.loads(MODEL_FILES[which][:cut]))


@settings(max_examples=200, deadline=None)
@given(which=st.sampled_from(range(len(MODEL_FILES))), data=st.data(), value=json_values)
def test_model_headers_with_a_wrong_value_raise_only_export_format_error(which, data, value):
    """Any header field (top level, or one level down) given any JSON value."""
    meta, tensors = export.loads(MODEL_FILES[which])
    key = data.draw(st.sampled_from(sorted(meta)))
    if isinstance(meta[key], dict) and meta[key] and data.draw(st.booleans()):
        meta[key] = {**meta[key], data.draw(st.sampled_from(sorted(meta[key]))): value}
    elif isinstance(meta[key], list) and meta[key] and data.draw(st.booleans()):
        meta[key] = [value, *meta[key][1:]]
    else:
        meta[key] = value
    from_export_or_format_error(export.dumps(meta, tensors))


@settings(max_examples=150, deadline=None)
@given(which=st.sampled_from(range(len(MODEL_FILES))), data=st.data(),
       arr=dense_arrays() | quantized_tensors())
def test_model_tensors_of_the_wrong_shape_or_type_raise_only_export_format_error(which, data,
                                                                                 arr):
    meta, tensors = export.loads(MODEL_FILES[which])
    name = data.draw(st.sampled_from(sorted(tensors)))
    if data.draw(st.booleans()):
        tensors[name] = arr
    else:
        del tensors[name]
    from_export_or_format_error(export.dumps(meta, tensors))
