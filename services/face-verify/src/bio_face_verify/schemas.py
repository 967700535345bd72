"""Pydantic models of the face verify API (the job envelope is bio_shared's JobOut)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from bio_shared.schemas import JobOut


class Box(BaseModel):
    x1: float
    y1: float
    x2: float
    y2: float


class ImageResult(BaseModel):
    filename: str | None = None
    format: str
    width: int
    height: int
    faces_found: int = Field(description="faces counted (confidence and size above the service's minimum)")
    confidence: float = Field(description="MTCNN probability of the chosen face")
    box: Box = Field(description="face box in pixels of the uploaded image (after EXIF orientation)")
    landmarks: dict[str, list[float]] = Field(
        description="left_eye, right_eye, nose, mouth_left, mouth_right as seen in the image: [x, y]")
    yaw: float = Field(description="degrees; positive: nose towards the image's right")
    pitch: float = Field(description="degrees; positive: looking up")
    roll: float = Field(description="degrees; angle of the eye line")
    frontal: bool
    pose_violations: list[str]


class VerificationResult(BaseModel):
    verified: bool = Field(description="euclidean_distance <= threshold")
    verification_score: float = Field(
        ge=0, le=1, description="1 / (1 + exp((euclidean_distance - threshold) / scale)), scale 0.06 for dlib and "
                                "0.1 for FaceNet: exactly 0.5 at the threshold, verified iff >= 0.5")
    euclidean_distance: float
    cosine_similarity: float
    threshold: float = Field(description="per model: dlib-resnet-v1 0.6, facenet-vggface2 1.1")
    model: str = Field(examples=["dlib-resnet-v1"])
    model_info: dict
    detector: str = Field(examples=["mtcnn"])
    detector_info: dict
    pose_policy: Literal["reject", "flag"]
    multiple_faces: Literal["error", "largest"]
    pose_tolerance_deg: dict[str, float]
    images: dict[str, ImageResult]
    timings_ms: dict[str, float]


class VerifyJobOut(JobOut):
    """A verification job; ``result`` is a VerificationResult once it has succeeded."""
