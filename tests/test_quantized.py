"""Quantized tensors in the compact export: bit-packed codes with per-channel scales."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autoreg import export
from autoreg.errors import ExportFormatError

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=12)


@st.composite
def weights(draw):
    shape = draw(shapes)
    w = draw(hnp.arrays(np.float64, shape, elements=st.floats(-5, 5, width=32)))
    zeros = draw(hnp.arrays(np.bool_, shape))
    return np.where(zeros, 0.0, w)


@settings(max_examples=150, deadline=None)
@given(w=weights(), bits=st.sampled_from(export.QUANT_BITS))
def test_round_trip_is_exactly_the_quantized_model(w, bits):
    q = export.quantize(w, bits)
    meta, tensors = export.loads(export.dumps({"k": 1}, {"w": q}))
    out = tensors["w"]
    assert out.dtype == np.float32 and out.shape == w.shape
    np.testing.assert_array_equal(out, q.dequantize())
    # Zeros stay exact zeros, so quantized weights count toward sparsity.
    assert np.all(out[w == 0] == 0)
    # Error per channel is at most half a quantization step.
    step = np.abs(w.reshape(-1, w.shape[-1])).max(axis=0) / (2 ** (bits - 1) - 1)
    err = np.abs(out.astype(np.float64) - w).reshape(-1, w.shape[-1])
    assert np.all(err <= step / 2 * (1 + 1e-5) + 1e-6)


@settings(max_examples=100, deadline=None)
@given(w=weights(), bits=st.sampled_from(export.QUANT_BITS))
def test_size_is_the_smaller_packing(w, bits):
    q = export.quantize(w, bits)
    entry, blob = export.encode_tensor(q)
    n, channels = w.size, w.shape[-1]
    nnz = int(np.count_nonzero(q.codes))
    dense = 4 * channels + (n * bits + 7) // 8
    sparse = 4 * channels + (n + 7) // 8 + (nnz * bits + 7) // 8
    assert len(blob) == min(dense, sparse) if nnz < n else len(blob) == dense
    assert entry[0] == ("qb" if len(blob) < dense else "q")


def test_four_bits_are_an_eighth_of_float32():
    w = np.random.default_rng(0).standard_normal((256, 10))
    f32 = len(export.dumps({}, {"w": w.astype(np.float32)}))
    q4 = len(export.dumps({}, {"w": export.quantize(w, 4)}))
    q2 = len(export.dumps({}, {"w": export.quantize(w, 2)}))
    assert q4 < f32 / 7 and q2 < q4


@pytest.mark.parametrize("mutate", [
    lambda e: e[:3] + [3],                # 3 bits is not a width
    lambda e: ["q", "float64"] + e[2:],   # codes dequantize to float32 only
    lambda e: e + [5],                    # wrong entry length
])
def test_bad_quantized_entries_are_refused(mutate):
    q = export.quantize(np.ones((4, 2)), 4)
    entry, blob = export.encode_tensor(q)
    with pytest.raises(ExportFormatError):
        export.decode_tensor(mutate(list(entry)), blob)


def test_out_of_range_code_is_refused():
    q = export.quantize(np.array([[1.0, -1.0], [0.5, 0.25]]), 2)
    entry, blob = export.encode_tensor(q)
    assert entry[0] == "q"
    bad = bytearray(blob)
    bad[8] = 0xFF  # every 2-bit code becomes 3, i.e. +2, beyond the 2-bit range [-1, 1]
    with pytest.raises(ExportFormatError, match="out of range"):
        export.decode_tensor(entry, bytes(bad))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64), bits=st.sampled_from(export.QUANT_BITS),
       sparse=st.booleans())
def test_random_bytes_never_escape_as_other_errors(data, bits, sparse):
    entry = ["qb", "float32", [3, 2], bits, 2] if sparse else ["q", "float32", [3, 2], bits]
    try:
        export.decode_tensor(entry, data)
    except ExportFormatError:
        pass


# -- quantized weights in model files -----------------------------------------------------------
@st.composite
def quantized_fits(draw):
    """A fitted preprocessing, quantized weights (linear, or a two-layer mlp) and raw rows."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_features = draw(st.integers(1, 8))
    n_out = draw(st.sampled_from([1, 3]))
    bits = draw(st.sampled_from(export.QUANT_BITS))
    X = rng.standard_normal((30, n_features)) * rng.uniform(0.01, 100, n_features)
    X[rng.random(X.shape) < 0.05] = np.nan  # missing values are imputed by the file
    density = draw(st.floats(0, 1))
    w = rng.standard_normal((n_features, n_out)) * (rng.random((n_features, n_out)) < density)
    mlp = draw(st.booleans())
    return X, export.quantize(w, bits), n_out, mlp, rng


