"""Rotation- and translation-invariant minutiae matching (compiled with numba).

1. Local structures (engine/local_structures.py): every minutia is described by its K nearest
   neighbours, each as (distance, direction of the neighbour seen from the minutia relative to its own
   direction, direction difference). These numbers do not change when the print is rotated or moved.
2. Local matching: every pair (minutia of A, minutia of B) gets a similarity in [0, 1] from how many
   neighbours agree within tolerances. Paired minutiae are also compared by their Minutia Cylinder-Code
   descriptors (engine/mcc.py), which only look at the cells inside both prints and so stay informative at
   the border of small prints; a pair's weight mixes both similarities.
3. Consolidation: the SEEDS best local pairs among the SEED_ROWS best-quality minutiae of each
   template are alignment seeds (a cheap neighbour pre-check skips hopeless pairs). For each seed, B is
   rotated and moved onto A and minutiae are paired greedily (distance and direction tolerance); the
   pairs found give a least-squares rigid refit, and the REFINE best seeds are paired again with it.
4. Score: (sum of the matched pairs' weights)^2 / (minutiae of A in the common area x minutiae of B in
   the common area, at least MIN_OVERLAP each), scaled to 0-100ish. Identical templates score high,
   unrelated ones near 0. A minutia its extractor is less sure of (quality under RELIABLE_QUALITY) counts
   UNRELIABLE_WEIGHT in the common-area counts: left unmatched, it costs less than a certain one.
5. Ridge flow: the orientation fields of the two templates (engine/orientation_field.py) are compared
   under the best pairing's alignment, and the score is multiplied by field_factor of their agreement: a
   pairing whose common area's ridges run elsewhere than its minutiae say loses most of its score. Few
   common cells are little evidence, so the agreement is pulled towards FIELD_PRIOR by FIELD_PRIOR_CELLS
   pseudo-cells; a template without a field (imported from another vendor) gives the prior's factor.

Templates are (n, 5) float32 arrays: x, y, theta (radians, image coordinates), type, quality, and an
optional encoded orientation field (uint8, engine/orientation_field.py).

numba's cache tracks each file on its own: after changing a compiled function of local_structures.py or
mcc.py, touch this file so that match_raw, which inlines them, is compiled again.

Speed (about 27-33 us per comparison on one core on FVC2002 / pyfnprint prints): the local-structure block
is tested branch-free over B's minutiae (vector instructions), a local similarity is vector code over
the neighbour lanes (engine/local_structures.py), local similarities outside the seed rows are computed
only when the pairing meets them and then cached, B's aligned minutiae are sorted into x columns so that
each minutia of A searches 3 of them, and the inner loops avoid unpredictable branches. MCC similarities
are computed only for the pairs the pairing meets (cached), about 100 ns each.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
from numba import njit
from numpy.typing import NDArray

from bio_fingerprint.engine.local_structures import (
    KP,
    TWO_PI,
    K,
    _pair_similarity,
    _plausible,
    _plausible_block,
    local_structures,
)
from bio_fingerprint.engine.mcc import NCELL, NS, describe
from bio_fingerprint.engine.mcc import similarity as mcc_similarity
from bio_fingerprint.engine.orientation_field import EMPTY as NO_FIELD
from bio_fingerprint.engine.orientation_field import agreement
from bio_fingerprint.engine.template import RELIABLE_QUALITY

SEEDS = 6
SEED_ROWS = 24  # alignment seeds come from the best-quality minutiae of each template (templates are quality-sorted)
REFINE = 2  # seeds whose least-squares refit is paired again
DIST_TOL = 12.0  # px at 500 dpi, after alignment
ANGLE_TOL = math.pi / 6
# floor of the common-area minutiae counts in the score's denominator: 10 divided small prints' few common
# minutiae by more than they have (a genuine pair with 6 common minutiae, all matched, scored 36 % of an
# identical pair). 5 (of 10, 7, 5, 3) was chosen on the seed-1 small / tiny sets of DB2_B and pyfnprint
# (5 and 7 tie), DB1_B's (5 best) and bench-decisions on the full sets (3 breaks a held-out decision).
MIN_OVERLAP = 5
MAX_COLUMNS = 1024  # pairing grid columns (DIST_TOL wide: 12,288 px)
# MCC similarities under MCC_FLOOR are what unrelated minutiae reach (measured); the weight of a pair is
# MCC_WEIGHT x the rescaled MCC similarity + the rest x the neighbour similarity, with no floor for a pair
# whose neighbourhoods disagree. Chosen leaving one database family out (see bio_fingerprint/bench.py).
MCC_FLOOR = 0.5
MCC_WEIGHT = 0.5
# LEADER keeps minutiae down to confidence 0.25 (engine/enhance.py); those under template.RELIABLE_QUALITY
# (pyfing's own detection threshold, not tuned here) are more often spurious, and an unmatched one counted in full pulls a
# genuine score down. 0.5 (of 1, 0.5, 0.25, 0) was chosen with LEADER's threshold leaving one family out
# (bio_fingerprint/bench_threshold.py).
UNRELIABLE_WEIGHT = 0.5
# field_factor: 0 at an agreement of FIELD_FLOOR (unrelated fingers' flow averages about 0.5), 1 from
# FIELD_FULL (genuine pairs' median is 0.95-0.99), linear between; the agreement is first shrunk towards
# FIELD_PRIOR with FIELD_PRIOR_CELLS pseudo-cells. Chosen on the tuning seeds' (1, 3, 4) small / tiny
# sets and the full sets leaving one database family out (floors 0, 0.3, 0.5; full 0.8-0.95; powers 0.5,
# 1, 2; 0, 10, 30 pseudo-cells): two folds and all families together chose these, the DB1_B fold
# (0.3, 0.95, power 2); bench figures in README.md.
FIELD_FLOOR = 0.5
FIELD_FULL = 0.95
FIELD_PRIOR = 0.8
FIELD_PRIOR_CELLS = 30.0

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]
U64 = NDArray[np.uint64]
I64 = NDArray[np.int64]
Cylinders = tuple[U8, U8, U64]  # cylinder values, spatial validity, validity bit masks (engine/mcc.py)


@njit(cache=True)
def field_factor(cells: float, mean: float) -> float:
    """The score's multiplier for an orientation agreement ``mean`` over ``cells`` common cells."""
    m = (cells * mean + FIELD_PRIOR_CELLS * FIELD_PRIOR) / (cells + FIELD_PRIOR_CELLS)
    return min(max((m - FIELD_FLOOR) / (FIELD_FULL - FIELD_FLOOR), 0.0), 1.0)


