"""Minutia Cylinder-Code local descriptors (Cappelli, Ferrara, Maltoni, IEEE TPAMI 32(12), 2010).

Every minutia gets a cylinder: a disc of radius R centred on it and turned with its direction, cut into
NS x NS spatial cells and ND direction layers. Cell (i, j, k) sums, over the other minutiae, a Gaussian
of their distance to the cell centre times the share of a Gaussian of their direction difference that
falls in layer k, squashed by a sigmoid. Cells outside the print (the convex hull of the minutiae grown
by OMEGA) are invalid, and two cylinders are compared only on the cells valid in both, which is what
keeps the descriptor meaningful at the border of small prints, where the k-nearest-neighbour structures
lose their neighbours.

Our cylinders are coarser than the paper's 16 x 16 x 6 (8 x 8 x 6, cells 17.5 px; SIGMA_S scaled with
the cell) so that a descriptor is 384 bytes and a comparison about 100 ns: values are stored as uint8
(0-255), and the spatial validity as 64 bytes and one 64-bit mask per minutia.

Similarity of two cylinders (paper eq. 6 on the common valid cells): 1 - |ca - cb| / (|ca| + |cb|),
0 when fewer than MIN_VALID_CELLS spatial cells are common or the directions differ by more than MAX_TURN.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit
from numpy.typing import NDArray

R = 70.0
NS = 8
ND = 6
DS = 2 * R / NS
DD = 2 * math.pi / ND
SIGMA_S = 28.0 / 3.0 * 1.4  # the paper's sigma for 8.75 px cells, widened for 17.5 px cells
SIGMA_D = 2 * math.pi / 9
MU_PSI = 0.005
TAU_PSI = 400.0
OMEGA = 50.0  # px the convex hull of the minutiae is grown by
MAX_TURN = math.pi / 2
MIN_VALID_CELLS = 20  # of the 52 spatial cells inside the disc
NCELL = NS * NS * ND
TWO_PI = 2 * math.pi
HULL_REACH = 2048.0


@njit(cache=True, inline="always")
def _dphi(a: float, b: float) -> float:
    """Signed angle a - b in [-pi, pi)."""
    d = a - b
    while d < -math.pi:
        d += TWO_PI
    while d >= math.pi:
        d -= TWO_PI
    return d


@njit(cache=True)
def _direction_share(delta: float, layer_angle: float) -> float:
    """Share of a Gaussian (SIGMA_D) around delta that falls in the layer centred on layer_angle."""
    d = _dphi(delta, layer_angle)
    s = SIGMA_D * math.sqrt(2.0)
    return 0.5 * (math.erf((d + DD / 2) / s) - math.erf((d - DD / 2) / s))


@njit(cache=True, inline="always")
def _segment_d2(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    ll = dx * dx + dy * dy
    t = 0.0 if ll <= 0 else min(1.0, max(0.0, ((px - ax) * dx + (py - ay) * dy) / ll))
    ex, ey = ax + t * dx - px, ay + t * dy - py
    return ex * ex + ey * ey


@njit(cache=True)
def _in_grown_hull(px: float, py: float, hull: NDArray[np.float64]) -> bool:
    """Is (px, py) inside the convex polygon hull ((k, 2), in order) grown by OMEGA?"""
    k = hull.shape[0]
    inside = k >= 3
    sign = 0.0
    d2 = 1e300
    for e in range(k):
        ax, ay = hull[e, 0], hull[e, 1]
        bx, by = hull[(e + 1) % k, 0], hull[(e + 1) % k, 1]
        cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
        if cross != 0.0:
            if sign == 0.0:
                sign = cross
            elif cross * sign < 0:
                inside = False
        d2 = min(d2, _segment_d2(px, py, ax, ay, bx, by))
    return inside or d2 <= OMEGA * OMEGA


@njit(cache=True)
def cylinders(
    m: NDArray[np.float64], hull: NDArray[np.float64]
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint64]]:
    """Cylinders of the minutiae m ((n, >=3): x, y, theta): (n, NCELL) uint8 cell values (0 outside the
    print), (n, NS * NS) uint8 spatial validity (1 valid) and the same validity as (n,) uint64 bit masks.
    hull: the convex hull of the print's minutiae ((k, 2), in order); cells farther than OMEGA outside it
    are invalid."""
    n = m.shape[0]
    vals = np.zeros((n, NCELL), np.uint8)
    valid = np.zeros((n, NS * NS), np.uint8)
    masks = np.zeros(n, np.uint64)
    gs_norm = 1.0 / (SIGMA_S * math.sqrt(TWO_PI))
    inv2s2 = 1.0 / (2 * SIGMA_S * SIGMA_S)
    reach = R + 3 * SIGMA_S
    # per neighbour: position in the minutia's frame and its share of every direction layer
    nu = np.empty(n)
    nv = np.empty(n)
    share = np.empty((n, ND))
    for i in range(n):
        c, s = math.cos(m[i, 2]), math.sin(m[i, 2])
        cnt = 0
        for t in range(n):
            dx = m[t, 0] - m[i, 0]
            dy = m[t, 1] - m[i, 1]
            if t == i or dx * dx + dy * dy > reach * reach:
                continue
            nu[cnt] = c * dx + s * dy
            nv[cnt] = -s * dx + c * dy
            delta = _dphi(m[i, 2], m[t, 2])
            for k in range(ND):
                share[cnt, k] = _direction_share(delta, -math.pi + (k + 0.5) * DD)
            cnt += 1
        mask = np.uint64(0)
        for a in range(NS):
            u = (a - (NS - 1) / 2) * DS
            for b in range(NS):
                v = (b - (NS - 1) / 2) * DS
                if u * u + v * v > R * R:
                    continue
                if not _in_grown_hull(m[i, 0] + c * u - s * v, m[i, 1] + s * u + c * v, hull):
                    continue
                cell = a * NS + b
                mask |= np.uint64(1) << np.uint64(cell)
                valid[i, cell] = 1
                acc = np.zeros(ND)
                for q in range(cnt):
                    d2 = (nu[q] - u) ** 2 + (nv[q] - v) ** 2
                    if d2 > 9 * SIGMA_S * SIGMA_S:
                        continue
                    g = gs_norm * math.exp(-d2 * inv2s2)
                    for k in range(ND):
                        acc[k] += g * share[q, k]
                for k in range(ND):
                    z = -TAU_PSI * (acc[k] - MU_PSI)
                    psi = 0.0 if z > 12.0 else (1.0 if z < -12.0 else 1.0 / (1.0 + math.exp(z)))
                    vals[i, k * NS * NS + cell] = np.uint8(min(255, int(psi * 255.0 + 0.5)))
        masks[i] = mask
    return vals, valid, masks


@njit(cache=True, inline="always")
def _popcount(x: np.uint64) -> int:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, fastmath=True)
def similarity(
    ca: NDArray[np.uint8], oa: NDArray[np.uint8], ka: np.uint64, ta: float,
    cb: NDArray[np.uint8], ob: NDArray[np.uint8], kb: np.uint64, tb: float,
) -> float:
    """MCC similarity of one cylinder pair: values ca/cb, validity oa/ob (uint8 per spatial cell), bit
    masks ka/kb, minutia directions ta/tb. Values are 0 outside their own print, so masking A's values by
    B's validity and B's by A's restricts both to the common cells (branch-free, vector lanes).
    As in the paper, minutiae whose directions differ by more than MAX_TURN are not compared (0): a prior
    that the two prints are turned by less than that (plain captures are within about +-35 deg); measured,
    it keeps impostor alignments with large turns from gaining weight."""
    d = abs(ta - tb)
    d = min(d, TWO_PI - d)
    if d > MAX_TURN or _popcount(ka & kb) < MIN_VALID_CELLS:
        return 0.0
    na = np.float32(0.0)
    nb = np.float32(0.0)
    nd = np.float32(0.0)
    for k in range(ND):
        base = k * NS * NS
        for cell in range(NS * NS):
            x = np.float32(ca[base + cell]) * np.float32(ob[cell])
            y = np.float32(cb[base + cell]) * np.float32(oa[cell])
            na += x * x
            nb += y * y
            nd += (x - y) * (x - y)
    den = math.sqrt(na) + math.sqrt(nb)
    if den <= 0.0:
        return 0.0
    return 1.0 - math.sqrt(nd) / den


def hull(m: NDArray[np.floating]) -> NDArray[np.float64]:
    """Convex hull ((k, 2) float64, in order) of the minutiae within HULL_REACH px of their median position
    (a print is under 1,000 px at 500 dpi): absurd coordinates in an imported template do not stretch the
    print's area over empty space."""
    if len(m) == 0:
        return np.zeros((0, 2))
    centre = np.median(m[:, :2], axis=0)
    near = m[(np.abs(m[:, :2] - centre) <= HULL_REACH).all(1), :2]
    if len(near) < 3:
        return np.ascontiguousarray(near, np.float64)
    return np.ascontiguousarray(cv2.convexHull(near.astype(np.float32)).reshape(-1, 2), np.float64)


def describe(m: NDArray[np.floating]) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint64]]:
    """Cylinder values, spatial validity and validity bit masks of prepared minutiae (see cylinders)."""
    mc = np.ascontiguousarray(m, np.float64)
    return cylinders(mc, hull(mc))
