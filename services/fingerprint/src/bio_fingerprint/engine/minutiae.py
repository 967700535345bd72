"""Minutiae from a thinned ridge skeleton: crossing number, ridge tracing, spurious-minutiae removal.

Conventions (image coordinates, origin top-left, y down): ``theta`` is atan2(dy, dx) in radians in
[0, 2 pi). A ridge ending points away from its ridge (where the ridge would continue); a bifurcation
points along its stem. Under this convention an ending and a bifurcation seen at the same place with
inverted polarity (a valley ending) point the same way, so type confusions do not flip directions.
ISO export converts to the standard's counter-clockwise angle.
"""

from __future__ import annotations

import math
from typing import cast

import cv2
import numpy as np
from numba import njit
from numpy.typing import NDArray

ENDING, BIFURCATION, OTHER = 1, 2, 0

# 8 neighbours in circular order (dy, dx)
_NY = np.array([-1, -1, 0, 1, 1, 1, 0, -1], np.int64)
_NX = np.array([0, 1, 1, 1, 0, -1, -1, -1], np.int64)


@njit(cache=True)
def _trace(skel: NDArray[np.int32], y0: int, x0: int, y1: int, x1: int, steps: int) -> tuple[int, int, int, int]:
    """Follow the skeleton from (y0, x0) through (y1, x1) for at most ``steps`` pixels.
    Returns (y, x, length, stopped_at_end): stopped_at_end is 1 when the ridge ended before ``steps``."""
    h, w = skel.shape
    py, px = y0, x0
    cy, cx = y1, x1
    hist_y = np.full(4, -1, np.int64)
    hist_x = np.full(4, -1, np.int64)
    hist_y[0], hist_x[0] = y0, x0
    n = 1
    for s in range(steps):
        best_y, best_x, count = -1, -1, 0
        for k in range(8):
            ny, nx = cy + _NY[k], cx + _NX[k]
            if ny < 0 or nx < 0 or ny >= h or nx >= w or skel[ny, nx] == 0:
                continue
            seen = False
            for q in range(4):
                if hist_y[q] == ny and hist_x[q] == nx:
                    seen = True
            if seen or (ny == py and nx == px):
                continue
            # is it adjacent to the previous pixel too (a corner of a staircase)? skip it then
            if abs(ny - py) <= 1 and abs(nx - px) <= 1:
                continue
            count += 1
            if best_y < 0 or (_NY[k] == 0 or _NX[k] == 0):  # prefer 4-neighbours
                best_y, best_x = ny, nx
        if count == 0:
            return cy, cx, s + 1, 1
        if count > 1 and s > 0:
            return cy, cx, s + 1, 2  # reached another junction
        hist_y[n % 4], hist_x[n % 4] = cy, cx
        n += 1
        py, px = cy, cx
        cy, cx = best_y, best_x
    return cy, cx, steps, 0


@njit(cache=True)
# one compiled hot loop over every skeleton pixel: splitting it costs calls per pixel
def _detect(skel: NDArray[np.int32], valid: NDArray[np.int32], steps: int) -> NDArray[np.float64]:  # noqa: C901
    h, w = skel.shape
    out = np.zeros((4096, 6), np.float64)  # x, y, theta, type, trace quality flag, unused
    m = 0
    by = np.zeros(3, np.int64)
    bx = np.zeros(3, np.int64)
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            if skel[y, x] == 0 or valid[y, x] == 0:
                continue
            cn = 0
            for k in range(8):
                a = skel[y + _NY[k], x + _NX[k]]
                b = skel[y + _NY[(k + 1) % 8], x + _NX[(k + 1) % 8]]
                cn += 1 if (a > 0) != (b > 0) else 0
            cn //= 2
            if cn != 1 and cn != 3:
                continue
            # one start pixel per branch: first pixel of each run of ones in circular order
            nb = 0
            for k in range(8):
                if skel[y + _NY[k], x + _NX[k]] and not skel[y + _NY[(k + 7) % 8], x + _NX[(k + 7) % 8]]:
                    if nb < 3:
                        by[nb] = y + _NY[k]
                        bx[nb] = x + _NX[k]
                    nb += 1
            if cn == 1 and nb == 1:
                ey, ex, length, ended = _trace(skel, y, x, by[0], bx[0], steps)
                if length < steps and ended == 1:
                    continue  # a short isolated segment (island) or spur: not a minutia
                theta = math.atan2(y - ey, x - ex)
                flag = 1.0
            elif cn == 3 and nb == 3:
                vx = np.zeros(3)
                vy = np.zeros(3)
                short = 0
                for b in range(3):
                    ey, ex, length, ended = _trace(skel, y, x, by[b], bx[b], steps)
                    if length < steps // 2 and ended == 1:
                        short += 1
                    vx[b] = ex - x
                    vy[b] = ey - y
                if short > 0:
                    continue  # a spur on a ridge
                ang = np.zeros(3)
                for b in range(3):
                    ang[b] = math.atan2(vy[b], vx[b])
                best, best_gap = 0, -1.0
                for b in range(3):
                    gap = 10.0
                    for c in range(3):
                        if c != b:
                            d = abs(ang[b] - ang[c]) % (2 * math.pi)
                            d = min(d, 2 * math.pi - d)
                            gap = min(gap, d)
                    if gap > best_gap:
                        best_gap, best = gap, b
                theta = ang[best]
                flag = 2.0
            else:
                continue
            if m >= out.shape[0]:
                return out[:m]
            out[m, 0] = x
            out[m, 1] = y
            out[m, 2] = theta % (2 * math.pi)
            out[m, 3] = ENDING if cn == 1 else BIFURCATION
            out[m, 4] = flag
            m += 1
    return out[:m]


