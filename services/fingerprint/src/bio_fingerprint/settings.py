from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from bio_shared.settings import CommonSettings


class FingerprintSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="BIO_FINGERPRINT_", extra="ignore")

    enroll_min_quality: int = 40  # enrollment refuses prints under this quality (0-100) with 422
    probe_min_quality: int = 11  # verify / identify refuse probes under this (no usable print)
    enhancement: str = "classic"  # default enhancement preset: classic (fast Gabor) or learned (pyfing DNNs)
    extractor: str = "leader"  # minutiae: leader (pyfing's learned extractor, accurate, ~0.25 s on one core) or classic (~10 ms)
    default_fmr: float = 0.001  # decision threshold of verify / identify when the caller gives none
    output_retention_days: float = 30.0  # processed outputs older than this are removed by the clean-up
    cleanup_interval_s: float = 3600.0  # Celery beat period of the clean-up task
    sync_max_files: int = 5  # files per synchronous process-and-enroll call
    batch_max_files: int = 500  # files per batch job
    load_classifier: bool = True  # load the distortion classifier at start-up
    default_fpir: float = 0.001  # identify: false-positive identification rate when the caller gives none
    # score-to-FMR table the thresholds come from (engine/decision.py): full-area (full impressions) or
    # small-area (fitted on small / tiny crops too: requested rates hold on small sensors, at higher thresholds)
    score_table: Literal["full-area", "small-area"] = "full-area"
    distortion_min_quality: int = 11  # /distortion refuses images under this quality (not a print; as probes)
    max_image_pixels: int = 4_000_000  # a 500 dpi print is a few megapixels; checked from the header
    # 1:N at scale (two-stage search, engine/shards.py): galleries of more templates than index_above are
    # searched through the MCC-LSH prefilter, matching `penetration` of each shard in full; `shards` > 1
    # cuts them into that many shards (by template id), searched by the shard workers in the distributed
    # mode (`bio-fingerprint shard-worker --shard I`, queue fingerprint-shard-I) and in-process otherwise.
    index_above: int = Field(5000, ge=0)
    penetration: float = Field(0.05, gt=0, le=1)
    shards: int = Field(1, ge=1, le=256)
    shard_timeout_s: float = Field(20.0, gt=0)  # a shard's answer later than this: identify answers 503 fan_out_timeout

    @model_validator(mode="after")
    def _score_table_exists(self) -> "FingerprintSettings":
        from bio_fingerprint.engine.decision import table_path

        if not table_path(self.extractor, self.score_table).is_file():
            raise ValueError(f"no {self.score_table} score table for the {self.extractor} extractor")
        return self
