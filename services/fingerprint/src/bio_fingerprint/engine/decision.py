"""Decision thresholds at a requested error rate, for the decision actually made.

The engine ships a score -> FMR table per extractor, measured on single impostor comparisons
(``weights/score_fmr_<extractor>.json``). A decision often rests on more than one comparison:

* verify against a subject with N enrolled templates accepts when the best of N scores reaches t. For
  independent impostor comparisons P(max of N >= t) = 1 - (1 - FMR(t))^N, about N x FMR(t);
* identify returns a candidate for a probe of an unenrolled person when any of the T gallery templates
  reaches t, so its false-positive identification rate (FPIR, ISO/IEC 19795-1) is 1 - (1 - FMR(t))^T.

So a decision over N comparisons at requested rate r uses the single-comparison threshold at
1 - (1 - r)^(1/N) (Sidak). Impressions of one finger give positively correlated impostor scores against
the same probe, and then max-of-N exceeds t less often than under independence: the threshold is
conservative (the rate achieved is at most the requested one). ``bench_decisions`` measures both.

Rates below the lowest point of the table are extrapolated log-linearly along its last segment and
reported as ``extrapolated``.

The table itself is a conservative tail model (``conservative_points``): impostor score tails differ
between sensors and finger populations (FVC2002 DB2_B's is much heavier than DB1_B's or pyfnprint's,
because a few look-alike finger pairs dominate the top of a set's impostor scores), so an empirical table
pooled over some sets underestimates the tail of another. Per population (one sensor's set), the tail
above its 90th percentile is a generalised Pareto distribution (GPD, Zhang & Stephens 2009 estimator); the
fingers are resampled with replacement (a bootstrap over fingers, the unit the look-alike pairs come in)
and the table's threshold at each rate is the ``level`` quantile of the bootstrap thresholds (an upper
confidence bound), the largest over the populations: the requested rate is meant to hold on every sensor
like the ones measured, not on their average. ``bench_decisions`` chooses the level leaving one set out.
Smaller prints have a heavier tail at the same score: the small / tiny crops of bench.py can be populations too
(``ImpostorScores.pooled``; ``bio-fingerprint calibrate --work``), and bench_decisions checks the shipped table
on the crops of its hold-out seeds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

RATE_FLOOR = 1e-12  # smaller per-comparison rates are not meaningful, even extrapolated


class ScoreFmr:
    """Score <-> single-comparison false-match rate, log-interpolated between the table's points."""

    def __init__(self, points: list[dict[str, Any]]) -> None:
        pts = sorted(((float(p["threshold"]), float(p["fmr"])) for p in points), key=lambda p: p[0])
        # the lowest rate actually observed in the impostor scores the table was fitted on (points of a
        # tail model below it are model, not measurement)
        measured = [float(p["fmr"]) for p in points if p.get("measured", True)]
        self.lowest_measured_fmr = min(measured) if measured else float(pts[-1][1])
        if len(pts) < 2:
            raise ValueError("a score-to-FMR table needs at least two points")
        self.scores = np.array([p[0] for p in pts])
        self.log_fmrs = np.log10(np.array([p[1] for p in pts]))
        if np.any(np.diff(self.log_fmrs) >= 0) or np.any(np.diff(self.scores) <= 0):
            raise ValueError("score-to-FMR points must have increasing scores and decreasing rates")
        # tail slope (decades per score unit) of the last segment
        self._slope = float((self.log_fmrs[-1] - self.log_fmrs[-2]) / (self.scores[-1] - self.scores[-2]))

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> ScoreFmr:
        return cls(table["points"])

    @property
    def lowest_fmr(self) -> float:
        return float(10 ** self.log_fmrs[-1])

    @property
    def highest_fmr(self) -> float:
        return float(10 ** self.log_fmrs[0])

    def fmr_of(self, score: float) -> float:
        """Share of impostor comparisons scoring at least ``score``; clamped to the table's range (a score
        above the last point is reported at the lowest rate the table supports)."""
        if score <= self.scores[0]:
            return self.highest_fmr
        if score >= self.scores[-1]:
            return self.lowest_fmr
        return float(10 ** np.interp(score, self.scores, self.log_fmrs))

    def threshold_for(self, fmr: float) -> float:
        """Lowest score whose single-comparison FMR is at most ``fmr``."""
        if not (0 < fmr < 1):
            raise ValueError("fmr must be between 0 and 1")
        lf = math.log10(max(fmr, RATE_FLOOR))
        if lf >= self.log_fmrs[0]:
            return float(self.scores[0])
        if lf < self.log_fmrs[-1]:
            return float(self.scores[-1] + (lf - self.log_fmrs[-1]) / self._slope)
        return float(np.interp(lf, self.log_fmrs[::-1], self.scores[::-1]))


# score tables per sensor class: "full-area" is fitted on full impressions (FVC2002 B, pyfnprint), "small-area"
# also on their small / tiny crops (smaller prints have a heavier impostor tail at the same score)
PROFILES = ("full-area", "small-area")