@njit(cache=True)
def _align(mb: F64, c: float, sn: float, ox: float, oy: float, rot: float, x0: float, start: I64, tx: F64, ty: F64,
           tt: F64, sx: F64, sy: F64, st: F64, sq: I64) -> None:
    """B mapped onto A (rotation rot with cos c, sin sn, then offset ox, oy) into tx/ty/tt, and the same
    points sorted into x columns DIST_TOL wide (sx/sy/st with their index sq; column k holds
    start[k]:start[k + 1]) so that pairing searches 3 columns instead of every minutia."""
    nb = mb.shape[0]
    nbk = start.shape[0] - 1
    start[:] = 0
    for q in range(nb):
        x = c * mb[q, 0] - sn * mb[q, 1] + ox
        tx[q] = x
        ty[q] = sn * mb[q, 0] + c * mb[q, 1] + oy
        t = mb[q, 2] + rot
        if t >= TWO_PI:
            t -= TWO_PI
        elif t < 0.0:
            t += TWO_PI
        tt[q] = t
        k = min(max(int((x - x0) / DIST_TOL), 0), nbk - 1)
        start[k + 1] += 1
    for k in range(nbk):
        start[k + 1] += start[k]
    for q in range(nb):
        k = min(max(int((tx[q] - x0) / DIST_TOL), 0), nbk - 1)
        j = start[k]
        start[k] += 1
        sx[j] = tx[q]
        sy[j] = ty[q]
        st[j] = tt[q]
        sq[j] = q
    # the scatter advanced every start[k] to the next column's start: shift back
    for k in range(nbk, 0, -1):
        start[k] = start[k - 1]
    start[0] = 0


