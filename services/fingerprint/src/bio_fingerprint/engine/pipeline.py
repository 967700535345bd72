"""One print in, everything out: classic steps, ridge enhancement, minutiae and quality."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from bio_fingerprint.engine import orientation_field
from bio_fingerprint.engine.enhance import LEADER_THRESHOLD, Enhanced, EnhanceMethods, enhance, leader_minutiae
from bio_fingerprint.engine.minutiae import coherence_map, extract_minutiae
from bio_fingerprint.engine.preprocess import apply_steps, grayscale
from bio_fingerprint.engine.template import RELIABLE_QUALITY, Template

EXTRACTORS = ("leader", "classic")

MAX_SIDE = 1000  # larger uploads (e.g. 1000 dpi scans) are scaled to this before enhancement


@dataclass
class Quality:
    score: int
    components: dict[str, float]
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "components": self.components, "reasons": self.reasons}


@dataclass
class Processed:
    enhanced: Enhanced
    minutiae: np.ndarray
    quality: Quality
    preprocessed: np.ndarray
    dpi: int
    extractor: str = "leader"
    orientation: np.ndarray = field(default_factory=lambda: orientation_field.EMPTY)  # engine/orientation_field.py

    def template(self, finger: int = 0, impression: int = 0) -> Template:
        h, w = self.enhanced.gray.shape
        return Template(self.minutiae, w, h, self.dpi, finger, impression, self.quality.score,
                        algorithm=f"bio-fp-{self.extractor}", orientation=self.orientation)


def assess_quality(e: Enhanced, minutiae: np.ndarray, dpi: int = 500) -> Quality:
    """0-100 from three measured components, each 0-1, with a reason for every weak one.

    * foreground: fingerprint area found by segmentation, relative to a 300x300 px plain impression at 500 dpi
    * clarity: mean orientation coherence of the ridges inside the foreground
    * minutiae: reliable minutiae found (the caller passes those), relative to 30
    """
    scale = (500.0 / dpi) ** 2
    fg_px = float((e.mask > 0).sum()) * scale
    foreground = min(1.0, fg_px / 90000.0)
    inside = e.mask > 0
    if fg_px > 0:
        coh = coherence_map(e.gray)
        clarity_raw = float(coh[inside].mean())
        # share of the print's contrast at ridge frequencies (periods of about 4-20 px): about 0.4-0.55
        # for fingerprints, under 0.25 for photos of faces or objects whose contrast is in broad shapes
        a = e.gray.astype(np.float32)
        band = cv2.GaussianBlur(a, (0, 0), 1) - cv2.GaussianBlur(a, (0, 0), 4)
        total = a - cv2.GaussianBlur(a, (0, 0), 16)
        ridge_ratio = float(band[inside].var() / max(total[inside].var(), 1e-6))
    else:
        clarity_raw = ridge_ratio = 0.0
    clarity = float(0.5 * np.clip((clarity_raw - 0.25) / 0.45, 0, 1) + 0.5 * np.clip((ridge_ratio - 0.2) / 0.2, 0, 1))
    count = len(minutiae)
    mscore = min(1.0, count / 30.0)
    reasons = []
    if fg_px < 20000:
        reasons.append("little or no fingerprint area found (foreground segmentation)")
    elif foreground < 0.6:
        reasons.append(f"small fingerprint area ({int(fg_px)} px at 500 dpi)")
    is_print = ridge_ratio >= 0.25
    if fg_px > 0 and not is_print:
        reasons.append(f"no fingerprint ridge pattern (ridge-frequency energy {ridge_ratio:.2f}, prints have > 0.3)")
    if clarity < 0.5:
        reasons.append(f"unclear ridges (orientation coherence {clarity_raw:.2f})")
    if count < 12:
        reasons.append(f"few reliable minutiae ({count})")
    score = int(round(100 * (0.3 * foreground + 0.35 * clarity + 0.35 * mscore)))
    if fg_px < 20000 or count < 5 or not is_print:
        score = min(score, 10)
    return Quality(score, {"foreground": round(foreground, 3), "foreground_px": int(fg_px),
                           "clarity": round(clarity, 3), "coherence": round(clarity_raw, 3),
                           "ridge_energy": round(ridge_ratio, 3), "is_fingerprint": bool(fg_px >= 20000 and is_print),
                           "minutiae": count}, reasons)


def _leader_on_foreground(e: Enhanced, margin: int = 24, threshold: float = LEADER_THRESHOLD) -> np.ndarray:
    """LEADER on the foreground's bounding box (plus a margin) only: the network's cost grows with the
    pixels it sees, and plain impressions leave much of the frame empty."""
    ys, xs = np.nonzero(e.mask)
    if len(ys) == 0:
        return np.zeros((0, 5), np.float32)
    h, w = e.mask.shape
    y0, y1 = max(0, int(ys.min()) - margin), min(h, int(ys.max()) + 1 + margin)
    x0, x1 = max(0, int(xs.min()) - margin), min(w, int(xs.max()) + 1 + margin)
    m = leader_minutiae(np.ascontiguousarray(e.gray[y0:y1, x0:x1]), threshold=threshold)
    m[:, 0] += x0
    m[:, 1] += y0
    return m


def process(img: np.ndarray, steps: list[dict[str, Any]] | None = None, methods: EnhanceMethods | None = None,
            dpi: int = 500, extractor: str = "leader", enhance_ridges: bool = True,
            leader_threshold: float = LEADER_THRESHOLD) -> Processed:
    """Classic steps (if any), ridge enhancement and minutiae of one print (uint8 gray or RGB).

    ``extractor``: ``leader`` (pyfing's learned extractor on the preprocessed print: accurate, about
    0.2-0.25 s on one core with ``enhance_ridges=False``) or ``classic`` (crossing number on our thinned
    Gabor-enhanced ridges: about 10 ms on top of the enhancement, less repeatable). Measured side by side in the benchmark report.
    ``leader_threshold``: LEADER's detection confidence (bench-threshold extracts once at a low one and
    filters)."""
    if extractor not in EXTRACTORS:
        raise ValueError(f"unknown extractor {extractor!r}; allowed {list(EXTRACTORS)}")
    gray = grayscale(img)
    h, w = gray.shape
    if max(h, w) > MAX_SIDE:
        f = MAX_SIDE / max(h, w)
        gray = cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        dpi = max(1, int(round(dpi * f)))
    pre = apply_steps(gray, steps or [])
    work = pre
    if dpi != 500:  # the enhancement and the matcher's tolerances assume 500 dpi
        f = 500.0 / dpi
        work = cv2.resize(pre, (max(16, round(pre.shape[1] * f)), max(16, round(pre.shape[0] * f))),
                          interpolation=cv2.INTER_LINEAR)
    e = enhance(work, methods, ridges=enhance_ridges or extractor == "classic")
    inside = e.period[e.mask > 0]
    period = float(np.median(inside)) if inside.size else 9.0
    if extractor == "leader":
        minutiae = _leader_on_foreground(e, threshold=leader_threshold)
        if len(minutiae):
            # keep what lies on the print (LEADER can fire on background texture of non-prints)
            inside = e.mask[minutiae[:, 1].astype(int).clip(0, e.mask.shape[0] - 1),
                            minutiae[:, 0].astype(int).clip(0, e.mask.shape[1] - 1)] > 0
            minutiae = minutiae[inside]
            order = np.lexsort((minutiae[:, 0], minutiae[:, 1], -minutiae[:, 4]))
            minutiae = minutiae[order][:120]
    else:
        minutiae = extract_minutiae(e.skeleton, e.mask, e.gray, period)
    # the less certain LEADER minutiae help matching but would make a poor print look rich in minutiae
    q = assess_quality(e, minutiae[minutiae[:, 4] >= RELIABLE_QUALITY] if extractor == "leader" else minutiae)
    reuse = (enhance_ridges or extractor == "classic") and (methods or EnhanceMethods()).orientation == "GBFOE"
    of = (orientation_field.from_orientation(e.orientation, e.mask) if reuse and e.mask.any()
          else orientation_field.estimate(e.gray, e.mask))
    return Processed(e, minutiae, q, pre, 500, extractor, of)
