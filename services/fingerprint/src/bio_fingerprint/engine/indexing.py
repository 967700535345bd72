"""Fingerprint indexing prefilter: binary Minutia Cylinder-Code vectors with locality-sensitive hashing.

After Cappelli, Ferrara and Maltoni, "Fingerprint indexing based on Minutia Cylinder-Code", IEEE
TPAMI 33(5), 2011, and the MCC representation of their 2010 TPAMI paper:

1. Every minutia gets a cylinder: an NS x NS x ND cell grid of radius R centred on it and rotated to
   its direction. A cell's value sums, over the neighbouring minutiae, a spatial Gaussian of the
   neighbour's distance to the cell centre times a directional Gaussian of the difference between the
   neighbour's direction (relative to the centre minutia's) and the cell's angle; binarised at MU.
   Cells outside the radius or far from every minutia are invalid (0). The bit-vector is a
   fixed-length, rotation- and translation-invariant description of the minutia's neighbourhood.
2. LSH: H hash functions, each the integer made of P bits picked at random among the informative bit
   positions (those neither almost always 0 nor almost always 1 on real prints). Cylinders of the same
   minutia on two impressions agree on most bits, so they collide in many functions.
3. Index: per function, the sorted (hash value, template) pairs, each template once per value. A
   probe's candidate score for a template is the number of (probe cylinder, function) collisions,
   divided by sqrt of the template's cylinder count (templates with many minutiae collide more by
   chance). The gallery is ranked by it and the best fraction goes to the full matcher.

Coordinates are 500 dpi pixels (the matcher's unit); templates are (n, 5) arrays x, y, theta, type, q.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from numpy.typing import NDArray

R = 70.0  # cylinder radius, px at 500 dpi
NS = 8  # cells per side
ND = 6  # direction sections
SIGMA_S = 28.0 / 3.0
SIGMA_D = 2.0 * math.pi / 9.0
MU = 0.01  # binarisation threshold of a cell's summed contribution
NEAR = 50.0  # a cell is valid when a minutia is this close (stands in for the print's convex hull)
MIN_VALID = 0.6  # share of valid cells a cylinder needs
MIN_NEIGHBOURS = 2
BITS = NS * NS * ND
MAX_CYLINDERS = 48  # best-quality minutiae per template that get a cylinder


@njit(cache=True)
def _near(m: NDArray[np.float64], px: float, py: float) -> bool:
    for t in range(m.shape[0]):
        if (m[t, 0] - px) ** 2 + (m[t, 1] - py) ** 2 <= NEAR * NEAR:
            return True
    return False


@njit(cache=True)
def _wrap(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@njit(cache=True)
def _cell(nx: NDArray[np.float64], ny: NDArray[np.float64], nrel: NDArray[np.float64], px: float, py: float,
          row: NDArray[np.uint8], base: int) -> None:
    """Sets the ND direction bits of the cell centred at (px, py) from the centre's neighbours."""
    dd = 2.0 * math.pi / ND
    gd = dd / (math.sqrt(2.0 * math.pi) * SIGMA_D)  # Gaussian density x section width ~ its integral
    acc = np.zeros(ND)
    for t in range(nx.shape[0]):
        d2 = (nx[t] - px) ** 2 + (ny[t] - py) ** 2
        if d2 > 9.0 * SIGMA_S * SIGMA_S:
            continue
        cs = math.exp(-d2 / (2.0 * SIGMA_S * SIGMA_S))
        for k in range(ND):
            diff = _wrap(-math.pi + (k + 0.5) * dd - nrel[t])
            acc[k] += cs * gd * math.exp(-diff * diff / (2.0 * SIGMA_D * SIGMA_D))
    for k in range(ND):
        if acc[k] > MU:  # both sides without the spatial Gaussian's constant factor
            row[base + k] = 1


