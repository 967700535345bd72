from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bio_shared.settings import CommonSettings


class FaceRecognitionSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="BIO_FACE_RECOGNITION_", extra="ignore")

    # pixels of a face photo, checked from the header before decoding (a 6000 x 4000 camera photo is 24 MP)
    max_image_pixels: int = Field(25_000_000, ge=10_000, le=100_000_000)
    max_side: int = Field(1024, ge=64, le=8192, description="longer side of a normalised image, in pixels")
    # detection: the HOG detector sees the photo resized to at most this many pixels (at most 2x upsampled)
    detect_max_pixels: int = Field(1_000_000, ge=50_000, le=40_000_000)
    # the dlib ResNet's forward pass: its weights run with torch (several times faster), or dlib itself
    descriptor: Literal["torch", "dlib"] = "torch"
    # defaults of a new event
    default_threshold: float = Field(0.6, gt=0, le=2)
    default_top_k: int = Field(5, ge=1, le=100)
    default_unknown_retention_s: int = Field(7 * 24 * 3600, ge=0)
    # enrollment quality checks
    enroll_min_face_px: int = Field(40, ge=1, description="smaller faces are refused (face_too_small)")
    enroll_min_sharpness: float = Field(12.0, ge=0, description="variance of the Laplacian of the aligned "
                                        "150 px face; below it the face is refused as too blurred")
    max_images_per_request: int = Field(20, ge=1, le=200)
    max_zip_entries: int = Field(10_000, ge=1, description="files in one enrollment archive")
    max_zip_uncompressed_bytes: int = Field(2 << 30, ge=1 << 20, description="bytes one archive job may "
                                            "decompress in total (counted as read, never from the headers)")
    # cached embedding matrices per process (least recently used event dropped first; 100,000 people = 50 MB)
    gallery_cache_events: int = Field(32, ge=1, le=10_000)
    unknown_purge_interval_s: float = Field(600.0, gt=0)
    # 1:N search: the exact matrix for events with fewer embeddings, the approximate index (faiss IVF-SQ8,
    # exact re-ranking on the stored embeddings) from here on; an index is kept until half this size
    exact_search_below: int = Field(20_000, ge=1)
    ann_rerank: int = Field(32, ge=1, le=1000, description="index candidates re-scored on the stored embeddings")
    ann_probe_share: float = Field(0.2, gt=0, le=1, description="share of the IVF lists scanned per probe")
    ann_snapshot_every: int = Field(1000, ge=1, description="changes to an index before it is persisted "
                                    "again (the maintenance loop also persists any changed index)")
    ann_maintenance_interval_s: float = Field(300.0, gt=0, description="how often changed indexes are "
                                              "persisted and outgrown ones rebuilt")