@njit(cache=True)
def _pair_up(ma: F64, mb: F64, cola: I64, sx: F64, sy: F64, st: F64, sq: I64, start: I64, sim: F64, wt: F64,
             la: F32, lb: F32, ta: Cylinders, tb: Cylinders, used: NDArray[np.bool_], pa: I64, tol: float,
             cost: F32) -> tuple[int, float]:
    """Greedy pairing: each minutia of A (in quality order) takes the nearest unused minutia of B within
    tol px and ANGLE_TOL (B aligned and sorted into columns by _align). A pair's weight mixes the
    neighbour similarity (cached in sim) with the MCC one (ta, tb: cylinder values, validity, masks),
    cached in wt."""
    na = ma.shape[0]
    nbk = start.shape[0] - 1
    used[:] = False
    matched = 0
    wsum = 0.0
    tol2 = tol * tol
    for a in range(na):
        pa[a] = -1
        bj = -1
        bd2 = tol2
        ax = ma[a, 0]
        ay = ma[a, 1]
        at = ma[a, 2]
        k = cola[a]
        # one rarely taken branch per candidate (the distance tests of the straightforward loop are
        # unpredictable and cost more than the arithmetic)
        for j in range(start[max(k - 1, 0)], start[min(k + 2, nbk)]):
            dx = sx[j] - ax
            dy = sy[j] - ay
            d2 = dx * dx + dy * dy
            e = abs(st[j] - at)
            e = min(e, TWO_PI - e)
            if d2 < bd2 and e < ANGLE_TOL and not used[j]:
                bd2 = d2
                bj = j
        if bj >= 0:
            used[bj] = True
            bq = sq[bj]
            pa[a] = bq
            matched += 1
            w = wt[a, bq]
            if w < 0:
                k = sim[a, bq]
                if k < 0:
                    k = _pair_similarity(la, a, lb, bq, cost) if _plausible(la, a, lb, bq) else 0.0
                    sim[a, bq] = k
                c = mcc_similarity(ta[0][a], ta[1][a], ta[2][a], ma[a, 2], tb[0][bq], tb[1][bq], tb[2][bq], mb[bq, 2])
                w = (1.0 - MCC_WEIGHT) * k + MCC_WEIGHT * max(0.0, (c - MCC_FLOOR) / (1.0 - MCC_FLOOR))
                wt[a, bq] = w
            wsum += w
    return matched, wsum


@njit(cache=True)
def _overlap(ma: F64, mb: F64, tx: F64, ty: F64, na: int, nb: int) -> tuple[float, float]:
    """Minutiae of each print inside the other's bounding box (with a margin), each counted with its weight
    (column 5, see prepare), at least MIN_OVERLAP."""
    margin = 10.0
    minx, maxx, miny, maxy = 1e9, -1e9, 1e9, -1e9
    for q in range(nb):
        minx = min(minx, tx[q])
        maxx = max(maxx, tx[q])
        miny = min(miny, ty[q])
        maxy = max(maxy, ty[q])
    amin_x, amax_x, amin_y, amax_y = 1e9, -1e9, 1e9, -1e9
    for a in range(na):
        amin_x = min(amin_x, ma[a, 0])
        amax_x = max(amax_x, ma[a, 0])
        amin_y = min(amin_y, ma[a, 1])
        amax_y = max(amax_y, ma[a, 1])
    ova = 0.0
    for a in range(na):
        if minx - margin <= ma[a, 0] <= maxx + margin and miny - margin <= ma[a, 1] <= maxy + margin:
            ova += ma[a, 5]
    ovb = 0.0
    for q in range(nb):
        if amin_x - margin <= tx[q] <= amax_x + margin and amin_y - margin <= ty[q] <= amax_y + margin:
            ovb += mb[q, 5]
    return max(ova, MIN_OVERLAP), max(ovb, MIN_OVERLAP)


