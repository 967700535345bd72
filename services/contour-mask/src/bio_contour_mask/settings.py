from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bio_shared.settings import CommonSettings


class ContourMaskSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="BIO_CONTOUR_MASK_", extra="ignore")

    # a face photo needs no more than a large camera frame: bigger headers are refused before decoding
    max_image_pixels: int = Field(25_000_000, ge=4096, description="largest image (pixels) accepted, from its header")
    max_side: int = Field(1024, ge=64, le=8192, description="longer side of a normalised image, in pixels")
    sync_max_pixels: int = Field(1_100_000, ge=4096, description="largest image (pixels) the synchronous "
                                 "endpoint accepts; larger ones go through a job")
    cache_enabled: bool = Field(True, description="reuse results of near-identical requests")
    cache_candidates: int = Field(500, ge=1, le=100_000, description="cache entries compared per lookup, newest first")
    inline_svg_max_bytes: int = Field(512 * 1024, ge=0, description="largest SVG returned base64 in the job status")
