"""Score thresholds at a requested error rate, from the engine's score-to-FMR table of the extractor in use.

A template decision (verify against one template) is one comparison; a subject decision (verify against a
subject's N templates) and an identification (any of a gallery's T templates) are best-of-N decisions whose
threshold engine.decision derives so that the requested FMR / FPIR holds for the decision made."""

from __future__ import annotations

from typing import Any

from bio_fingerprint.engine import decision
from bio_fingerprint.exceptions import InvalidRate


def fmr_table(extractor: str = "leader", profile: str = "full-area") -> dict[str, Any]:
    return decision.shipped_table(extractor, profile)


def threshold_for(fmr: float, extractor: str = "leader", profile: str = "full-area") -> float:
    """Single-comparison threshold: lowest score whose measured impostor FMR is at most ``fmr``."""
    return decide(fmr, 1, extractor, profile).threshold


def fmr_of(score: float, extractor: str = "leader", profile: str = "full-area") -> float:
    """Estimated single-comparison false-match rate at this score (share of impostor scores reaching it)."""
    return decision.shipped(extractor, profile).fmr_of(score)


def decide(rate: float, comparisons: int, extractor: str = "leader", profile: str = "full-area") -> decision.Decision:
    if not (0 < rate < 1):
        raise InvalidRate()
    return decision.decide(decision.shipped(extractor, profile), rate, comparisons)


def decision_fmr_of(score: float, comparisons: int, extractor: str = "leader", profile: str = "full-area") -> float:
    """Estimated rate at which a best-of-``comparisons`` impostor decision reaches this score."""
    return decision.decision_rate(fmr_of(score, extractor, profile), comparisons)
