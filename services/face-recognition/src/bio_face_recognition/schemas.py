"""Request and response models of the face recognition API. Responses are built from the service's
objects (``from_attributes``); every schema has a unique explicit name in the OpenAPI document."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bio_shared.schemas import SafeName


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- events --------------------------------------------------------------------------------------------
class FaceEventSettings(BaseModel):
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


class FaceEventCreate(FaceEventSettings):
    name: SafeName


class FaceEventUpdate(FaceEventSettings):
    name: SafeName | None = None


class FaceEventSettingsOut(Out):
    threshold: float
    detector: str
    landmarks: int
    top_k: int
    keep_images: bool
    min_face_px: int | None
    unknown_retention_s: int
    refuse_duplicates: bool


class FaceEventOut(Out):
    id: str
    name: str
    settings: FaceEventSettingsOut
    version: int = Field(description="increases with every change to the event's people or images")
    person_count: int | None = None
    image_count: int | None = None
    created_at: datetime
    updated_at: datetime


class FaceEventList(BaseModel):
    items: list[FaceEventOut]
    total: int
    limit: int
    offset: int


# -- people and images ---------------------------------------------------------------------------------
class FaceBox(BaseModel):
    """A face in pixels of the uploaded image: top-left corner, width and height."""

    x: int
    y: int
    width: int
    height: int

    @model_validator(mode="before")
    @classmethod
    def _from_corners(cls, value: Any) -> Any:
        if isinstance(value, Sequence) and not isinstance(value, str | bytes) and len(value) == 4:
            left, top, right, bottom = (int(v) for v in value)
            return {"x": left, "y": top, "width": right - left, "height": bottom - top}
        return value


class FaceImageOut(Out):
    id: str
    box: FaceBox | None = None
    quality: dict[str, Any] | None = None
    model: str
    model_version: str
    image_kept: bool
    created_at: datetime


class FacePersonOut(Out):
    id: str
    event_id: str
    name: str
    image_count: int | None = None
    images: list[FaceImageOut] | None = None
    created_at: datetime
    updated_at: datetime


class FaceEnrollWarning(BaseModel):
    code: str
    file: str | None = None
    person_id: str | None = None
    person_name: str | None = None
    distance: float | None = None


class FaceSkippedImage(BaseModel):
    code: Literal["duplicate_image"]
    file: str | None = None
    index: int
    image_id: str | None = Field(None, description="the enrolled image with the same pixels (none when the "
                                 "copy was in the same request)")
    message: str


class FaceEnrollOut(FacePersonOut):
    added: list[FaceImageOut]
    warnings: list[FaceEnrollWarning] = Field(description="possible_duplicate: the face already matches another person")
    skipped: list[FaceSkippedImage] = Field(default_factory=list, description="pictures the person already has "
                                        "(same decoded pixels): not enrolled again")


class FacePersonList(BaseModel):
    items: list[FacePersonOut]
    total: int
    limit: int
    offset: int


class FacePersonRename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: SafeName


# -- recognition ---------------------------------------------------------------------------------------
class FaceCandidateOut(Out):
    person_id: str
    person_name: str | None
    image_id: str
    distance: float = Field(description="Euclidean distance between 128-d embeddings")
    confidence: float = Field(description="the platform's calibrated score of the distance (bio_shared.scoring, "
                              "dlib_resnet_v1): in [0, 1], strictly decreasing in the distance")
    passed: bool = Field(description="the distance is within the threshold")


class FaceResult(Out):
    box: FaceBox
    quality: dict[str, Any]
    match: FaceCandidateOut | None = Field(description="the nearest person when it passes the threshold; null when "
                                       "nobody does (see candidates)")
    passed: bool = Field(description="the nearest person is within the threshold")
    candidates: list[FaceCandidateOut]
    unknown_id: str | None = Field(description="set when the face matched nobody and was kept as unknown")


class FaceIdentifyOut(Out):
    event_id: str
    threshold: float
    top_k: int
    model: str
    model_version: str
    gallery_size: dict[str, int]
    faces: list[FaceResult]
    timings_ms: dict[str, float]


class FaceVerifyOut(Out):
    person_id: str
    person_name: str
    same_person: bool
    distance: float
    confidence: float
    threshold: float
    box: FaceBox
    faces_in_probe: int
    model: str
    model_version: str


# -- unknown faces -------------------------------------------------------------------------------------
class FaceUnknownOut(Out):
    id: str
    event_id: str
    box: FaceBox | None
    quality: dict[str, Any] | None
    best_distance: float | None
    model: str
    model_version: str
    created_at: datetime
    expires_at: datetime


class FaceUnknownList(BaseModel):
    items: list[FaceUnknownOut]
    total: int
    limit: int
    offset: int


class FaceUnknownConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: str | None = Field(None, max_length=32, description="enroll into this existing person")
    name: SafeName | None = Field(None, description="or create a new person with this name")


# -- deletions -----------------------------------------------------------------------------------------
class FaceDeleted(BaseModel):
    """What a deletion removed: rows by kind and stored files (blobs)."""

    deleted: dict[str, int]


class FaceEventReset(FaceDeleted):
    event: FaceEventOut
