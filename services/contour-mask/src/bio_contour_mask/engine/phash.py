"""Perceptual image signature for the result cache: a 63-bit DCT hash plus a 16x16 thumbnail.

Both are computed from a small grey copy, so a re-encoded or slightly resized copy of an image gets the
same (or a very close) signature; :func:`same_image` decides with a Hamming distance on the hash and the
mean absolute difference of the thumbnails (the hash alone lets similar faces collide).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

HASH_MAX_DISTANCE = 8  # of 63 bits
THUMB_MAX_MAD = 6.0  # grey levels, mean over the 16x16 thumbnail
ASPECT_TOLERANCE = 0.03


@dataclass(frozen=True)
class Signature:
    phash: int
    thumb: bytes  # 256 bytes, 16x16 grey
    width: int
    height: int


def signature(gray: np.ndarray, width: int, height: int) -> Signature:
    """``gray``: any downscaled grey copy of the image (uint8 or float); width/height: the full image size."""
    g = gray.astype(np.float32)
    small = cv2.resize(g, (32, 32), interpolation=cv2.INTER_AREA)
    dct = cv2.dct(small)[:8, :8].flatten()[1:]  # low frequencies, without DC
    bits = dct > np.median(dct)
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    thumb = cv2.resize(g, (16, 16), interpolation=cv2.INTER_AREA)
    return Signature(value, np.clip(np.rint(thumb), 0, 255).astype(np.uint8).tobytes(), width, height)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def same_image(a: Signature, b: Signature) -> bool:
    if abs(a.width / a.height - b.width / b.height) > ASPECT_TOLERANCE * (a.width / a.height):
        return False
    if hamming(a.phash, b.phash) > HASH_MAX_DISTANCE:
        return False
    ta = np.frombuffer(a.thumb, np.uint8).astype(np.int16)
    tb = np.frombuffer(b.thumb, np.uint8).astype(np.int16)
    return float(np.abs(ta - tb).mean()) <= THUMB_MAX_MAD
