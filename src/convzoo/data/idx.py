"""The IDX file format of MNIST (LeCun et al.), gzip-compressed or raw.

Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then one
big-endian uint32 per dimension, then the values in C order.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file into an array; raise DataError if malformed."""
    if len(data) < 4:
        raise DataError(f"{name}: not an IDX file ({len(data)} bytes, expected a 4-byte header)")
    if data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(
            f"{name}: not an IDX file (magic number 0x{data[:4].hex()}, expected 0x0000 followed "
            f"by a type code such as 0x08 and the number of dimensions)"
        )
    dtype = np.dtype(_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{name}: truncated IDX header ({ndim} dimensions, {len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    # Python ints: a product of up to 255 uint32 dimensions must not wrap around as int64 would.
    expected = math.prod(shape) * dtype.itemsize
    body = len(data) - header
    if body != expected:
        raise DataError(
            f"{name}: IDX body has {body} bytes, expected {expected} for shape {shape}"
            + (" (the file is truncated)" if body < expected else "")
        )
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike, *, unsigned_bytes: bool = False) -> np.ndarray:
    """Read an IDX file; ``.gz`` files (or any gzip stream) are decompressed first.

    ``unsigned_bytes``: refuse any type but 0x08 (what MNIST's images and labels are): float
    images or signed labels would pass the shape checks and fail deep inside training.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read IDX file {path}: {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error, MemoryError) as e:
            raise DataError(f"{path}: corrupt or truncated gzip stream ({e})") from None
    if unsigned_bytes and len(raw) >= 3 and raw[:2] == b"\0\0" and raw[2] != 0x08:
        kind = np.dtype(_DTYPES[raw[2]]).name if raw[2] in _DTYPES else f"type 0x{raw[2]:02x}"
        raise DataError(f"{path}: IDX values are {kind} (type code 0x{raw[2]:02x}), expected "
                        "unsigned bytes (0x08) as in MNIST")
    return parse_idx(raw, name=str(path))
