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

Rates below the lowest point of the table are extrapolated log-linearly along its last segment (the
impostor score tail is close to exponential there) and reported as ``extrapolated``.
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


@lru_cache(maxsize=4)
def shipped_table(extractor: str = "leader") -> dict[str, Any]:
    """The score-to-FMR table measured on impostor comparisons (``bio-fingerprint calibrate``), one per
    minutiae extractor (their score distributions differ)."""
    path = resources.files("bio_fingerprint") / "weights" / f"score_fmr_{extractor}.json"
    table: dict[str, Any] = json.loads(path.read_text())
    return table


@lru_cache(maxsize=4)
def shipped(extractor: str = "leader") -> ScoreFmr:
    return ScoreFmr.from_table(shipped_table(extractor))


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