@settings(max_examples=40, deadline=None)
@given(fit=quantized_fits())
def test_models_with_quantized_weights_load_back_exactly(fit):
    from autoreg.model import LinearPredictor, from_export
    from autoreg.model_mlp import MLPPredictor
    from autoreg.prep import Prep

    X, q, n_out, mlp, rng = fit
    prep = Prep().fit(X)
    task, classes = ("regression", None) if n_out == 1 else ("multiclass", ["a", "b", "c"])
    if mlp:
        q2 = export.quantize(rng.standard_normal((n_out, n_out)), q.bits)
        built = MLPPredictor.from_fit(prep, [q, q2], [rng.standard_normal(n_out),
                                                      rng.standard_normal(n_out)], task, classes)
    else:
        built = LinearPredictor.from_fit(prep, q, rng.standard_normal(n_out), task, classes)
    data = built.to_bytes()
    meta, tensors = export.loads(data)
    loaded = from_export(meta, tensors)
    assert type(loaded) is type(built) and meta == built.meta
    # Every quantized tensor is stored packed at its width and reads back as codes * scales.
    header_entries = _entries(data)
    for name, t in built.tensors.items():
        if isinstance(t, export.Quantized):
            assert header_entries[name][0] in ("q", "qb") and header_entries[name][3] == q.bits
            assert tensors[name].tobytes() == t.dequantize().tobytes()
        else:
            np.testing.assert_array_equal(tensors[name], t)
    np.testing.assert_array_equal(loaded.decision_function(X), built.decision_function(X))
    np.testing.assert_array_equal(loaded.predict(X), built.predict(X))


def _entries(data: bytes) -> dict:
    import json
    import struct

    start = len(export.MAGIC) + 4
    (hlen,) = struct.unpack("<I", data[len(export.MAGIC): start])
    return json.loads(data[start: start + hlen])["tensors"]


def test_a_saved_quantized_model_file_is_small_and_predicts_the_same(tmp_path):
    import autoreg
    from autoreg.model import LinearPredictor
    from autoreg.prep import Prep

    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 200))
    prep = Prep().fit(X)
    w = rng.standard_normal((200, 1))
    q4 = LinearPredictor.from_fit(prep, export.quantize(w, 4), np.array([0.5]), "regression")
    f32 = LinearPredictor.from_fit(prep, w, np.array([0.5]), "regression")
    size = q4.save(tmp_path / "q4.autoreg")
    assert size == (tmp_path / "q4.autoreg").stat().st_size == len(q4.to_bytes())
    # 200 4-bit codes and a scale take at most 104 bytes, where float32 weights take 800 (the
    # file adds one int8 exponent per column for the quantized model).
    assert len(export.encode_tensor(q4.tensors["w_num"])[1]) <= 4 + 100
    assert len(export.encode_tensor(f32.tensors["w_num"])[1]) == 800
    assert f32.save(tmp_path / "f32.autoreg") - size >= 800 - 104 - 200 - 20
    loaded = autoreg.load(tmp_path / "q4.autoreg")
    np.testing.assert_array_equal(loaded.predict(X), q4.predict(X))
    assert np.abs(loaded.predict(X) - f32.predict(X)).max() > 0  # it is the quantized model


@pytest.mark.parametrize("family", ["linear", "mlp"])
def test_a_loaded_quantized_model_saves_the_bytes_it_came_from(family, tmp_path):
    """``result.model(t).save`` and ``autoreg.load(f).save`` write the very file measured as
    ``size_bytes``, quantized weights still packed at their bit width."""
    import autoreg

    extra = dict(hidden="8") if family == "mlp" else {}
    result = autoreg.search("diabetes", techniques=["l2", "quantization"], families=[family],
                            n_trials=8, log_mlflow=False, storage=":memory:", **extra)
    quantized = result.trials[result.trials["quantization"].astype(bool)]
    assert len(quantized)
    for trial in quantized["trial"]:
        stored = result.model_bytes(trial)
        assert result.model(trial).to_bytes() == stored
        (tmp_path / "m.autoreg").write_bytes(stored)
        size = autoreg.load(tmp_path / "m.autoreg").save(tmp_path / "again.autoreg")
        assert size == len(stored) == result.trials.set_index("trial").loc[trial, "size_bytes"]
        assert (tmp_path / "again.autoreg").read_bytes() == stored
