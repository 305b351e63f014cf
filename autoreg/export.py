"""The compact export format: a small JSON header and raw numpy tensors, no pickle.

Layout: ``MAGIC`` (8 bytes), the header length (uint32, little-endian), the header (UTF-8 JSON),
then the tensor bytes back to back. Each tensor is stored in the smallest of three encodings:

- ``d`` dense: every element;
- ``c`` coordinates: flat indices of the non-zeros (the narrowest unsigned type) and their values;
- ``b`` bitmap: one bit per element saying non-zero, then the non-zero values.

Reading needs numpy and the standard library only.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from .errors import ExportFormatError

MAGIC = b"AUTOREG\x01"
_LEN = struct.Struct("<I")
_DTYPES = ("float64", "float32", "float16", "int64", "int32", "int16", "int8",
           "uint64", "uint32", "uint16", "uint8", "bool")


def _index_dtype(size: int) -> np.dtype:
    for dt in (np.uint8, np.uint16, np.uint32):
        if size <= np.iinfo(dt).max + 1:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def encode_tensor(arr: np.ndarray) -> tuple[list, bytes]:
    """The header entry and bytes of ``arr`` in its smallest encoding."""
    arr = np.asarray(arr)
    if arr.dtype.name not in _DTYPES:
        raise ExportFormatError(f"cannot store dtype {arr.dtype}")
    arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    flat = np.ascontiguousarray(arr).reshape(-1)
    nz = np.flatnonzero(flat)
    vals = flat[nz]
    options = [("d", flat.tobytes())]
    if len(nz) < flat.size:
        idx_dt = _index_dtype(flat.size)
        options.append(("c", nz.astype(idx_dt).tobytes() + vals.tobytes()))
        options.append(("b", np.packbits(flat != 0).tobytes() + vals.tobytes()))
    enc, blob = min(options, key=lambda o: len(o[1]))
    entry = [enc, arr.dtype.name, list(arr.shape)]
    if enc != "d":
        entry.append(int(len(nz)))
    return entry, blob


def decode_tensor(entry: list, blob: memoryview) -> np.ndarray:
    enc, dtype, shape = entry[0], np.dtype(entry[1]).newbyteorder("<"), tuple(entry[2])
    size = int(np.prod(shape, dtype=np.int64))
    if enc == "d":
        out = np.frombuffer(blob, dtype=dtype, count=size)
    else:
        nnz = int(entry[3])
        if enc == "c":
            idx_dt = _index_dtype(size)
            idx = np.frombuffer(blob, dtype=idx_dt, count=nnz).astype(np.int64)
            vals = np.frombuffer(blob, dtype=dtype, count=nnz, offset=nnz * idx_dt.itemsize)
        elif enc == "b":
            nbits = (size + 7) // 8
            mask = np.unpackbits(np.frombuffer(blob, np.uint8, count=nbits), count=size)
            idx = np.flatnonzero(mask)
            vals = np.frombuffer(blob, dtype=dtype, count=nnz, offset=nbits)
        else:
            raise ExportFormatError(f"unknown tensor encoding {enc!r}")
        if len(idx) != nnz or (nnz and idx.max() >= size):
            raise ExportFormatError("corrupt sparse tensor")
        out = np.zeros(size, dtype=dtype)
        out[idx] = vals
    return out.reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def _tensor_nbytes(entry: list) -> int:
    enc, dtype, shape = entry[0], np.dtype(entry[1]), entry[2]
    size = int(np.prod(shape, dtype=np.int64))
    if enc == "d":
        return size * dtype.itemsize
    nnz = int(entry[3])
    if enc == "c":
        return nnz * (_index_dtype(size).itemsize + dtype.itemsize)
    return (size + 7) // 8 + nnz * dtype.itemsize


def dumps(meta: dict, tensors: dict[str, np.ndarray]) -> bytes:
    """Serialize a JSON-able ``meta`` dict and named tensors."""
    entries, blobs = {}, []
    for name in tensors:
        entry, blob = encode_tensor(tensors[name])
        entries[name] = entry
        blobs.append(blob)
    header = json.dumps({**meta, "tensors": entries}, separators=(",", ":"),
                        ensure_ascii=False, allow_nan=False).encode()
    return b"".join([MAGIC, _LEN.pack(len(header)), header, *blobs])


def loads(buf: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The inverse of :func:`dumps`; raises :class:`ExportFormatError` on anything else."""
    view = memoryview(buf)
    if len(view) < len(MAGIC) + _LEN.size or bytes(view[: len(MAGIC)]) != MAGIC:
        raise ExportFormatError("not an autoreg model file (bad magic bytes)")
    (hlen,) = _LEN.unpack_from(view, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    if start + hlen > len(view):
        raise ExportFormatError("truncated autoreg model file")
    try:
        meta = json.loads(bytes(view[start: start + hlen]).decode())
        entries = meta.pop("tensors")
        offset = start + hlen
        tensors = {}
        for name, entry in entries.items():
            if entry[1] not in _DTYPES:
                raise ExportFormatError(f"unknown dtype {entry[1]!r}")
            n = _tensor_nbytes(entry)
            if offset + n > len(view):
                raise ExportFormatError("truncated autoreg model file")
            tensors[name] = decode_tensor(entry, view[offset: offset + n])
            offset += n
    except ExportFormatError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ExportFormatError(f"corrupt autoreg model file: {exc}") from None
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
    return from_export(*loads(buf))
