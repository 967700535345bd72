"""Rotation- and translation-invariant minutiae matching (compiled with numba).

1. Local structures: every minutia is described by its K nearest neighbours, each as (distance,
   direction of the neighbour seen from the minutia relative to its own direction, direction
   difference). These numbers do not change when the print is rotated or moved.
2. Local matching: every pair (minutia of A, minutia of B) gets a similarity in [0, 1] from how many
   neighbours agree within tolerances.
3. Consolidation: the SEEDS best local pairs among the SEED_ROWS best-quality minutiae of each
   template are alignment seeds (a cheap neighbour pre-check skips hopeless pairs). For each seed, B is
   rotated and moved onto A and minutiae are paired greedily (distance and direction tolerance); the
   pairs found give a least-squares rigid refit, and the REFINE best seeds are paired again with it.
4. Score: matched^2 / (minutiae of A in the common area x minutiae of B in the common area), weighted
   by the local similarities of the matched pairs, scaled to 0-100ish. Identical templates score high,
   unrelated ones near 0.

Templates are (n, 5) float32 arrays: x, y, theta (radians, image coordinates), type, quality.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

K = 6  # neighbours per local structure
SEEDS = 6
SEED_ROWS = 24  # alignment seeds come from the best-quality minutiae of each template (templates are quality-sorted)
REFINE = 2  # seeds whose least-squares refit is paired again
DIST_TOL = 12.0  # px at 500 dpi, after alignment
ANGLE_TOL = math.pi / 6
MIN_OVERLAP = 10
TWO_PI = 2 * math.pi


@njit(cache=True, inline="always")
def _adiff(a, b):
    """Angular distance of two angles in [0, 2 pi)."""
    d = abs(a - b)
    return TWO_PI - d if d > math.pi else d


@njit(cache=True)
def local_structures(m):
    """(n, K, 3) float32 of (distance, relative position angle, relative direction); distance -1 = none."""
    n = m.shape[0]
    out = np.full((n, K, 3), -1.0, np.float32)
    d = np.empty(n, np.float64)
    for i in range(n):
        for j in range(n):
            d[j] = math.hypot(m[j, 0] - m[i, 0], m[j, 1] - m[i, 1]) if j != i else 1e18
        order = np.argsort(d)
        for k in range(min(K, n - 1)):
            j = order[k]
            out[i, k, 0] = d[j]
            out[i, k, 1] = (math.atan2(m[j, 1] - m[i, 1], m[j, 0] - m[i, 0]) - m[i, 2]) % TWO_PI
            out[i, k, 2] = (m[j, 2] - m[i, 2]) % TWO_PI
    return out


@njit(cache=True, inline="always")
def _plausible(la, i, lb, p):
    """Cheap pre-check: does one of the 2 nearest neighbours of a agree with one of the 3 nearest of b?"""
    for a in range(2):
        da = la[i, a, 0]
        if da < 0:
            return False
        tol = 6.0 + 0.12 * da
        for b in range(3):
            db = lb[p, b, 0]
            if db < 0 or db > da + tol:
                break
            if da - db > tol:
                continue
            if _adiff(la[i, a, 1], lb[p, b, 1]) <= 0.4 and _adiff(la[i, a, 2], lb[p, b, 2]) <= 0.5:
                return True
    return False


@njit(cache=True)
def _pair_similarity(la, i, lb, p):
    used = 0
    acc = 0.0
    na = 0
    nb = 0
    for b in range(K):
        if lb[p, b, 0] >= 0:
            nb += 1
    for a in range(K):
        da = la[i, a, 0]
        if da < 0:
            break
        na += 1
        tol = 6.0 + 0.12 * da
        best = -1
        best_cost = 3.0
        for b in range(K):
            db = lb[p, b, 0]
            if db < 0 or db > da + tol:
                break  # neighbours are sorted by distance
            dd = da - db
            if dd > tol or (used >> b) & 1:
                continue
            dd = abs(dd)
            e1 = _adiff(la[i, a, 1], lb[p, b, 1])
            if e1 > 0.4:
                continue
            e2 = _adiff(la[i, a, 2], lb[p, b, 2])
            if e2 > 0.5:
                continue
            cost = dd / tol + e1 / 0.4 + e2 / 0.5
            if cost < best_cost:
                best_cost = cost
                best = b
        if best >= 0:
            used |= 1 << best
            acc += 1.0 - best_cost / 3.0
    den = min(na, nb)
    if den < 3:
        return 0.0
    return acc / den


@njit(cache=True)
def _pair_up(ma, tx, ty, tt, sim, la, lb, used_b, pa, tol):
    na = ma.shape[0]
    nb = tx.shape[0]
    used_b[:] = False
    matched = 0
    wsum = 0.0
    for a in range(na):
        pa[a] = -1
        bq = -1
        bd = tol
        for q in range(nb):
            if used_b[q]:
                continue
            dx = tx[q] - ma[a, 0]
            if abs(dx) > bd:
                continue
            dy = ty[q] - ma[a, 1]
            if abs(dy) > bd:
                continue
            d = math.sqrt(dx * dx + dy * dy)
            if d < bd and _adiff(tt[q], ma[a, 2]) < ANGLE_TOL:
                bd = d
                bq = q
        if bq >= 0:
            used_b[bq] = True
            pa[a] = bq
            matched += 1
            if a < sim.shape[0] and bq < sim.shape[1]:
                w = sim[a, bq]
            elif _plausible(la, a, lb, bq):
                w = _pair_similarity(la, a, lb, bq)
            else:
                w = 0.0
            wsum += 0.2 + 0.8 * w
    return matched, wsum


@njit(cache=True, inline="always")
def _transform(mb, c, sn, ox, oy, rot, tx, ty, tt):
    """B mapped onto A: rotation rot (cos c, sin sn), then offset (ox, oy)."""
    for q in range(mb.shape[0]):
        tx[q] = c * mb[q, 0] - sn * mb[q, 1] + ox
        ty[q] = sn * mb[q, 0] + c * mb[q, 1] + oy
        tt[q] = (mb[q, 2] + rot) % TWO_PI


@njit(cache=True)
def _overlap(ma, tx, ty, na, nb):
    """Minutiae of each print inside the other's bounding box (with a margin), at least MIN_OVERLAP."""
    margin = 10.0
    minx, maxx, miny, maxy = 1e9, -1e9, 1e9, -1e9
    for q in range(nb):
        minx = min(minx, tx[q]); maxx = max(maxx, tx[q])
        miny = min(miny, ty[q]); maxy = max(maxy, ty[q])
    amin_x, amax_x, amin_y, amax_y = 1e9, -1e9, 1e9, -1e9
    for a in range(na):
        amin_x = min(amin_x, ma[a, 0]); amax_x = max(amax_x, ma[a, 0])
        amin_y = min(amin_y, ma[a, 1]); amax_y = max(amax_y, ma[a, 1])
    ova = 0
    for a in range(na):
        if minx - margin <= ma[a, 0] <= maxx + margin and miny - margin <= ma[a, 1] <= maxy + margin:
            ova += 1
    ovb = 0
    for q in range(nb):
        if amin_x - margin <= tx[q] <= amax_x + margin and amin_y - margin <= ty[q] <= amax_y + margin:
            ovb += 1
    return max(ova, MIN_OVERLAP), max(ovb, MIN_OVERLAP)


