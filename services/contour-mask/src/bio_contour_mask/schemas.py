"""Request and response models of the contour API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bio_contour_mask.engine.pipeline import ALL_REGION_NAMES

Format = Literal["svg", "png", "json"]


class ContourOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    regions: list[str] | None = Field(None, description=f"regions to return (default: every region the inputs "
                                      f"define). Known: {', '.join(ALL_REGION_NAMES)}. Left/right are the "
                                      "subject's: left_eye is the person's left eye")
    formats: list[Format] = Field(["svg", "png", "json"], min_length=1,
                                  description="outputs to link in the result (all are stored)")
    coordinate_space: Literal["aligned", "original"] = Field(
        "aligned", description="aligned: the upright square crop (see transform); original: the input image")
    smoothing: float = Field(0.5, ge=0, le=1, description="0: straight polygons, 1: full curves")
    style: Literal["filled", "outline", "mask"] = Field("filled", description="SVG styling")
    aligned_size: int = Field(512, ge=64, le=2048, description="side of the aligned crop, in pixels")
    margin: float = Field(0.4, ge=0, le=1.5, description="margin around the face box, as a fraction of its side")
    label_order: Literal["auto", "face-parsing", "celebamask-hq"] = Field(
        "auto", description="class order of the label map: face-parsing (1 skin, 2 l_brow, ... 17 hair, 18 hat), "
        "celebamask-hq (g_mask.py: 1 skin, 2 nose, ... 17 neck, 18 cloth), or auto (from the face geometry)")
    landmarks_normalized: bool = Field(False, description="landmarks are in [0, 1] of width/height, not pixels")
    inline_svg: bool = Field(True, description="include the SVG base64 in the job status")


class ContourJsonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_base64: str = Field(..., description="the face image (JPEG, PNG, ...), base64")
    landmarks: list[dict[str, float] | list[float]] | None = Field(
        None, description="68 (iBUG), 468 or 478 (MediaPipe) points as {x, y}, image pixels")
    label_map_base64: str | None = Field(None, description="CelebAMask-HQ label map PNG, base64")
    options: ContourOptions = Field(default_factory=ContourOptions)
    filename: str | None = None