@njit(cache=True)
def _cylinders(m: NDArray[np.float64]) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Bit cylinders (n, BITS) uint8 and a validity flag per minutia of one template."""
    n = m.shape[0]
    out = np.zeros((n, BITS), np.uint8)
    ok = np.zeros(n, np.bool_)
    ds = 2.0 * R / NS
    reach = R + 3.0 * SIGMA_S
    for c in range(n):
        x0, y0 = m[c, 0], m[c, 1]
        ct, st = math.cos(m[c, 2]), math.sin(m[c, 2])
        near = np.zeros(n, np.bool_)
        for t in range(n):
            near[t] = t != c and (m[t, 0] - x0) ** 2 + (m[t, 1] - y0) ** 2 <= reach * reach
        if near.sum() < MIN_NEIGHBOURS:
            continue
        nx, ny = m[near, 0].copy(), m[near, 1].copy()
        nrel = m[near, 2] - m[c, 2]
        valid = 0
        for i in range(NS):
            for j in range(NS):
                u = (i - (NS - 1) / 2.0) * ds
                v = (j - (NS - 1) / 2.0) * ds
                px, py = x0 + ct * u - st * v, y0 + st * u + ct * v
                if u * u + v * v <= R * R and _near(m, px, py):
                    valid += 1
                    _cell(nx, ny, nrel, px, py, out[c], (i * NS + j) * ND)
        ok[c] = valid >= MIN_VALID * (math.pi / 4.0) * NS * NS
    return out, ok


def cylinders(minutiae: np.ndarray) -> np.ndarray:
    """Valid bit cylinders (k, BITS) of the best-quality MAX_CYLINDERS minutiae."""
    m = np.asarray(minutiae[:, :5], np.float64)
    m = np.ascontiguousarray(m[np.argsort(-m[:, 4], kind="stable")])
    bits, ok = _cylinders(m)
    return np.asarray(bits[:MAX_CYLINDERS][ok[:MAX_CYLINDERS]], np.uint8)


@dataclass(frozen=True)
class LshParams:
    # chosen on the FVC2002 DB1_B probes against a 3,000-template synthetic gallery (worst mate rank 3;
    # H 24 / P 18 left one DB1 mate at rank 555); DB2_B and pyfnprint were not looked at for it
    functions: int = 32  # H
    bits: int = 14  # P
    seed: int = 2011


def choose_bits(sample: np.ndarray, params: LshParams, low: float = 0.1, high: float = 0.9) -> np.ndarray:
    """(H, P) bit positions among the informative ones of a sample of cylinders."""
    freq = sample.mean(0) if len(sample) else np.full(BITS, 0.5)
    informative = np.flatnonzero((freq >= low) & (freq <= high))
    if len(informative) < params.bits:
        informative = np.argsort(np.abs(freq - 0.5))[: max(params.bits, 64)]
    rng = np.random.default_rng(params.seed)
    return np.stack([rng.choice(informative, params.bits, replace=False) for _ in range(params.functions)])


def default_positions(params: LshParams | None = None) -> np.ndarray:
    """Bit positions for a service that has no sample at hand: every bit of a cell inside the cylinder's
    radius is eligible (cells outside it are always 0). Deterministic: all shards and replicas agree."""
    params = params or LshParams()
    centre = (np.arange(NS) - (NS - 1) / 2.0) * (2.0 * R / NS)
    inside = (centre[:, None] ** 2 + centre[None, :] ** 2 <= R * R).ravel()
    freq = np.repeat(np.where(inside, 0.5, 0.0), ND)
    return choose_bits(freq[None, :], params)


def hashes(cyl: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(k, H) int64 hash values of k cylinders."""
    weights = (1 << np.arange(positions.shape[1], dtype=np.int64))
    return np.asarray((cyl[:, positions].astype(np.int64) * weights).sum(-1), np.int64)


