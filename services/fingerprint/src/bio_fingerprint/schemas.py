"""Response models of the fingerprint API, built from rows and service results (``model_validate``).
Every name starts with ``Fingerprint`` so the gateway's combined document has no generated names."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from bio_fingerprint.engine.template import FINGER_POSITIONS
from bio_fingerprint.runtime import PREFIX
from bio_shared.schemas import Page


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FingerprintQuality(_Out):
    score: int = Field(description="0-100")
    components: dict[str, Any]
    reasons: list[str]


class FingerprintTemplateOut(_Out):
    id: str
    subject: str
    finger: int = Field(description="ISO/IEC 19794-2 finger position (0 unknown, 1 right thumb ... 10 left little)")
    impression: int
    algorithm: str
    algorithm_version: str
    quality: int
    minutiae_count: int
    width: int
    height: int
    dpi: int
    source: str
    output_id: str | None
    created_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def finger_name(self) -> str:
        return FINGER_POSITIONS.get(self.finger, "unknown")


class FingerprintTemplateList(Page[FingerprintTemplateOut]):
    model_config = ConfigDict(from_attributes=True)


class FingerprintOutputOut(_Out):
    id: str
    job_id: str | None
    filename: str | None
    template_id: str | None
    quality: int
    minutiae_count: int
    width: int
    height: int
    details: dict[str, Any]
    created_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def image_url(self) -> str:
        return f"{PREFIX}/outputs/{self.id}/image"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def template_url(self) -> str:
        return f"{PREFIX}/outputs/{self.id}/template"


class FingerprintOutputList(Page[FingerprintOutputOut]):
    model_config = ConfigDict(from_attributes=True)


class FingerprintMinutia(_Out):
    x: float
    y: float
    direction: float = Field(description="radians, atan2(dy, dx) in image coordinates")
    type: Literal["ending", "bifurcation", "other"]
    quality: int


class FingerprintExtractOut(_Out):
    output: FingerprintOutputOut
    quality: FingerprintQuality
    minutiae: list[FingerprintMinutia]


class FingerprintError(_Out):
    code: str
    message: str
    details: Any = None


class FingerprintEnrollItem(_Out):
    index: int
    filename: str | None
    status: Literal["enrolled", "failed"]
    template: FingerprintTemplateOut | None = None
    output_id: str | None = None
    quality: FingerprintQuality | None = None
    error: FingerprintError | None = None


class FingerprintEnrollOut(_Out):
    subject: str
    finger: int
    enrolled: int
    failed: int
    items: list[FingerprintEnrollItem]


class FingerprintVerifyOut(_Out):
    match: bool
    decision: Literal["template", "subject"] = Field(
        description="template: one comparison; subject: the best of `compared` templates")
    score: float = Field(description="the best score over the compared templates")
    threshold: float = Field(description="threshold used, chosen so the decision's FMR is `fmr`")
    fmr: float = Field(description="requested false-match rate of this decision")
    per_comparison_fmr: float = Field(description="single-comparison FMR the threshold sits at: 1 - (1 - fmr)^(1/compared)")
    estimated_fmr: float = Field(description="share of single impostor comparisons scoring at least `score`")
    estimated_decision_fmr: float = Field(description="estimated rate at which an impostor's best of `compared` "
                                                      "scores reaches `score`")
    extrapolated: bool = Field(description="per_comparison_fmr lies below the table's lowest measured rate")
    best_template: FingerprintTemplateOut
    compared: int
    probe_quality: FingerprintQuality | None


class FingerprintCandidate(_Out):
    subject: str
    finger: int
    template_id: str
    score: float
    estimated_fmr: float = Field(description="share of single impostor comparisons scoring at least `score`")


class FingerprintGallerySize(_Out):
    subjects: int = Field(description="subjects with at least one searched template")
    templates: int = Field(description="templates compared with the probe (what the threshold accounts for)")


class FingerprintIdentifyOut(_Out):
    candidates: list[FingerprintCandidate]
    fpir: float = Field(description="requested false-positive identification rate (ISO/IEC 19795-1): the "
                                    "chance that a probe of an unenrolled person returns any candidate")
    fmr: float = Field(description="deprecated: the same value as fpir (identify used to take an fmr)")
    threshold: float = Field(description="threshold used for this gallery size")
    per_comparison_fmr: float = Field(description="1 - (1 - fpir)^(1/templates)")
    extrapolated: bool
    gallery: FingerprintGallerySize
    searched: int = Field(description="templates compared (gallery.templates)")
    probe_quality: FingerprintQuality | None


class FingerprintDistortionOut(_Out):
    probabilities: dict[str, float]
    predicted: str
    model_version: str
    print_quality: FingerprintQuality


class FingerprintCleanupOut(_Out):
    removed_outputs: int
    removed_images: int
    older_than_days: float
    cutoff: datetime


class FingerprintThresholdPoint(_Out):
    model_config = ConfigDict(from_attributes=True, extra="allow")
    fmr: float
    threshold: float
    measured: bool = True


class FingerprintThresholds(_Out):
    """The single-comparison score-to-FMR table (``bio-fingerprint calibrate``); subject and identification
    decisions derive their thresholds from it (see ``decisions``)."""

    model_config = ConfigDict(from_attributes=True, extra="allow")
    algorithm: str
    algorithm_version: str
    extractor: str
    profile: str = "full-area"  # sensor class the table is fitted for (BIO_FINGERPRINT_SCORE_TABLE)
    method: str
    impostor_comparisons: int
    points: list[FingerprintThresholdPoint]
    decisions: str = ("verify against a subject with N templates and identify over T templates use the "
                      "single-comparison threshold at 1 - (1 - rate)^(1/N); see the service README")