def table_path(extractor: str = "leader", profile: str = "full-area") -> Any:
    if profile not in PROFILES:
        raise ValueError(f"unknown score table profile {profile!r}; known: {list(PROFILES)}")
    suffix = "" if profile == "full-area" else f"_{profile}"
    return resources.files("bio_fingerprint") / "weights" / f"score_fmr_{extractor}{suffix}.json"


@lru_cache(maxsize=8)
def shipped_table(extractor: str = "leader", profile: str = "full-area") -> dict[str, Any]:
    """The score-to-FMR table measured on impostor comparisons (``bio-fingerprint calibrate``), one per
    minutiae extractor (their score distributions differ) and sensor profile."""
    path = table_path(extractor, profile)
    if not path.is_file():
        raise ValueError(f"no {profile} score table for the {extractor} extractor")
    table: dict[str, Any] = json.loads(path.read_text())
    table.setdefault("profile", profile)
    return table


@lru_cache(maxsize=8)
def shipped(extractor: str = "leader", profile: str = "full-area") -> ScoreFmr:
    return ScoreFmr.from_table(shipped_table(extractor, profile))


def per_comparison_rate(rate: float, comparisons: int) -> float:
    """Single-comparison rate that gives ``rate`` for a decision over ``comparisons`` independent ones."""
    if not (0 < rate < 1):
        raise ValueError("rate must be between 0 and 1")
    n = max(1, int(comparisons))
    return -math.expm1(math.log1p(-rate) / n)  # 1 - (1 - rate)^(1/n) without cancellation


def decision_rate(single: float, comparisons: int) -> float:
    """Rate of a best-of-``comparisons`` decision whose comparisons each have rate ``single``."""
    return -math.expm1(max(1, int(comparisons)) * math.log1p(-min(single, 1 - 1e-15)))


@dataclass(frozen=True)
class Decision:
    """The threshold of one decision: ``requested`` is its rate (FMR of a subject or template decision,
    FPIR of an identification), over ``comparisons`` template comparisons."""

    requested: float
    comparisons: int
    per_comparison_fmr: float
    threshold: float
    extrapolated: bool  # the per-comparison rate lies below the table's lowest measured point

    def estimated_rate(self, table: ScoreFmr, score: float) -> float:
        """The decision-level rate at which an impostor reaches ``score`` (best of ``comparisons``)."""
        return decision_rate(table.fmr_of(score), self.comparisons)


def decide(table: ScoreFmr, rate: float, comparisons: int) -> Decision:
    """Threshold for a best-of-``comparisons`` decision at ``rate`` (verify: FMR; identify: FPIR)."""
    n = max(1, int(comparisons))
    single = per_comparison_rate(rate, n)
    return Decision(requested=rate, comparisons=n, per_comparison_fmr=single,
                    threshold=table.threshold_for(single), extrapolated=single < table.lowest_fmr * (1 - 1e-9))


# --- conservative tail model of the impostor scores -------------------------------------------------------

TAIL_SHARE = 0.1  # the GPD describes the top 10 % of a population's impostor scores
TABLE_RATES = (0.1, 0.05, 0.03, 0.02, 0.01, 0.005, 0.003, 0.002, 0.001, 0.0005, 0.0003, 0.0002, 0.0001)


@dataclass(frozen=True)
class Tail:
    """Impostor scores above ``threshold`` (reached by a share ``rate``) follow a generalised Pareto
    distribution: P(s >= t) = rate * (1 + shape * (t - threshold) / scale) ** (-1 / shape)."""

    threshold: float
    rate: float
    scale: float
    shape: float

    def score_at(self, fmr: float) -> float:
        """Score reached by a share ``fmr`` (< rate) of impostor comparisons."""
        r = math.log(self.rate / fmr)
        if abs(self.shape) < 1e-9:
            return self.threshold + self.scale * r
        return self.threshold + self.scale * math.expm1(self.shape * r) / self.shape


def fit_gpd(exceedances: np.ndarray) -> tuple[float, float]:
    """(shape, scale) of a generalised Pareto distribution fitted to positive exceedances: the estimator of
    Zhang & Stephens (2009, Technometrics 51:316), a profile-likelihood-weighted average over a grid of
    theta = -shape / scale, which needs no optimiser and stays stable for a few dozen values."""
    x = np.sort(np.asarray(exceedances, np.float64))
    x = x[x > 0]
    n = len(x)
    if n < 10:
        raise ValueError("a tail fit needs at least 10 exceedances")
    m = 30 + int(math.sqrt(n))
    b = 1.0 - np.sqrt(m / (np.arange(1, m + 1, dtype=np.float64) - 0.5))
    b = b / (3.0 * x[int(n / 4 + 0.5) - 1]) + 1.0 / x[-1]
    k = np.log1p(-b[:, None] * x[None, :]).mean(axis=1)
    ll = n * (np.log(-b / k) - k - 1.0)
    w = np.exp(ll - ll.max())  # weight of grid point j: 1 / sum_i exp(ll_i - ll_j), a softmax
    w /= w.sum()
    bp = float((b * w).sum())
    shape = float(np.log1p(-bp * x).mean())
    return shape, float(-shape / bp)


