"""Image bytes for tests of the decoder and of upload endpoints: encoded arrays and crafted PNGs."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image

RNG = np.random.default_rng(20240601)


def encode(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def rgb_array(h: int = 40, w: int = 48) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def gray_array(h: int = 40, w: int = 48) -> np.ndarray:
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def bomb_png(width: int, height: int, rows: int | None = None) -> bytes:
    """A 1-bit grayscale PNG whose header claims width x height.

    ``rows=None`` compresses the full (all-zero) image: a genuine decompression bomb, tiny on disk.
    ``rows=n`` stores only n rows: the header still says width x height.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b""
    for _ in range(height if rows is None else rows):
        idat += comp.compress(row)
    idat += comp.flush()
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
