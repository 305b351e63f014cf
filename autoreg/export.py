"""The compact export format: a small JSON header and raw numpy tensors, no pickle.

Layout: ``MAGIC`` (8 bytes), the header length (uint32, little-endian), the header (UTF-8 JSON),
then the tensor bytes back to back. Each tensor is stored in the smallest of three encodings:

- ``d`` dense: every element;
- ``c`` coordinates: flat indices of the non-zeros (the narrowest unsigned type) and their values;
- ``b`` bitmap: one bit per element saying non-zero, then the non-zero values.

A :class:`Quantized` tensor (integer codes at 2, 4 or 8 bits with one float32 scale per output
channel, the last axis) is stored as the smaller of

- ``q``: the scales, then every code bit-packed at its bit width;
- ``qb``: the scales, a bitmap of the non-zero codes, then those codes bit-packed;

and reads back as the float32 tensor ``codes * scales``.

Signed zeros are written as +0.0. Reading needs numpy and the standard library only.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import ExportFormatError

MAGIC = b"AUTOREG\x01"
_LEN = struct.Struct("<I")
_DTYPES = ("float64", "float32", "float16", "int64", "int32", "int16", "int8",
           "uint64", "uint32", "uint16", "uint8", "bool")


QUANT_BITS = (2, 4, 8)


class Quantized:
    """A weight tensor as signed integer codes and one float32 scale per output channel."""

    def __init__(self, codes: np.ndarray, scales: np.ndarray, bits: int):
        if bits not in QUANT_BITS:
            raise ExportFormatError(f"quantized tensors use {QUANT_BITS} bits, not {bits}")
        codes = np.asarray(codes)
        qmax = 2 ** (bits - 1) - 1
        if codes.dtype.kind not in "iu" or (codes.size and np.abs(codes).max() > qmax):
            raise ExportFormatError(f"{bits}-bit codes must be integers in [-{qmax}, {qmax}]")
        self.codes = codes.astype(np.int8)
        channels = codes.shape[-1] if codes.ndim else 1
        self.scales = np.asarray(scales, dtype=np.float32).reshape(-1)
        if self.scales.shape != (channels,) or not np.isfinite(self.scales).all():
            raise ExportFormatError(f"need {channels} finite scales, one per output channel")
        self.bits = bits

    @property
    def shape(self) -> tuple[int, ...]:
        return self.codes.shape

    def take(self, index, axis: int = 0) -> Quantized:
        """Rows (axis 0) or columns (axis 1) ``index``: the codes stay, and the per-column
        scales follow the columns kept."""
        if axis == 0:
            return Quantized(self.codes[index], self.scales, self.bits)
        return Quantized(self.codes[:, index], self.scales[index], self.bits)

    def dequantize(self) -> np.ndarray:
        """The float32 weights the codes stand for (what a loaded model computes with)."""
        return (self.codes.astype(np.float32) * self.scales).astype(np.float32)


def quantize(weights: np.ndarray, bits: int) -> Quantized:
    """Symmetric per-channel quantization along the last axis; zeros stay exactly zero."""
    if bits not in QUANT_BITS:
        raise ExportFormatError(f"quantized tensors use {QUANT_BITS} bits, not {bits}")
    w = np.asarray(weights, dtype=np.float64)
    qmax = 2 ** (bits - 1) - 1
    flat = w.reshape(-1, w.shape[-1]) if w.ndim else w.reshape(1, 1)
    peak = np.abs(flat).max(axis=0) if flat.size else np.zeros(flat.shape[-1])
    scales = (peak / qmax).astype(np.float32)
    # A channel of zeros (or so small that its scale underflows float32) keeps scale 1.
    scales = np.where(scales > 0, scales, np.float32(1.0))
    codes = np.clip(np.rint(w / scales.astype(np.float64)), -qmax, qmax).astype(np.int8)
    return Quantized(codes, scales, bits)


def _pack(values: np.ndarray, bits: int) -> bytes:
    """Unsigned values below 2**bits, ``bits`` bits each, most significant bit first."""
    if not len(values):
        return b""
    planes = np.unpackbits(values.astype(np.uint8)[:, None], axis=1)[:, 8 - bits:]
    return np.packbits(planes.reshape(-1)).tobytes()


def _unpack(blob, count: int, bits: int) -> np.ndarray:
    if not count:
        return np.zeros(0, np.uint8)
    planes = np.unpackbits(np.frombuffer(blob, np.uint8), count=count * bits).reshape(count, bits)
    padded = np.zeros((count, 8), np.uint8)
    padded[:, 8 - bits:] = planes
    return np.packbits(padded, axis=1).reshape(-1)


def _encode_quantized(q: Quantized) -> tuple[list, bytes]:
    qmax = 2 ** (q.bits - 1) - 1
    flat = q.codes.reshape(-1)
    mask = flat != 0
    scales = q.scales.astype("<f4").tobytes()
    dense = scales + _pack(flat + qmax, q.bits)
    entry = ["q", "float32", list(q.shape), q.bits]
    if mask.all():
        return entry, dense
    sparse = scales + np.packbits(mask).tobytes() + _pack(flat[mask] + qmax, q.bits)
    if len(sparse) < len(dense):
        return ["qb", "float32", list(q.shape), q.bits, int(mask.sum())], sparse
    return entry, dense


def _index_dtype(size: int) -> np.dtype:
    """The narrowest little-endian unsigned type that holds every flat index below ``size``."""
    for dt in ("<u1", "<u2", "<u4"):
        if size <= np.iinfo(dt).max + 1:
            return np.dtype(dt)
    return np.dtype("<u8")


def _nonzero(flat: np.ndarray) -> np.ndarray:
    """Which elements the sparse encodings store (NaN is non-zero, -0.0 is zero)."""
    return flat != 0


def encode_tensor(arr) -> tuple[list, bytes]:
    """The header entry and bytes of ``arr`` (an array or :class:`Quantized`), smallest first."""
    if isinstance(arr, Quantized):
        return _encode_quantized(arr)
    arr = np.asarray(arr)
    if arr.dtype.name not in _DTYPES:
        raise ExportFormatError(f"cannot store dtype {arr.dtype}")
    arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    flat = np.ascontiguousarray(arr).reshape(-1)
    mask = _nonzero(flat)
    if flat.dtype.kind == "f" and np.signbit(flat[~mask]).any():
        # -0.0 is a zero: the same weights give the same bytes whichever encoding wins.
        flat = np.where(mask, flat, flat.dtype.type(0))
    nz = np.flatnonzero(mask)
    vals = flat[nz]
    options = [("d", flat.tobytes())]
    if len(nz) < flat.size:
        idx_dt = _index_dtype(flat.size)
        options.append(("c", nz.astype(idx_dt).tobytes() + vals.tobytes()))
        options.append(("b", np.packbits(mask).tobytes() + vals.tobytes()))
    enc, blob = min(options, key=lambda o: len(o[1]))  # ties keep the simpler encoding
    entry = [enc, arr.dtype.name, list(arr.shape)]
    if enc != "d":
        entry.append(int(len(nz)))
    return entry, blob


def _is_count(value) -> bool:
    return type(value) is int and value >= 0  # JSON true/false are not counts


class _Entry(NamedTuple):
    enc: str
    dtype: np.dtype
    shape: tuple[int, ...]
    size: int
    nnz: int
    bits: int  # quantized encodings only


_LENGTHS = {"d": 3, "c": 4, "b": 4, "q": 4, "qb": 5}


def _parse_entry(entry) -> _Entry:
    """A checked header entry, or ExportFormatError."""
    if not isinstance(entry, list) or len(entry) < 3:
        raise ExportFormatError(f"corrupt tensor entry {str(entry)[:60]}")
    enc, dtype, shape = entry[:3]
    if not isinstance(enc, str) or enc not in _LENGTHS:
        raise ExportFormatError(f"unknown tensor encoding {str(enc)[:20]!r}")
    if len(entry) != _LENGTHS[enc]:
        raise ExportFormatError(f"corrupt tensor entry {str(entry)[:60]}")
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise ExportFormatError(f"unknown dtype {str(dtype)[:20]!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise ExportFormatError(f"corrupt tensor shape {str(shape)[:60]}")
    size = math.prod(shape)
    bits = 0
    if enc in ("q", "qb"):
        bits = entry[3]
        if dtype != "float32" or bits not in QUANT_BITS or type(bits) is not int:
            raise ExportFormatError(f"corrupt quantized tensor entry {str(entry)[:60]}")
    nnz = {"d": size, "c": entry[-1], "b": entry[-1], "q": size, "qb": entry[-1]}[enc]
    if not _is_count(nnz) or nnz > size:
        raise ExportFormatError(f"corrupt non-zero count {str(nnz)[:20]}")
    return _Entry(enc, np.dtype(dtype).newbyteorder("<"), tuple(shape), size, nnz, bits)


def _tensor_nbytes(e: _Entry) -> int:
    if e.enc == "d":
        return e.size * e.dtype.itemsize
    if e.enc == "c":
        return e.nnz * (_index_dtype(e.size).itemsize + e.dtype.itemsize)
    if e.enc == "b":
        return (e.size + 7) // 8 + e.nnz * e.dtype.itemsize
    scales = 4 * (e.shape[-1] if e.shape else 1)
    if e.enc == "q":
        return scales + (e.size * e.bits + 7) // 8
    return scales + (e.size + 7) // 8 + (e.nnz * e.bits + 7) // 8


def _decode_quantized(e: _Entry, blob) -> Quantized:
    channels = e.shape[-1] if e.shape else 1
    scales = np.frombuffer(blob, "<f4", count=channels).astype(np.float32)
    if not np.isfinite(scales).all():
        raise ExportFormatError("corrupt quantized tensor (a scale is not finite)")
    qmax = 2 ** (e.bits - 1) - 1
    rest = blob[4 * channels:]
    if e.enc == "q":
        codes = _unpack(rest, e.size, e.bits).astype(np.int16) - qmax
    else:
        nbits = (e.size + 7) // 8
        present = np.unpackbits(np.frombuffer(rest[:nbits], np.uint8))
        if present[e.size:].any() or int(present[: e.size].sum()) != e.nnz:
            raise ExportFormatError("corrupt quantized tensor (bitmap and count disagree)")
        vals = _unpack(rest[nbits:], e.nnz, e.bits).astype(np.int16) - qmax
        if (vals == 0).any():
            raise ExportFormatError("corrupt quantized tensor (a stored code is zero)")
        codes = np.zeros(e.size, np.int16)
        codes[np.flatnonzero(present[: e.size])] = vals
    if codes.size and np.abs(codes).max() > qmax:
        raise ExportFormatError("corrupt quantized tensor (a code is out of range)")
    return Quantized(codes.reshape(e.shape), scales, e.bits)


def decode_tensor(entry: list, blob, quantized: bool = False) -> np.ndarray:
    """The array an entry and exactly its bytes stand for; ExportFormatError if they disagree.

    A quantized tensor comes back as its float values, or with ``quantized=True`` as the
    :class:`Quantized` it was written from (so that writing it again gives the same bytes)."""
    e = _parse_entry(entry)
    enc, dtype, shape, size, nnz = e.enc, e.dtype, e.shape, e.size, e.nnz
    blob = memoryview(blob)
    if len(blob) != _tensor_nbytes(e):
        raise ExportFormatError("tensor bytes do not match the header")
    if enc in ("q", "qb"):
        q = _decode_quantized(e, blob)
        return q if quantized else q.dequantize()
    native = dtype.newbyteorder("=")
    if enc == "d":
        return np.frombuffer(blob, dtype=dtype, count=size).astype(native).reshape(shape)
    if enc == "c":
        idx_dt = _index_dtype(size)
        idx = np.frombuffer(blob, dtype=idx_dt, count=nnz).astype(np.int64)
        vals = np.frombuffer(blob, dtype=dtype, count=nnz, offset=nnz * idx_dt.itemsize)
        # The encoder writes strictly increasing indices below the size, nothing else.
        if nnz and (idx[-1] >= size or np.any(np.diff(idx) <= 0)):
            raise ExportFormatError("corrupt sparse tensor (bad indices)")
    else:
        nbits = (size + 7) // 8
        bits = np.unpackbits(np.frombuffer(blob, np.uint8, count=nbits))
        if bits[size:].any():
            raise ExportFormatError("corrupt sparse tensor (bits set past the end)")
        idx = np.flatnonzero(bits[:size])
        if len(idx) != nnz:
            raise ExportFormatError("corrupt sparse tensor (bitmap and count disagree)")
        vals = np.frombuffer(blob, dtype=dtype, count=nnz, offset=nbits)
    if not _nonzero(vals).all():
        raise ExportFormatError("corrupt sparse tensor (a stored value is zero)")
    out = np.zeros(size, dtype=native)
    out[idx] = vals
    return out.reshape(shape)


def dumps(meta: dict, tensors: dict[str, np.ndarray]) -> bytes:
    """Serialize a JSON-able ``meta`` dict and named tensors."""
    if "tensors" in meta:
        raise ExportFormatError("'tensors' is reserved in the header; rename that meta key")
    entries, blobs = {}, []
    for name, arr in tensors.items():
        if not isinstance(name, str):
            raise ExportFormatError(f"tensor names must be strings, got {name!r}")
        entry, blob = encode_tensor(arr)
        entries[name] = entry
        blobs.append(blob)
    header = json.dumps({**meta, "tensors": entries}, separators=(",", ":"),
                        ensure_ascii=False, allow_nan=False).encode()
    return b"".join([MAGIC, _LEN.pack(len(header)), header, *blobs])


def loads(buf: bytes, *, quantized: bool = False) -> tuple[dict, dict[str, np.ndarray]]:
    """The inverse of :func:`dumps`; raises :class:`ExportFormatError` on anything else.

    ``quantized=True`` gives quantized tensors as :class:`Quantized` (see
    :func:`decode_tensor`): what a predictor keeps, so that it saves the file it came from."""
    try:
        view = memoryview(buf).cast("B")
    except TypeError:
        raise ExportFormatError(f"expected bytes, got {type(buf).__name__}") from None
    if len(view) < len(MAGIC) + _LEN.size or bytes(view[: len(MAGIC)]) != MAGIC:
        raise ExportFormatError("not an autoreg model file (bad magic bytes)")
    (hlen,) = _LEN.unpack_from(view, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    if start + hlen > len(view):
        raise ExportFormatError("truncated autoreg model file")
    try:
        meta = json.loads(bytes(view[start: start + hlen]).decode("utf-8"))
        if not isinstance(meta, dict) or not isinstance(meta.get("tensors"), dict):
            raise ExportFormatError("corrupt autoreg model file: the header has no tensor table")
        entries = meta.pop("tensors")
        offset = start + hlen
        tensors = {}
        for name, entry in entries.items():
            n = _tensor_nbytes(_parse_entry(entry))
            if offset + n > len(view):
                raise ExportFormatError("truncated autoreg model file")
            tensors[name] = decode_tensor(entry, view[offset: offset + n], quantized)
            offset += n
    except ExportFormatError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
        # Bad UTF-8 or JSON, JSON nested too deep, or a shape numpy refuses.
        raise ExportFormatError(f"corrupt autoreg model file: {str(exc)[:200]}") from None
    except MemoryError:
        raise ExportFormatError("corrupt autoreg model file: a tensor is too large to load") \
            from None
    if offset != len(view):
        raise ExportFormatError("trailing bytes after the last tensor")
    return meta, tensors


def load(path) -> object:
    """Load a model file written by ``autoreg export`` as a predictor."""
    from .model import from_export

    p = Path(path)
    try:
        buf = p.read_bytes()
    except FileNotFoundError:
        raise ExportFormatError(f"model file not found: {p}") from None
    except IsADirectoryError:
        raise ExportFormatError(f"{p} is a directory, not a model file") from None
    except OSError as exc:
        raise ExportFormatError(f"cannot read model file {p}: {exc.strerror or exc}") from None
    return from_export(*loads(buf, quantized=True))
