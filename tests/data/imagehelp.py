"""Images made byte by byte for the tests of the one image opener (and explore's uploads)."""

from __future__ import annotations

import struct
import zlib


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (1-bit grey) with one tiny IDAT: refused on the
    header, it would take 50 MB to decode."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0")) + png_chunk(b"IEND", b""))


def png_with_pixels(width: int, height: int, payload: bytes, *, interlace: int = 0) -> bytes:
    """An 8-bit RGB PNG of width x height whose IDAT inflates to ``payload``."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(payload)) + png_chunk(b"IEND", b""))