class McclshIndex:
    """The prefilter over one gallery (or shard): templates 0..n-1 in insertion order.

    Per hash function one sorted int64 array of ``value << 32 | template`` (each pair once): a value's
    templates are the slice between ``value << 32`` and ``(value + 1) << 32``; 8 bytes per entry."""

    max_share = 0.05  # hash values shared by more of the gallery than this are ignored (stop words)

    def __init__(self, positions: np.ndarray) -> None:
        self.positions = np.asarray(positions, np.int64)
        if self.positions.shape[1] > 31:
            raise ValueError("at most 31 bits per hash function")
        self.tables: list[np.ndarray] = [np.zeros(0, np.int64) for _ in range(len(self.positions))]
        self.norm = np.zeros(0, np.float32)
        self._pending: list[np.ndarray] = []  # (k, H) hashes of templates not yet in the tables

    def __len__(self) -> int:
        return len(self.norm)

    @property
    def nbytes(self) -> int:
        self.flush()
        return int(sum(t.nbytes for t in self.tables) + self.norm.nbytes)

    def copy(self) -> McclshIndex:
        """An index with the same templates; adding to either leaves the other as it is."""
        other = McclshIndex(self.positions)
        other.tables, other.norm, other._pending = list(self.tables), self.norm.copy(), list(self._pending)
        return other

    def add(self, hash_rows: list[np.ndarray]) -> None:
        """Templates given as their (k, H) hash arrays (``hashes(cylinders(t), positions)``)."""
        self._pending.extend(hash_rows)
        self.norm = np.concatenate([self.norm, np.asarray([1.0 / math.sqrt(max(len(h), 1)) for h in hash_rows],
                                                          np.float32)])

    def flush(self) -> None:
        """Sort the added templates into the tables (searches do it too; call it before sharing the index
        between threads, which then only read it)."""
        if not self._pending:
            return
        first = len(self.norm) - len(self._pending)
        counts = np.asarray([len(h) for h in self._pending])
        tid = np.repeat(np.arange(first, len(self.norm), dtype=np.int64), counts)
        allh = np.concatenate(self._pending) if counts.sum() else np.zeros((0, len(self.positions)), np.int64)
        self._pending = []
        for f in range(len(self.positions)):
            # the new templates' pairs are new (their ids are): a stable sort (timsort) merges the two
            # sorted runs in linear time, so adding a few templates to a large index stays cheap
            added = np.unique((allh[:, f] << 32) | tid)
            self.tables[f] = np.sort(np.concatenate([self.tables[f], added]), kind="stable")

    def scores(self, probe_hashes: np.ndarray) -> np.ndarray:
        """Candidate score of every template for a probe's (k, H) hashes."""
        self.flush()
        votes = np.zeros(len(self), np.float32)
        cap = max(8, int(self.max_share * len(self)))
        if not len(self) or not len(probe_hashes):
            return votes
        for f, table in enumerate(self.tables):
            values = probe_hashes[:, f].astype(np.int64)
            lo, hi = np.searchsorted(table, values << 32), np.searchsorted(table, (values + 1) << 32)
            keep = (hi - lo) <= cap
            idx = _ranges(lo[keep], hi[keep])
            votes += np.bincount((table[idx] & 0xFFFFFFFF).astype(np.int64), minlength=len(self)).astype(np.float32)
        return votes * self.norm

    def select(self, probe_hashes: np.ndarray, count: int) -> np.ndarray:
        """Indices of the ``count`` best candidates, best first."""
        s = self.scores(probe_hashes)
        count = min(count, len(s))
        if count <= 0:
            return np.zeros(0, np.int64)
        top = np.argpartition(-s, count - 1)[:count] if count < len(s) else np.arange(len(s))
        return top[np.argsort(-s[top], kind="stable")]


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[i], hi[i]) without a Python loop."""
    lengths = hi - lo
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    return np.asarray(np.arange(total, dtype=np.int64) - np.repeat(ends - lengths - lo, lengths), np.int64)