@njit(cache=True)
def match_raw(ma, la, mb, lb):
    """Returns (score, matched, overlap_a, overlap_b, weighted matches, 0)."""
    na, nb = ma.shape[0], mb.shape[0]
    res = np.zeros(6, np.float64)
    if na < 3 or nb < 3:
        return res
    ra, rb = min(na, SEED_ROWS), min(nb, SEED_ROWS)
    sim = np.zeros((ra, rb), np.float64)
    for i in range(ra):
        for p in range(rb):
            if _plausible(la, i, lb, p):
                sim[i, p] = _pair_similarity(la, i, lb, p)
    flat = sim.ravel()
    # the SEEDS most similar pairs (top-k selection; a full sort of n x m values costs more than matching)
    seeds = np.full(SEEDS, -1, np.int64)
    seed_v = np.full(SEEDS, 0.0)
    for idx in range(flat.size):
        v = flat[idx]
        if v <= seed_v[SEEDS - 1]:
            continue
        k = SEEDS - 1
        while k > 0 and seed_v[k - 1] < v:
            seed_v[k] = seed_v[k - 1]
            seeds[k] = seeds[k - 1]
            k -= 1
        seed_v[k] = v
        seeds[k] = idx
    nseeds = SEEDS
    best_score = 0.0
    used_b = np.zeros(nb, np.bool_)
    tx = np.empty(nb)
    ty = np.empty(nb)
    tt = np.empty(nb)
    pa = np.empty(na, np.int64)
    # pass 1: every seed's alignment, paired, then refitted by least squares on its pairs
    fit = np.zeros((nseeds, 4))  # rot, ox, oy, weighted pairs of pass 1
    for s in range(nseeds):
        fit[s, 3] = -1.0
        idx = seeds[s]
        if idx < 0:
            break
        i = idx // rb
        p = idx % rb
        rot = ma[i, 2] - mb[p, 2]
        c, sn = math.cos(rot), math.sin(rot)
        _transform(mb, c, sn, ma[i, 0] - (c * mb[p, 0] - sn * mb[p, 1]), ma[i, 1] - (sn * mb[p, 0] + c * mb[p, 1]),
                   rot, tx, ty, tt)
        matched, wsum = _pair_up(ma, tx, ty, tt, sim, la, lb, used_b, pa, DIST_TOL)
        if matched < 2:
            continue
        # least-squares rigid fit on the pairs found: the seed's own direction is only good to ~10 deg
        sax = say = sbx = sby = 0.0
        for a in range(na):
            if pa[a] >= 0:
                sax += ma[a, 0]; say += ma[a, 1]; sbx += mb[pa[a], 0]; sby += mb[pa[a], 1]
        sax /= matched; say /= matched; sbx /= matched; sby /= matched
        num = 0.0
        den = 0.0
        for a in range(na):
            if pa[a] >= 0:
                ax = ma[a, 0] - sax; ay = ma[a, 1] - say
                bx = mb[pa[a], 0] - sbx; by = mb[pa[a], 1] - sby
                num += bx * ay - by * ax
                den += bx * ax + by * ay
        rot = math.atan2(num, den)
        c, sn = math.cos(rot), math.sin(rot)
        fit[s, 0] = rot
        fit[s, 1] = sax - (c * sbx - sn * sby)
        fit[s, 2] = say - (sn * sbx + c * sby)
        fit[s, 3] = wsum
        if wsum > best_score:
            best_score = wsum
            res[1] = matched
            res[2], res[3] = _overlap(ma, tx, ty, na, nb)
            res[4] = wsum
    # pass 2: re-pair with a tighter tolerance after the refit, for the REFINE best seeds of pass 1
    order = np.argsort(-fit[:, 3])
    for k in range(min(REFINE, nseeds)):
        s = order[k]
        if fit[s, 3] <= 0:
            break
        rot = fit[s, 0]
        _transform(mb, math.cos(rot), math.sin(rot), fit[s, 1], fit[s, 2], rot, tx, ty, tt)
        matched, wsum = _pair_up(ma, tx, ty, tt, sim, la, lb, used_b, pa, DIST_TOL * 0.85)
        if wsum > best_score:
            best_score = wsum
            res[1] = matched
            res[2], res[3] = _overlap(ma, tx, ty, na, nb)
            res[4] = wsum
    res[0] = _final_score(res[4], res[1], res[2], res[3], na, nb)
    return res