@njit(cache=True)
# one compiled hot loop (seeds, alignment, pairing, refit): splitting it costs calls per comparison
def match_raw(ma: F64, la: F32, ca: U8, oa: U8, ka: U64, fa: U8,  # noqa: C901, PLR0915
              mb: F64, lb: F32, cb: U8, ob: U8, kb: U64, fb: U8) -> F64:
    """Returns (score, matched, overlap_a, overlap_b, weighted matches, rotation, x offset, y offset,
    minutiae score, common field cells, field agreement) of prepared templates A and B (minutiae, local
    structures, cylinder values, cylinder validity, validity masks, orientation field; see prepare):
    rotation and offsets map B onto A in the best pairing (x' = cos r x - sin r y + ox); the score is the
    minutiae score times field_factor."""
    na, nb = ma.shape[0], mb.shape[0]
    res = np.zeros(11, np.float64)
    if na < 3 or nb < 3:
        return res
    ra, rb = min(na, SEED_ROWS), min(nb, SEED_ROWS)
    # local similarities: computed for the seed rows now, for other pairs when the pairing meets them (-1)
    sim = np.full((na, nb), -1.0)
    wt = np.full((na, nb), -1.0)
    ta = (ca, oa, ka)
    tb = (cb, ob, kb)
    ok = _plausible_block(la, ra, lb, rb)
    cost = np.empty((K, KP), np.float32)
    for i in range(ra):
        for p in range(rb):
            sim[i, p] = _pair_similarity(la, i, lb, p, cost) if ok[i, p] else 0.0
    # the SEEDS most similar pairs (top-k selection; a full sort of n x m values costs more than matching)
    seeds = np.full(SEEDS, -1, np.int64)
    seed_v = np.full(SEEDS, 0.0)
    for idx in range(ra * rb):
        v = sim[idx // rb, idx % rb]
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
    # x columns DIST_TOL wide over A's extent (B's minutiae outside it land in the edge columns, farther
    # than DIST_TOL from any of A's)
    x0 = 1e18
    x1 = -1e18
    for a in range(na):
        x0 = min(x0, ma[a, 0])
        x1 = max(x1, ma[a, 0])
    x0 -= DIST_TOL
    # capped, so that absurd coordinates cannot ask for a huge grid: minutiae of A and B beyond the last
    # column share it, and searching it still finds every pair (just not as fast)
    nbk = min(int((x1 + DIST_TOL - x0) / DIST_TOL) + 2, MAX_COLUMNS)
    start = np.zeros(nbk + 1, np.int64)
    cola = np.empty(na, np.int64)
    for a in range(na):
        cola[a] = min(max(int((ma[a, 0] - x0) / DIST_TOL), 0), nbk - 1)
    sx = np.empty(nb)
    sy = np.empty(nb)
    st = np.empty(nb)
    sq = np.empty(nb, np.int64)
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
        ox, oy = ma[i, 0] - (c * mb[p, 0] - sn * mb[p, 1]), ma[i, 1] - (sn * mb[p, 0] + c * mb[p, 1])
        _align(mb, c, sn, ox, oy, rot, x0, start, tx, ty, tt, sx, sy, st, sq)
        matched, wsum = _pair_up(ma, mb, cola, sx, sy, st, sq, start, sim, wt, la, lb, ta, tb, used_b, pa,
                                 DIST_TOL, cost)
        if matched < 2:
            continue
        seed_fit = (rot, ox, oy)  # the alignment this pairing used (the refit below replaces rot)
        # least-squares rigid fit on the pairs found: the seed's own direction is only good to ~10 deg
        sax = say = sbx = sby = 0.0
        for a in range(na):
            if pa[a] >= 0:
                sax += ma[a, 0]
                say += ma[a, 1]
                sbx += mb[pa[a], 0]
                sby += mb[pa[a], 1]
        sax /= matched
        say /= matched
        sbx /= matched
        sby /= matched
        num = 0.0
        den = 0.0
        for a in range(na):
            if pa[a] >= 0:
                ax = ma[a, 0] - sax
                ay = ma[a, 1] - say
                bx = mb[pa[a], 0] - sbx
                by = mb[pa[a], 1] - sby
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
            res[2], res[3] = _overlap(ma, mb, tx, ty, na, nb)
            res[4] = wsum
            res[5], res[6], res[7] = seed_fit
    # pass 2: re-pair with a tighter tolerance after the refit, for the REFINE best seeds of pass 1
    rank = np.argsort(-fit[:, 3])
    for k in range(min(REFINE, nseeds)):
        s = rank[k]
        if fit[s, 3] <= 0:
            break
        rot = fit[s, 0]
        _align(mb, math.cos(rot), math.sin(rot), fit[s, 1], fit[s, 2], rot, x0, start, tx, ty, tt, sx, sy, st, sq)
        matched, wsum = _pair_up(ma, mb, cola, sx, sy, st, sq, start, sim, wt, la, lb, ta, tb, used_b, pa, DIST_TOL * 0.85, cost)
        if wsum > best_score:
            best_score = wsum
            res[1] = matched
            res[2], res[3] = _overlap(ma, mb, tx, ty, na, nb)
            res[4] = wsum
            res[5], res[6], res[7] = rot, fit[s, 1], fit[s, 2]
    res[8] = _final_score(res[4], res[1], res[2], res[3], na, nb)
    if res[8] > 0.0:
        cells, mean = agreement(fa, fb, res[5], res[6], res[7])
        res[9], res[10] = cells, mean
        res[0] = res[8] * field_factor(cells, mean)
    return res


@njit(cache=True)
def _final_score(wsum: float, matched: float, ova: float, ovb: float, na: int, nb: int) -> float:
    if matched < 3:
        return 0.0
    return 100.0 * wsum * wsum / (ova * ovb)


@njit(cache=True)
def match_many(pm: F64, pl: F32, pc: U8, po: U8, pk: U64, pf: U8,
               gm: F64, gl: F32, gc: U8, go: U8, gk: U64, offsets: I64, gf: U8, foffsets: I64) -> F64:
    """Scores of one prepared probe against a gallery packed as concatenated arrays with row offsets (and
    the fields concatenated with their byte offsets)."""
    n = offsets.shape[0] - 1
    out = np.zeros(n, np.float64)
    for g in range(n):
        a, b = offsets[g], offsets[g + 1]
        out[g] = match_raw(pm, pl, pc, po, pk, pf, gm[a:b], gl[a:b], gc[a:b], go[a:b], gk[a:b],
                           gf[foffsets[g]:foffsets[g + 1]])[0]
    return out


@njit(cache=True)
def match_pairs(m: F64, loc: F32, c: U8, o: U8, msk: U64, offsets: I64, f: U8, foffsets: I64, pa: I64,
                pb: I64) -> F64:
    """Scores of template pairs (pa[k], pb[k]) of a set packed like a gallery (evaluation, calibration)."""
    out = np.zeros(pa.shape[0], np.float64)
    for k in range(pa.shape[0]):
        a0, a1, b0, b1 = offsets[pa[k]], offsets[pa[k] + 1], offsets[pb[k]], offsets[pb[k] + 1]
        out[k] = match_raw(m[a0:a1], loc[a0:a1], c[a0:a1], o[a0:a1], msk[a0:a1], f[foffsets[pa[k]]:foffsets[pa[k] + 1]],
                           m[b0:b1], loc[b0:b1], c[b0:b1], o[b0:b1], msk[b0:b1], f[foffsets[pb[k]]:foffsets[pb[k] + 1]])[0]
    return out


Prepared = tuple[F64, F32, U8, U8, U64, U8]
# Prepared of every template concatenated with row offsets (index 5), then the fields concatenated with
# their byte offsets
Packed = tuple[F64, F32, U8, U8, U64, I64, U8, I64]


def prepare(minutiae: np.ndarray, unreliable_weight: float = UNRELIABLE_WEIGHT,
            field: np.ndarray | None = None) -> Prepared:
    """Minutiae sorted by quality (best first, stable) with their local structures and cylinders (values,
    validity, validity masks), and the orientation field (``field``, encoded; none: empty): the six arrays
    match_raw takes per template. The minutiae get a sixth column, each one's weight in the common-area
    counts (1, or ``unreliable_weight`` under RELIABLE_QUALITY)."""
    m = np.asarray(minutiae[:, :5], np.float64)
    m = m[np.argsort(-m[:, 4], kind="stable")]
    m = np.ascontiguousarray(np.column_stack([m, np.where(m[:, 4] >= RELIABLE_QUALITY, 1.0, unreliable_weight)]))
    f = NO_FIELD if field is None else np.ascontiguousarray(field, np.uint8).ravel()
    return (m, local_structures(m), *describe(m), f)


def score(a: np.ndarray, b: np.ndarray, field_a: np.ndarray | None = None, field_b: np.ndarray | None = None) -> float:
    """Similarity of two minutiae sets ((n, 5) arrays) with their orientation fields, if any; symmetric up to
    the greedy pairing."""
    return float(match_raw(*prepare(a, field=field_a), *prepare(b, field=field_b))[0])


_EMPTY = (np.zeros((0, 6)), np.zeros((0, 3, KP), np.float32), np.zeros((0, NCELL), np.uint8),
          np.zeros((0, NS * NS), np.uint8), np.zeros(0, np.uint64))


def pack(templates: list[np.ndarray], unreliable_weight: float = UNRELIABLE_WEIGHT,
         fields: list[np.ndarray] | None = None) -> Packed:
    """Prepared templates concatenated: the five per-template arrays of prepare and row offsets (template k
    is rows offsets[k]:offsets[k + 1]), then the fields (``fields``, one per template; none: no fields)
    concatenated with byte offsets: the layout match_many and match_pairs read."""
    if fields is not None and len(fields) != len(templates):
        raise ValueError("one orientation field (or an empty one) per template")
    prepared = [prepare(t, unreliable_weight, None if fields is None else fields[k]) for k, t in enumerate(templates)]
    offsets = np.zeros(len(prepared) + 1, np.int64)
    foffsets = np.zeros(len(prepared) + 1, np.int64)
    for k, p in enumerate(prepared):
        offsets[k + 1] = offsets[k] + len(p[0])
        foffsets[k + 1] = foffsets[k] + len(p[5])
    arrays = [np.concatenate([p[i] for p in prepared]) if prepared else _EMPTY[i] for i in range(5)]
    flat = np.concatenate([p[5] for p in prepared]) if prepared else NO_FIELD
    return cast(Packed, (*arrays, offsets, np.ascontiguousarray(flat, np.uint8), foffsets))


def score_pairs(packed: Packed, pairs: list[tuple[int, int]]) -> F64:
    """Scores of (index, index) pairs of packed templates, in one compiled loop."""
    idx = np.asarray(pairs, np.int64).reshape(-1, 2)
    return match_pairs(*packed, np.ascontiguousarray(idx[:, 0]), np.ascontiguousarray(idx[:, 1]))


class Gallery:
    """Templates packed for fast 1:N search (prepared once; scores against all in one compiled loop)."""

    def __init__(self, ids: list[Any], templates: list[np.ndarray], fields: list[np.ndarray] | None = None) -> None:
        self.ids = list(ids)
        self.packed = pack(templates, fields=fields)

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, probe: np.ndarray, field: np.ndarray | None = None) -> np.ndarray:
        """Scores of a probe (minutiae and its orientation field, if any) against every template."""
        if not self.ids:
            return np.zeros(0)
        pm, pl, pc, po, pk, pf = prepare(probe, field=field)
        return match_many(pm, pl, pc, po, pk, pf, *self.packed)
