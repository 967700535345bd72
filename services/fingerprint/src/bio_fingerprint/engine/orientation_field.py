"""A coarse ridge-orientation field stored beside the minutiae, and its agreement under an alignment.

Small prints share few minutiae, so a minutiae score rests on little evidence; the ridge flow of the
common area is evidence of its own. The field is pyfing's GBFOE orientation (gradient-based, smooth)
averaged in doubled angles over BLOCK x BLOCK cells at 500 dpi and quantised to whole degrees in the
matcher's convention (image coordinates, y down, like the minutiae directions; ridge orientation in
[0, 180)). A cell less than 3/4 inside the print's foreground is left out.

Encoding (one flat uint8 array, also the bytes stored with a template): BLOCK, rows (2 bytes, big
endian), columns (2 bytes), then rows x columns cells, each 0-179 degrees or OUTSIDE. An empty array
means no field (a template imported without one).

The matcher (engine/matcher.py) maps every cell of B by the alignment its minutiae pairing found and
compares its orientation with A's cell there: the agreement is the mean of cos(2 x difference) over the
cells inside both prints (1 for identical flow, about 0.5 for unrelated fingers' flow).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray

BLOCK = 16  # px at 500 dpi
OUTSIDE = 255
HEADER = 5
MIN_FOREGROUND = 0.75  # share of a cell inside the print's mask for the cell to count
U8 = NDArray[np.uint8]
EMPTY: U8 = np.zeros(0, np.uint8)


def from_orientation(orientation: np.ndarray, mask: np.ndarray) -> U8:
    """The encoded field of a per-pixel orientation map (radians, pyfing's counter-clockwise convention,
    as pyfing.orientation_field_estimation returns it) and the foreground mask (non-zero inside)."""
    h, w = orientation.shape
    rows, cols = h // BLOCK, w // BLOCK
    if rows == 0 or cols == 0:
        return EMPTY
    o = np.asarray(orientation[:rows * BLOCK, :cols * BLOCK], np.float64)
    c2 = np.cos(2 * o).reshape(rows, BLOCK, cols, BLOCK).mean(axis=(1, 3))
    s2 = np.sin(2 * o).reshape(rows, BLOCK, cols, BLOCK).mean(axis=(1, 3))
    inside = (mask[:rows * BLOCK, :cols * BLOCK] > 0).reshape(rows, BLOCK, cols, BLOCK).mean(axis=(1, 3))
    # doubled-angle mean, then into image coordinates (y down): the sign of the angle flips
    deg = np.rad2deg((-0.5 * np.arctan2(s2, c2)) % np.pi)
    cells = np.where(inside >= MIN_FOREGROUND, np.round(deg).astype(np.int64) % 180, OUTSIDE).astype(np.uint8)
    header = np.array([BLOCK, rows >> 8, rows & 0xFF, cols >> 8, cols & 0xFF], np.uint8)
    return np.concatenate([header, cells.ravel()])


def estimate(gray: np.ndarray, mask: np.ndarray) -> U8:
    """The encoded field of a normalised 500 dpi print (engine/enhance.Enhanced.gray) and its foreground
    mask: GBFOE whatever enhancement preset made the ridges, so that every template's field is alike."""
    from bio_fingerprint.engine.enhance import orientation_map

    if not mask.any():
        return EMPTY
    return from_orientation(orientation_map(gray, mask), mask)


def validate(field: np.ndarray) -> U8:
    """``field`` as a checked encoded field (ValueError when the header and the size disagree, or a cell is
    not an angle or OUTSIDE)."""
    f = np.ascontiguousarray(field, np.uint8).ravel()
    if f.size == 0:
        return EMPTY
    if f.size < HEADER or f[0] == 0:
        raise ValueError("orientation field: header missing or block size 0")
    rows, cols = (int(f[1]) << 8) | int(f[2]), (int(f[3]) << 8) | int(f[4])
    if rows * cols != f.size - HEADER:
        raise ValueError(f"orientation field: {rows} x {cols} cells declared, {f.size - HEADER} given")
    cells = f[HEADER:]
    if ((cells >= 180) & (cells != OUTSIDE)).any():
        raise ValueError("orientation field: a cell is neither 0-179 degrees nor outside the print")
    return f


def scaled(field: np.ndarray, dpi: int) -> U8:
    """The field of a template of ``dpi`` as the matcher reads it (500 dpi cells): a field is only made at
    500 dpi (engine/pipeline.py works at 500 dpi), so one declared at another resolution is dropped."""
    return field if dpi in (0, 500) else EMPTY


# cos and sin of twice a whole-degree difference of two cells (index: difference mod 180)
_COS2 = np.cos(2 * np.deg2rad(np.arange(180)))
_SIN2 = np.sin(2 * np.deg2rad(np.arange(180)))


@njit(cache=True)
def agreement(fa: U8, fb: U8, rot: float, ox: float, oy: float) -> tuple[int, float]:
    """(cells compared, mean cos(2 x orientation difference)) of field B mapped onto field A by the rigid
    alignment x' = cos(rot) x - sin(rot) y + ox (the matcher's, B onto A); (0, 0) without both fields.
    cos(2 (b + rot - a)) is summed as cos(2 (b - a)) cos(2 rot) - sin(2 (b - a)) sin(2 rot): the cells'
    whole-degree differences come from a table."""
    if fa.shape[0] < HEADER or fb.shape[0] < HEADER:
        return 0, 0.0
    ba, bb = float(fa[0]), float(fb[0])
    ra, ca = (int(fa[1]) << 8) | int(fa[2]), (int(fa[3]) << 8) | int(fa[4])
    rb, cb = (int(fb[1]) << 8) | int(fb[2]), (int(fb[3]) << 8) | int(fb[4])
    c, s = math.cos(rot), math.sin(rot)
    n = 0
    sum_c = 0.0
    sum_s = 0.0
    for by in range(rb):
        for bx in range(cb):
            vb = fb[HEADER + by * cb + bx]
            if vb == OUTSIDE:
                continue
            x = (bx + 0.5) * bb
            y = (by + 0.5) * bb
            ix = int(math.floor((c * x - s * y + ox) / ba))
            iy = int(math.floor((s * x + c * y + oy) / ba))
            if ix < 0 or iy < 0 or ix >= ca or iy >= ra:
                continue
            va = fa[HEADER + iy * ca + ix]
            if va == OUTSIDE:
                continue
            d = (int(vb) - int(va)) % 180
            sum_c += _COS2[d]
            sum_s += _SIN2[d]
            n += 1
    if n == 0:
        return 0, 0.0
    return n, (sum_c * math.cos(2.0 * rot) - sum_s * math.sin(2.0 * rot)) / n
