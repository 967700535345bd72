from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bio_shared.settings import CommonSettings


class FaceVerifySettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="BIO_FACE_VERIFY_", extra="ignore")

    # a face photo needs no more than a large camera frame: bigger headers are refused before decoding
    max_image_pixels: int = Field(25_000_000, ge=4096, description="largest image (pixels) accepted, from its header")
    max_side: int = Field(1024, ge=64, le=8192, description="longer side of a normalised or analysed image, in pixels")
    # A verification of two photos takes well under a second: a stuck job is killed much sooner than
    # the platform's default 300 s.
    job_time_limit_s: int = 60
    model: Literal["auto", "facenet", "dlib"] = Field(
        "auto", description="auto: FaceNet when its VGGFace2 weights are in $TORCH_HOME/checkpoints, else dlib")
    facenet_weights: Path | None = Field(
        None, description="FaceNet weights file; default $TORCH_HOME/checkpoints/20180402-114759-vggface2.pt")
    min_face_px: int = Field(40, ge=12, description="smallest face (shorter box side, analysed pixels) accepted")
    min_confidence: float = Field(0.9, ge=0.5, le=1.0, description="detections below this are not faces")
    max_yaw_deg: float = Field(30.0, gt=0, le=90)
    max_pitch_deg: float = Field(30.0, gt=0, le=90)
    max_roll_deg: float = Field(30.0, gt=0, le=90)
    max_wait_s: float = Field(30.0, ge=0, le=300, description="longest ?wait= a caller may ask for")
