"""IDX files (the MNIST format) of unsigned 8-bit images, plain or gzip-compressed.

Layout: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, then each
dimension as a big-endian uint32, then the values in C order.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from neuralcodec.errors import InputError
from neuralcodec.fileio import atomic_write_bytes, read_bytes_limited

_UBYTE = 0x08


def is_idx_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is named like an IDX file (``*-ubyte``, ``*.idx``, optionally ``.gz``)."""
    name = os.fspath(path).lower()
    name = name[:-3] if name.endswith(".gz") else name
    return name.endswith("-ubyte") or name.endswith(".idx")


def parse_idx(data: bytes, max_values: int = 1 << 31) -> np.ndarray:
    """The uint8 array stored in IDX ``data`` (gzip-compressed or not)."""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, limit=max_values + 4 + 4 * 255)
    if len(data) < 4 or data[:2] != b"\0\0":
        raise InputError("not an IDX file (it must start with two zero bytes)")
    if data[2] != _UBYTE:
        raise InputError(f"IDX type 0x{data[2]:02x} is not supported (only unsigned bytes, 0x08)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise InputError("truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(shape, dtype=object))
    if count > max_values:
        raise InputError(f"IDX file declares {count} values, more than the limit of {max_values}")
    if len(data) != header + count:
        raise InputError(f"IDX file declares shape {shape} ({count} bytes) but holds {len(data) - header} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompressed gzip ``data``, refusing more than ``limit`` bytes (no decompression bombs)."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InputError(f"corrupt gzip data: {exc}") from None
    if len(out) > limit:
        raise InputError(f"gzip data expands beyond {limit} bytes")
    if not inflater.eof:
        raise InputError("truncated gzip data")
    return out


def read_idx(path: str | os.PathLike[str], max_bytes: int = 1 << 31) -> np.ndarray:
    """The uint8 array in IDX file ``path``."""
    return parse_idx(read_bytes_limited(path, max_bytes), max_values=max_bytes)


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array."""
    a = np.ascontiguousarray(array)
    if a.dtype != np.uint8 or not 1 <= a.ndim <= 255:
        raise InputError(f"IDX output needs a uint8 array with 1..255 dimensions, got {a.dtype} {a.shape}")
    return b"\0\0" + bytes([_UBYTE, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in .gz), atomically."""
    data = idx_bytes(array)
    if os.fspath(path).lower().endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)
