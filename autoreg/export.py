"""The compact export format: a small JSON header and raw numpy tensors, no pickle.

Layout: ``MAGIC`` (8 bytes), the header length (uint32, little-endian), the header (UTF-8 JSON),
then the tensor bytes back to back. Each tensor is stored in the smallest of three encodings:

- ``d`` dense: every element;
- ``c`` coordinates: flat indices of the non-zeros (the narrowest unsigned type) and their values;
- ``b`` bitmap: one bit per element saying non-zero, then the non-zero values.

Signed zeros are written as +0.0. Reading needs numpy and the standard library only.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

from .errors import ExportFormatError

MAGIC = b"AUTOREG\x01"
_LEN = struct.Struct("<I")
_DTYPES = ("float64", "float32", "float16", "int64", "int32", "int16", "int8",
           "uint64", "uint32", "uint16", "uint8", "bool")


def _index_dtype(size: int) -> np.dtype:
    """The narrowest little-endian unsigned type that holds every flat index below ``size``."""
    for dt in ("<u1", "<u2", "<u4"):
        if size <= np.iinfo(dt).max + 1:
            return np.dtype(dt)
    return np.dtype("<u8")


def _nonzero(flat: np.ndarray) -> np.ndarray:
    """Which elements the sparse encodings store (NaN is non-zero, -0.0 is zero)."""
    return flat != 0


def encode_tensor(arr: np.ndarray) -> tuple[list, bytes]:
    """The header entry and bytes of ``arr`` in its smallest encoding."""
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


def _parse_entry(entry) -> tuple[str, np.dtype, tuple[int, ...], int, int]:
    """``(encoding, dtype, shape, size, nnz)`` of a header entry, or ExportFormatError."""
    if not isinstance(entry, list) or len(entry) not in (3, 4):
        raise ExportFormatError(f"corrupt tensor entry {str(entry)[:60]}")
    enc, dtype, shape = entry[:3]
    if enc not in ("d", "c", "b"):
        raise ExportFormatError(f"unknown tensor encoding {str(enc)[:20]!r}")
    if len(entry) != (3 if enc == "d" else 4):
        raise ExportFormatError(f"corrupt tensor entry {str(entry)[:60]}")
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise ExportFormatError(f"unknown dtype {str(dtype)[:20]!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise ExportFormatError(f"corrupt tensor shape {str(shape)[:60]}")
    size = math.prod(shape)
    nnz = size if enc == "d" else entry[3]
    if not _is_count(nnz) or nnz > size:
        raise ExportFormatError(f"corrupt non-zero count {str(nnz)[:20]}")
    return enc, np.dtype(dtype).newbyteorder("<"), tuple(shape), size, nnz


def _tensor_nbytes(enc: str, dtype: np.dtype, size: int, nnz: int) -> int:
    if enc == "d":
        return size * dtype.itemsize
    if enc == "c":
        return nnz * (_index_dtype(size).itemsize + dtype.itemsize)
    return (size + 7) // 8 + nnz * dtype.itemsize


def decode_tensor(entry: list, blob) -> np.ndarray:
    """The array an entry and exactly its bytes stand for; ExportFormatError if they disagree."""
    enc, dtype, shape, size, nnz = _parse_entry(entry)
    blob = memoryview(blob)
    if len(blob) != _tensor_nbytes(enc, dtype, size, nnz):
        raise ExportFormatError("tensor bytes do not match the header")
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


def loads(buf: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The inverse of :func:`dumps`; raises :class:`ExportFormatError` on anything else."""
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
            enc, dtype, _, size, nnz = _parse_entry(entry)
            n = _tensor_nbytes(enc, dtype, size, nnz)
            if offset + n > len(view):
                raise ExportFormatError("truncated autoreg model file")
            tensors[name] = decode_tensor(entry, view[offset: offset + n])
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
    return from_export(*loads(buf))
