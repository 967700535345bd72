"""1:1 verification and 1:N identification with thresholds that hold for the decision made.

verify against a template is one comparison at the requested FMR; against a subject (and finger) it takes
the best of the subject's N templates, so its threshold sits at the single-comparison rate
1 - (1 - fmr)^(1/N). identify returns candidates at a false-positive identification rate (FPIR) over the
T templates searched: single-comparison rate 1 - (1 - fpir)^(1/T). See engine/decision.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from bio_fingerprint.engine import matcher
from bio_fingerprint.engine.pipeline import Quality
from bio_fingerprint.engine.template import field_at_500dpi, resample_to_500dpi
from bio_fingerprint.exceptions import NoTarget, TemplateNotFound, TooFewMinutiae, UnusablePrint
from bio_fingerprint.models import FingerprintTemplate
from bio_fingerprint.runtime import settings_of, state_of
from bio_fingerprint.service import calibration, search
from bio_fingerprint.service.codec import template_of
from bio_fingerprint.service.gallery import gallery_of, template_counts
from bio_fingerprint.service.processing import process_print
from bio_fingerprint.service.templates import parse_template
from bio_fingerprint.service.validation import check_finger, check_rate
from bio_shared.identity import Identity
from bio_shared.inference import timed_inference
from bio_shared.runtime import ServiceRuntime


@dataclass(frozen=True)
class Probe:
    minutiae: np.ndarray
    quality: Quality | None
    source: str
    field: np.ndarray  # orientation field (engine/orientation_field.py), empty for a template without one


@dataclass(frozen=True)
class VerifyResult:
    match: bool
    decision: str
    score: float
    threshold: float
    fmr: float
    per_comparison_fmr: float
    estimated_fmr: float
    estimated_decision_fmr: float
    extrapolated: bool
    best_template: FingerprintTemplate
    compared: int
    probe_quality: Quality | None


@dataclass(frozen=True)
class Candidate:
    subject: str
    finger: int
    template_id: str
    score: float
    estimated_fmr: float


@dataclass(frozen=True)
class GallerySize:
    subjects: int
    templates: int


@dataclass(frozen=True)
class IdentifyResult:
    candidates: list[Candidate]
    fpir: float
    fmr: float
    threshold: float
    per_comparison_fmr: float
    extrapolated: bool
    gallery: GallerySize
    searched: int
    probe_quality: Quality | None


def probe_from_image(rt: ServiceRuntime, data: bytes, preset: str | None, dpi: int) -> Probe:
    # a probe needs minutiae and quality, not the enhanced image: segmentation + LEADER only
    result = process_print(rt, data, preset=preset, dpi=dpi, enhance_ridges=False)
    q = result.quality
    if q.score < settings_of(rt).probe_min_quality or len(result.minutiae) < 5:
        raise UnusablePrint("no usable fingerprint in the probe image: " + ("; ".join(q.reasons) or "too few minutiae"),
                            details={"quality": q.to_dict()})
    return Probe(result.minutiae, q, "image", result.orientation)


def probe_from_template(data: bytes, fmt: str | None) -> Probe:
    tpl = parse_template(data, fmt)
    if len(tpl.minutiae) < 3:
        raise TooFewMinutiae("template has too few minutiae to match")
    return Probe(resample_to_500dpi(tpl), None, "template", field_at_500dpi(tpl))


def _targets(rt: ServiceRuntime, identity: Identity, template_id: str | None, subject: str | None,
             finger: int | None) -> list[FingerprintTemplate]:
    if not template_id and not subject:
        raise NoTarget()
    where = [FingerprintTemplate.owner_id == identity.account_id]
    if template_id:
        where.append(FingerprintTemplate.id == template_id[:64])
    if subject:
        where.append(FingerprintTemplate.subject == subject[:256])
    if finger is not None:
        where.append(FingerprintTemplate.finger == check_finger(finger))
    with rt.sessions() as s:
        rows = list(s.scalars(select(FingerprintTemplate).where(*where)))
    if not rows:
        raise TemplateNotFound("no enrolled template matches the target")
    return rows


def verify(rt: ServiceRuntime, identity: Identity, probe: Probe, *, template_id: str | None, subject: str | None,
           finger: int | None, fmr: float | None) -> VerifyResult:
    fmr = check_rate(fmr) or settings_of(rt).default_fmr
    ext, profile = settings_of(rt).extractor, settings_of(rt).score_table
    rows = _targets(rt, identity, template_id, subject, finger)
    decision = calibration.decide(fmr, len(rows), ext, profile)
    with timed_inference("fingerprint", "match-1:1"):
        templates = [template_of(r) for r in rows]
        scores = [matcher.score(probe.minutiae, resample_to_500dpi(t), probe.field, field_at_500dpi(t))
                  for t in templates]
    k = int(np.argmax(scores))
    best = float(scores[k])
    return VerifyResult(match=best >= decision.threshold, decision="template" if template_id else "subject",
                        score=round(best, 3), threshold=round(decision.threshold, 3), fmr=fmr,
                        per_comparison_fmr=decision.per_comparison_fmr, estimated_fmr=calibration.fmr_of(best, ext, profile),
                        estimated_decision_fmr=calibration.decision_fmr_of(best, len(rows), ext, profile),
                        extrapolated=decision.extrapolated, best_template=rows[k], compared=len(rows),
                        probe_quality=probe.quality)


def identify(rt: ServiceRuntime, identity: Identity, probe: Probe, *, top_k: int, fpir: float | None,
             finger: int | None = None) -> IdentifyResult:
    """Exhaustive up to ``index_above`` templates; above it the two-stage search over the shards
    (service/search.py), whose candidate lists go through the same best-per-(subject, finger) ranking and
    threshold. The threshold counts every template of the searched gallery, as exhaustive search does."""
    fpir = check_rate(fpir, "fpir") or settings_of(rt).default_fpir
    ext, profile = settings_of(rt).extractor, settings_of(rt).score_table
    with rt.sessions() as s:
        indexed = template_counts(s, identity.account_id)[0] > settings_of(rt).index_above
        considered, subjects = template_counts(s, identity.account_id, finger) if indexed else (0, 0)
    if indexed:
        size = GallerySize(subjects, considered)
        with timed_inference("fingerprint", "match-1:N-indexed"):
            hits = search.search(rt, identity.account_id, probe.minutiae, finger, top_k, probe.field) \
                if considered else []
        ranked = [(h["score"], h["subject"], h["finger"], h["template_id"]) for h in hits]
    else:
        gallery = gallery_of(state_of(rt).galleries, rt.sessions, identity.account_id)
        meta = gallery.entries
        chosen = [i for i, m in enumerate(meta) if finger is None or m.finger == finger]
        considered = len(chosen)
        size = GallerySize(len({meta[i].subject for i in chosen}), considered)
        with timed_inference("fingerprint", "match-1:N"):
            scores = gallery.packed.scores(probe.minutiae, probe.field) if chosen else np.zeros(0)
        ranked = [(float(scores[i]), meta[i].subject, meta[i].finger, meta[i].template_id) for i in chosen]
    decision = calibration.decide(fpir, max(1, considered), ext, profile)
    best: dict[tuple[str, int], tuple[float, str]] = {}
    for sc, subject, fing, template_id in ranked:
        key = (subject, fing)
        if key not in best or sc > best[key][0]:
            best[key] = (sc, template_id)
    order = sorted(best.items(), key=lambda kv: -kv[1][0])
    candidates = [Candidate(subject, fing, template_id, round(sc, 3), calibration.fmr_of(sc, ext, profile))
                  for (subject, fing), (sc, template_id) in order if sc >= decision.threshold][:top_k]
    return IdentifyResult(candidates, fpir, fpir, round(decision.threshold, 3), decision.per_comparison_fmr,
                          decision.extrapolated, size, considered, probe.quality)
