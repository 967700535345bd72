"""Request and response models of the face recognition API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")


class EventSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(None, gt=0, le=2, description="match threshold, Euclidean distance "
                                    "(default 0.6 for the dlib model)")
    detector: Literal["hog", "cnn"] | None = Field(None, description="dlib HOG (default, fast) or CNN (MMOD)")
    landmarks: Literal[5, 68] | None = Field(None, description="alignment landmarks (default 5)")
    top_k: int | None = Field(None, ge=1, le=100, description="candidates returned per face (default 5)")
    keep_images: bool | None = Field(None, description="store enrolled photos (default false: embeddings only)")
    min_face_px: int | None = Field(None, ge=20, le=2000, description="find faces down to this size in pixels "
                                    "(slower on large photos); default: chosen from the photo's size")
    unknown_retention_s: int | None = Field(None, ge=0, le=366 * 86400,
                                            description="how long unmatched faces are kept (0: not kept)")
    refuse_duplicates: bool | None = Field(None, description="refuse an enrollment whose face matches another "
                                           "person of the event (default: warn only)")


class EventCreate(EventSettings):
    name: str = Name


class EventUpdate(EventSettings):
    name: str | None = Field(None, min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")


class EventSettingsOut(BaseModel):
    threshold: float
    detector: str
    landmarks: int
    top_k: int
    keep_images: bool
    min_face_px: int | None
    unknown_retention_s: int
    refuse_duplicates: bool


class EventOut(BaseModel):
    id: str
    name: str
    settings: EventSettingsOut
    version: int = Field(description="increases with every change to the event's people or images")
    person_count: int | None = None
    image_count: int | None = None
    created_at: datetime
    updated_at: datetime


class Page(BaseModel):
    total: int
    limit: int
    offset: int


class EventList(Page):
    items: list[EventOut]


class Box(BaseModel):
    left: int
    top: int
    right: int
    bottom: int
    width: int
    height: int


class ImageOut(BaseModel):
    id: str
    box: list[int] | None = None
    quality: dict[str, Any] | None = None
    model: str
    model_version: str
    image_kept: bool
    created_at: datetime


class PersonOut(BaseModel):
    id: str
    event_id: str
    name: str
    image_count: int | None = None
    images: list[ImageOut] | None = None
    created_at: datetime
    updated_at: datetime


class Warning_(BaseModel):
    code: str
    file: str | None = None
    person_id: str | None = None
    person_name: str | None = None
    distance: float | None = None


class EnrollOut(PersonOut):
    added: list[ImageOut]
    warnings: list[Warning_] = Field(description="possible_duplicate: the face already matches another person")


class PersonList(Page):
    items: list[PersonOut]


class Rename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Name


class CandidateOut(BaseModel):
    person_id: str
    person_name: str | None
    image_id: str
    distance: float = Field(description="Euclidean distance between 128-d embeddings")
    confidence: float = Field(description="1 / (1 + exp(12 (distance - 0.6))): in (0, 1), strictly decreasing "
                              "in the distance, 0.5 at the dlib model's reference threshold 0.6")
    passed: bool | None = None


class FaceResult(BaseModel):
    box: Box
    quality: dict[str, Any]
    match: CandidateOut | None = Field(description="the nearest person (even when it does not pass)")
    passed: bool = Field(description="the nearest person is within the threshold")
    candidates: list[CandidateOut]
    unknown_id: str | None = Field(description="set when the face matched nobody and was kept as unknown")


class IdentifyOut(BaseModel):
    event_id: str
    threshold: float
    top_k: int
    model: str
    model_version: str
    gallery_size: dict[str, int]
    faces: list[FaceResult]
    timings_ms: dict[str, float]


class VerifyOut(BaseModel):
    person_id: str
    person_name: str
    same_person: bool
    distance: float
    confidence: float
    threshold: float
    box: Box
    faces_in_probe: int
    model: str
    model_version: str


class UnknownOut(BaseModel):
    id: str
    event_id: str
    box: list[int] | None
    quality: dict[str, Any] | None
    best_distance: float | None
    model: str
    model_version: str
    created_at: datetime
    expires_at: datetime


class UnknownList(Page):
    items: list[UnknownOut]


class Confirm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: str | None = Field(None, max_length=32, description="enroll into this existing person")
    name: str | None = Field(None, min_length=1, max_length=200, pattern=r"^\S(.*\S)?$",
                             description="or create a new person with this name")


class Deleted(BaseModel):
    deleted: dict[str, int]


class ResetOut(Deleted):
    event: EventOut
