"""Request and response models of the fingerprint API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class QualityOut(BaseModel):
    score: int = Field(description="0-100")
    components: dict[str, Any]
    reasons: list[str]


class TemplateOut(BaseModel):
    id: str
    subject: str
    finger: int = Field(description="ISO/IEC 19794-2 finger position (0 unknown, 1 right thumb ... 10 left little)")
    finger_name: str
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
    created_at: str


class TemplateList(BaseModel):
    items: list[TemplateOut]


class OutputOut(BaseModel):
    id: str
    job_id: str | None
    filename: str | None
    template_id: str | None
    quality: int
    minutiae_count: int
    width: int
    height: int
    details: dict[str, Any]
    created_at: str
    image_url: str
    template_url: str


class OutputList(BaseModel):
    items: list[OutputOut]


class ExtractOut(BaseModel):
    output: OutputOut
    quality: QualityOut
    minutiae: list[dict[str, Any]]


class EnrollItem(BaseModel):
    filename: str | None
    status: str
    template: TemplateOut | None = None
    output_id: str | None = None
    quality: QualityOut | None = None
    error: dict[str, Any] | None = None


class EnrollOut(BaseModel):
    subject: str
    finger: int
    enrolled: int
    failed: int
    items: list[EnrollItem]


class VerifyOut(BaseModel):
    match: bool
    score: float
    threshold: float
    fmr: float
    estimated_fmr: float = Field(description="share of impostor comparisons scoring at least this score")
    best_template: TemplateOut
    compared: int
    probe_quality: QualityOut | None


class Candidate(BaseModel):
    subject: str
    finger: int
    template_id: str
    score: float
    estimated_fmr: float


class IdentifyOut(BaseModel):
    candidates: list[Candidate]
    threshold: float
    fmr: float
    searched: int
    probe_quality: QualityOut | None


class DistortionOut(BaseModel):
    probabilities: dict[str, float]
    predicted: str
    model_version: str


class CleanupOut(BaseModel):
    removed_outputs: int
    removed_images: int
    older_than_days: float
    cutoff: str