@njit(cache=True)
def _final_score(wsum, matched, ova, ovb, na, nb):
    if matched < 3:
        return 0.0
    return 100.0 * wsum * wsum / (ova * ovb)


@njit(cache=True)
def match_many(probe, lprobe, gal_m, gal_l, offsets):
    """Scores of one probe against a gallery packed as concatenated arrays with row offsets."""
    n = offsets.shape[0] - 1
    out = np.zeros(n, np.float64)
    for g in range(n):
        a, b = offsets[g], offsets[g + 1]
        out[g] = match_raw(probe, lprobe, gal_m[a:b], gal_l[a:b])[0]
    return out


def prepare(minutiae: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minutiae sorted by quality (best first, stable) with their local structures."""
    m = np.asarray(minutiae[:, :5], np.float64)
    m = np.ascontiguousarray(m[np.argsort(-m[:, 4], kind="stable")])
    return m, local_structures(m)


def score(a: np.ndarray, b: np.ndarray) -> float:
    """Similarity of two minutiae sets ((n, 5) arrays); symmetric up to the greedy pairing."""
    ma, la = prepare(a)
    mb, lb = prepare(b)
    return float(match_raw(ma, la, mb, lb)[0])


class Gallery:
    """Templates packed for fast 1:N search (prepared once; scores against all in one compiled loop)."""

    def __init__(self, ids: list, templates: list[np.ndarray]) -> None:
        self.ids = list(ids)
        prepared = [prepare(t) for t in templates]
        self.offsets = np.zeros(len(prepared) + 1, np.int64)
        for k, (m, _) in enumerate(prepared):
            self.offsets[k + 1] = self.offsets[k] + len(m)
        self.m = np.concatenate([p[0] for p in prepared]) if prepared else np.zeros((0, 5))
        self.l = (np.concatenate([p[1] for p in prepared]) if prepared else np.zeros((0, K, 3), np.float32))

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, probe: np.ndarray) -> np.ndarray:
        if not self.ids:
            return np.zeros(0)
        m, l = prepare(probe)
        return match_many(m, l, self.m, self.l, self.offsets)