def fit_tail(scores: np.ndarray, tail_share: float = TAIL_SHARE) -> Tail:
    """GPD tail above the (1 - tail_share) quantile of impostor scores."""
    s = np.asarray(scores, np.float64)
    u = float(np.quantile(s, 1.0 - tail_share))
    exc = s[s > u] - u
    shape, scale = fit_gpd(exc)
    return Tail(u, float(len(exc) / len(s)), scale, shape)


@dataclass(frozen=True)
class ImpostorScores:
    """Impostor scores of one population of fingers (one sensor's set), kept by the pair of fingers compared:
    the top of a set's impostor scores comes from a few look-alike finger pairs, so fingers are the unit
    that a bootstrap resamples."""

    name: str
    fingers: int
    blocks: dict[tuple[int, int], np.ndarray]

    @classmethod
    def from_matrix(cls, name: str, scores: np.ndarray, fingers: list[str]) -> ImpostorScores:
        """``scores[i, j]`` of print i against print j; prints of different fingers are impostor pairs."""
        ids = sorted(set(fingers))
        of = np.array([ids.index(f) for f in fingers])
        idx = [np.flatnonzero(of == a) for a in range(len(ids))]
        blocks = {(a, b): np.asarray(scores[np.ix_(idx[a], idx[b])], np.float64).ravel()
                  for a in range(len(ids)) for b in range(len(ids)) if a != b}
        return cls(name, len(ids), {k: v[np.isfinite(v)] for k, v in blocks.items()})

    @classmethod
    def pooled(cls, name: str, parts: list[ImpostorScores]) -> ImpostorScores:
        """One population from several sets of the same fingers (crops of one set with different seeds): the
        scores of each pair of fingers together, so that a bootstrap still resamples fingers."""
        if not parts or any(p.fingers != parts[0].fingers or p.blocks.keys() != parts[0].blocks.keys() for p in parts):
            raise ValueError("pooled sets must hold the same fingers")
        return cls(name, parts[0].fingers, {k: np.concatenate([p.blocks[k] for p in parts]) for k in parts[0].blocks})

    def sample(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """Every impostor score, or (with ``rng``) those of a bootstrap sample of the fingers: a finger drawn
        c times counts c times, so the scores of fingers a and b count c_a x c_b times."""
        if rng is None:
            return np.concatenate(list(self.blocks.values()))
        count = np.bincount(rng.integers(0, self.fingers, self.fingers), minlength=self.fingers)
        parts = [np.tile(v, count[a] * count[b]) for (a, b), v in self.blocks.items() if count[a] * count[b]]
        return np.concatenate(parts)

    def __len__(self) -> int:
        return sum(len(v) for v in self.blocks.values())


def tail_thresholds(scores: np.ndarray, rates: tuple[float, ...] = TABLE_RATES,
                    tail_share: float = TAIL_SHARE) -> np.ndarray:
    """Threshold per rate: the empirical quantile at rates >= tail_share, the fitted GPD tail below."""
    tail = fit_tail(scores, tail_share)
    return np.array([float(np.quantile(scores, 1.0 - r)) if r >= tail.rate else tail.score_at(r) for r in rates])


def bootstrap_thresholds(imp: ImpostorScores, rounds: int, rng: np.random.Generator,
                         rates: tuple[float, ...] = TABLE_RATES) -> np.ndarray:
    """(rounds, rates) thresholds of the tail model fitted to bootstrap samples of the population's fingers."""
    return np.array([tail_thresholds(imp.sample(rng), rates) for _ in range(rounds)])


def conservative_points(curves: dict[str, np.ndarray], sizes: dict[str, int], level: float,
                        rates: tuple[float, ...] = TABLE_RATES) -> list[dict[str, Any]]:
    """Table points at ``level``: per population (its bootstrap thresholds in ``curves``, its number of
    impostor comparisons in ``sizes``) the ``level`` quantile of its bootstrap thresholds, then the largest
    over the populations. A point is ``measured`` when the population that sets it has at least one
    impostor comparison at that rate (1 / comparisons <= rate)."""
    if not curves:
        raise ValueError("no impostor populations")
    names = list(curves)
    upper = np.array([np.quantile(curves[n], level, axis=0) for n in names])  # (populations, rates)
    points: list[dict[str, Any]] = []
    last = -math.inf
    for k, rate in enumerate(rates):
        j = int(np.argmax(upper[:, k]))
        t = max(float(upper[j, k]), last + 1e-6)  # strictly increasing as the rate falls
        last = t
        points.append({"fmr": rate, "threshold": round(t, 6), "measured": bool(rate * sizes[names[j]] >= 1),
                       "set_by": names[j]})
    return points
