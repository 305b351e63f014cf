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
