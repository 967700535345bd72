"""Pydantic models of the face verify API (the job envelope is bio_shared's JobOut; its result is a
VerificationResult)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FaceBox(BaseModel):
    """A face box in integer pixels of the uploaded image (after EXIF orientation), clipped to it."""

    model_config = ConfigDict(from_attributes=True, title="FaceBox")
    x: int
    y: int
    width: int
    height: int


class VerifyImageResult(BaseModel):
    model_config = ConfigDict(from_attributes=True, title="VerifyImageResult")
    filename: str | None = None
    format: str
    width: int
    height: int
    faces_found: int = Field(description="faces counted (confidence and size above the service's minimum)")
    confidence: float = Field(description="MTCNN probability of the chosen face")
    box: FaceBox = Field(description="face box {x, y, width, height} in pixels of the uploaded image")
    landmarks: dict[str, list[float]] = Field(
        description="left_eye, right_eye, nose, mouth_left, mouth_right as seen in the image: [x, y]")
    yaw: float = Field(description="degrees (68 landmarks + solvePnP); positive: nose towards the image's right")
    pitch: float = Field(description="degrees; positive: looking up")
    roll: float = Field(description="degrees; positive: the eye line runs down to the image's right")
    frontal: bool
    pose_violations: list[str]


class VerificationResult(BaseModel):
    model_config = ConfigDict(from_attributes=True, title="VerificationResult")
    verified: bool = Field(description="euclidean_distance <= threshold")
    verification_score: float = Field(
        ge=0, le=1, description="1 / (1 + exp(slope * (euclidean_distance - midpoint))): for dlib_resnet_v1 the "
                                "platform's mapping fitted on labelled face pairs (model_info.score), the chance of "
                                "'same person' at even odds; for FaceNet slope 10, midpoint = threshold")
    euclidean_distance: float
    cosine_similarity: float
    threshold: float = Field(description="per model: dlib_resnet_v1 0.6, facenet-vggface2 1.1")
    model: str = Field(examples=["dlib_resnet_v1"])
    model_info: dict
    detector: str = Field(examples=["mtcnn"])
    detector_info: dict
    pose_policy: Literal["reject", "flag"]
    multiple_faces: Literal["error", "largest"]
    pose_tolerance_deg: dict[str, float]
    images: dict[str, VerifyImageResult]
    timings_ms: dict[str, float]