def _angle_diff(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    d = np.abs(a - b) % (2 * np.pi)
    return np.minimum(d, 2 * np.pi - d)


def coherence_map(gray: np.ndarray, sigma: float = 6.0) -> np.ndarray:
    """Orientation coherence (0 = no dominant direction, 1 = clean parallel ridges)."""
    g = gray.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    gxx = cv2.GaussianBlur(gx * gx, (0, 0), sigma)
    gyy = cv2.GaussianBlur(gy * gy, (0, 0), sigma)
    gxy = cv2.GaussianBlur(gx * gy, (0, 0), sigma)
    num = np.sqrt((gxx - gyy) ** 2 + 4 * gxy ** 2)
    return cast(np.ndarray, num / (gxx + gyy + 1e-6))  # cv2's stubs type the blurs loosely


def extract_minutiae(skeleton: np.ndarray, mask: np.ndarray, gray: np.ndarray, period: float = 9.0,
                     max_minutiae: int = 80) -> np.ndarray:
    """Minutiae as an (n, 5) float32 array: x, y, theta, type, quality (0-100), best quality first."""
    period = float(np.clip(period, 5, 16))
    dist = cv2.distanceTransform((mask > 0).astype(np.uint8), cv2.DIST_L2, 5)
    border = max(6.0, period)
    valid = (dist > border).astype(np.uint8)
    steps = int(round(1.5 * period))
    raw = _detect(skeleton.astype(np.int32), valid.astype(np.int32), steps)
    if len(raw) == 0:
        return np.zeros((0, 5), np.float32)
    x, y, th, ty = raw[:, 0], raw[:, 1], raw[:, 2], raw[:, 3]
    keep = np.ones(len(raw), bool)
    dx = x[:, None] - x[None, :]
    dy = y[:, None] - y[None, :]
    d = np.hypot(dx, dy)
    np.fill_diagonal(d, np.inf)
    # clusters: minutiae closer than ~ half a ridge period are bridges, holes or spurs
    close = d < 0.75 * period
    keep &= ~close.any(axis=1)
    # broken ridges: two endings facing each other across a short gap
    ends = ty == ENDING
    facing = (d < 1.6 * period) & ends[:, None] & ends[None, :] & (_angle_diff(th[:, None], th[None, :]) > 2.4)
    keep &= ~facing.any(axis=1)
    # a bifurcation next to an ending, roughly aligned: a ridge touching its neighbour
    mixed = (d < 1.2 * period) & (ty[:, None] != ty[None, :])
    keep &= ~mixed.any(axis=1)
    x, y, th, ty = x[keep], y[keep], th[keep], ty[keep]
    coh = coherence_map(gray)
    yi, xi = y.astype(int), x.astype(int)
    c = np.clip((coh[yi, xi] - 0.2) / 0.6, 0, 1)
    b = np.clip((dist[yi, xi] - border) / (3 * period), 0, 1)
    quality = np.round(100 * (0.6 * c + 0.4 * b)).clip(1, 100)
    order = np.lexsort((x, y, -quality))[:max_minutiae]  # deterministic: quality, then position
    out = np.stack([x, y, th, ty, quality], axis=1)[order]
    return out.astype(np.float32)
