"""Local structures of minutiae: every minutia described by its K nearest neighbours, each as (distance,
direction of the neighbour seen from the minutia relative to its own direction, direction difference),
numbers that do not change when the print is turned or moved; a branch-free pre-check and the local
similarity of two minutiae (compiled with numba; used by engine/matcher.py).

Stored feature-major with the neighbours in vector lanes ((n, 3, KP) float32).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray

K = 6  # neighbours per local structure
KP = 8  # lanes per feature row (K padded to a vector width; padding has distance -1)
TWO_PI = 2 * math.pi
_KEY_SCALE = 1 << 20  # cost steps of the greedy assignment's integer keys (3 x 2^20 x KP < 2^31)
_NO_KEY = 0x7FFFFFFF


@njit(cache=True, inline="always")
def _adiff(a: float, b: float) -> float:
    """Angular distance of two angles in [0, 2 pi)."""
    d = abs(a - b)
    return TWO_PI - d if d > math.pi else d


@njit(cache=True)
def local_structures(m: NDArray[np.float64]) -> NDArray[np.float32]:
    """(n, 3, KP) float32: rows distance, position angle of the neighbour seen from the minutia relative
    to its direction, direction difference; one lane per neighbour, nearest first; distance -1 = none."""
    n = m.shape[0]
    out = np.full((n, 3, KP), -1.0, np.float32)
    d = np.empty(n, np.float64)
    for i in range(n):
        for j in range(n):
            d[j] = math.hypot(m[j, 0] - m[i, 0], m[j, 1] - m[i, 1]) if j != i else 1e18
        order = np.argsort(d)
        for k in range(min(K, n - 1)):
            j = order[k]
            out[i, 0, k] = d[j]
            out[i, 1, k] = (math.atan2(m[j, 1] - m[i, 1], m[j, 0] - m[i, 0]) - m[i, 2]) % TWO_PI
            out[i, 2, k] = (m[j, 2] - m[i, 2]) % TWO_PI
    return out


@njit(cache=True, inline="always")
def _plausible(la: NDArray[np.float32], i: int, lb: NDArray[np.float32], p: int) -> bool:
    """Cheap pre-check: does one of the 2 nearest neighbours of a agree with one of the 3 nearest of b?"""
    for a in range(2):
        da = la[i, 0, a]
        if da < 0:
            return False
        tol = 6.0 + 0.12 * da
        for b in range(3):
            db = lb[p, 0, b]
            if db < 0 or db > da + tol:
                break
            if da - db > tol:
                continue
            if _adiff(la[i, 1, a], lb[p, 1, b]) <= 0.4 and _adiff(la[i, 2, a], lb[p, 2, b]) <= 0.5:
                return True
    return False


@njit(cache=True, fastmath=True)
def _plausible_block(la: NDArray[np.float32], ra: int, lb: NDArray[np.float32], rb: int) -> NDArray[np.bool_]:
    """_plausible for every pair of A's first ra and B's first rb minutiae, branch-free over B so that it
    compiles to vector instructions (B's neighbour features are gathered into contiguous rows first)."""
    bf = np.empty((9, rb), np.float32)
    for p in range(rb):
        for v in range(3):
            d = lb[p, 0, v]
            bf[3 * v, p] = d if d >= 0 else np.float32(1e9)
            bf[3 * v + 1, p] = lb[p, 1, v]
            bf[3 * v + 2, p] = lb[p, 2, v]
    ok = np.zeros((ra, rb), np.bool_)
    two_pi = np.float32(TWO_PI)
    for i in range(ra):
        row = ok[i]
        for u in range(2):
            da = la[i, 0, u]
            if da < 0:
                break
            tol = np.float32(6.0) + np.float32(0.12) * da
            lo = da - tol
            hi = da + tol
            a1 = la[i, 1, u]
            a2 = la[i, 2, u]
            for v in range(3):
                d_ = bf[3 * v]
                b1 = bf[3 * v + 1]
                b2 = bf[3 * v + 2]
                for p in range(rb):
                    e1 = abs(a1 - b1[p])
                    e1 = min(e1, two_pi - e1)
                    e2 = abs(a2 - b2[p])
                    e2 = min(e2, two_pi - e2)
                    row[p] |= (d_[p] >= lo) & (d_[p] <= hi) & (e1 <= np.float32(0.4)) & (e2 <= np.float32(0.5))
    return ok


@njit(cache=True, fastmath=True)
def _pair_similarity(
    la: NDArray[np.float32], i: int, lb: NDArray[np.float32], p: int, cost: NDArray[np.float32]
) -> float:
    """Local similarity of minutia i of A and p of B in [0, 1]: A's neighbours, nearest first, each take
    the unused neighbour of B with the lowest cost (distance, position angle and direction differences,
    each relative to its tolerance; within tolerance on all three), scored 1 - cost / 3, averaged over
    the smaller neighbourhood. The K x KP cost matrix is computed branch-free first (vector lanes)."""
    na = 0
    nb = 0
    for b in range(K):
        na += la[i, 0, b] >= 0
        nb += lb[p, 0, b] >= 0
    if min(na, nb) < 3:
        return 0.0
    two_pi = np.float32(TWO_PI)
    # the lane loops run to lb.shape[2] (= KP) rather than the constant: LLVM then vectorises them instead
    # of unrolling them into scalar code (4x faster), and indexing the arrays directly (no row views) keeps
    # the loads and stores visibly disjoint
    lanes = lb.shape[2]
    for a in range(na):
        da = la[i, 0, a]
        tol = np.float32(6.0) + np.float32(0.12) * da
        inv = np.float32(1.0) / tol
        a1 = la[i, 1, a]
        a2 = la[i, 2, a]
        for b in range(lanes):
            bd = lb[p, 0, b]
            dd = abs(da - bd)
            e1 = abs(a1 - lb[p, 1, b])
            e1 = min(e1, two_pi - e1)
            e2 = abs(a2 - lb[p, 2, b])
            e2 = min(e2, two_pi - e2)
            c = dd * inv + e1 * np.float32(2.5) + e2 * np.float32(2.0)
            ok = (bd >= 0) & (dd <= tol) & (e1 <= np.float32(0.4)) & (e2 <= np.float32(0.5))
            cost[a, b] = c if ok else np.float32(3.0)
    # greedy assignment: each of A's neighbours takes the unused lane of lowest cost (the first on a tie),
    # found as the minimum of integer keys (cost in 2^-20 steps, then the lane in the low 3 bits), a
    # vector reduction where the compare-and-branch loop mispredicted; costs of 3 (no match) never win
    used = np.int32(0)
    acc = 0.0
    for a in range(na):
        m = np.int32(_NO_KEY)
        for b in range(lanes):
            key = np.int32(cost[a, b] * np.float32(_KEY_SCALE)) * np.int32(KP) + np.int32(b)
            m = min(m, key if ((used >> b) & 1) == 0 else np.int32(_NO_KEY))
        if m < np.int32(3 * _KEY_SCALE * KP):
            best = m % np.int32(KP)
            used |= np.int32(1) << best
            acc += 1.0 - float(cost[a, best]) / 3.0
    return acc / min(na, nb)
