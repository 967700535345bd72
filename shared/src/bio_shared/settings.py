"""Settings shared by every process of the platform.

Each process has one settings class. Service classes subclass :class:`CommonSettings` with their
own env prefix (``BIO_FINGERPRINT_``...). A variable with the service prefix wins over the common
``BIO_`` one, so ``BIO_DATABASE_URL`` configures everything and ``BIO_FINGERPRINT_DATABASE_URL``
can point one service elsewhere.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

DEV_ENVS = {"development", "test"}


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BIO_", extra="ignore", case_sensitive=False,
                                      populate_by_name=True)

    env: Literal["development", "test", "production"] = "development"
    var_dir: Path = Path("var")
    database_url: str = ""  # empty -> SQLite file under var_dir
    redis_url: str = ""  # empty -> embedded mode: in-process jobs, in-memory rate limits
    blob_dir: Path | None = None  # empty -> var_dir/blobs
    internal_secret: str = ""  # signs the identity the gateway forwards to services
    # Key-encryption keys for data at rest: "id:base64key,..." (the last is current), or a key file
    # {"current": id, "keys": {id: base64}}; development creates var/secrets/kek.json.
    kek: str = Field(default="", repr=False)
    kek_file: Path | None = None
    identity_ttl_s: int = 60
    log_level: str = "INFO"
    log_json: bool = True
    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    min_image_side: int = 16
    job_time_limit_s: int = 300
    # Synchronous endpoints wait this long for their job, then answer 503 time_budget_exceeded with
    # the job's status URL (the job goes on).
    sync_budget_s: float = Field(default=20.0, gt=0, le=300)
    job_max_attempts: int = 3
    job_lease_grace_s: int = 30
    job_redispatch_after_s: int = 300
    job_dispatch_retry_s: int = 10  # a job whose dispatch failed (broker down) is sent again after this
    job_reap_interval_s: float = 30.0
    # Fault-injection for tests of worker loss: jobs sleep this long once claimed. Ignored in production.
    job_debug_delay_s: float = 0.0
    celery_visibility_timeout_s: int = 3600
    # auto: Celery when a Redis URL is set, in-process threads otherwise
    jobs_mode: Literal["auto", "celery", "inprocess"] = "auto"
    embedded_job_threads: int = 2
    data_dir: Path = Field(default=Path("../shared/data"),
                           validation_alias=AliasChoices("BIO_DATA_DIR", "BIOMETRICS_DATA_DIR"))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("env_prefix", "BIO_").upper() != "BIO_":
            sources.append(EnvSettingsSource(settings_cls, env_prefix="BIO_", case_sensitive=False))
        sources += [dotenv_settings, file_secret_settings]
        return tuple(sources)

    @model_validator(mode="after")
    def _fill_defaults(self) -> CommonSettings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.var_dir / 'bio.db').as_posix()}"
        if self.blob_dir is None:
            self.blob_dir = self.var_dir / "blobs"
        if not self.internal_secret:
            if self.env not in DEV_ENVS:
                raise ValueError("BIO_INTERNAL_SECRET must be set outside development")
            self.internal_secret = dev_secret(self.var_dir, "internal")
        return self

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: jobs run in-process, limits are kept in memory."""
        return not self.redis_url

    @property
    def jobs_in_process(self) -> bool:
        return self.jobs_mode == "inprocess" or (self.jobs_mode == "auto" and not self.redis_url)

    @property
    def is_production(self) -> bool:
        return self.env == "production"


def dev_secret(var_dir: Path, name: str) -> str:
    """A random development secret kept under var/ so tokens survive a restart of `make run`.

    Never used in production: settings refuse to start there without explicit secrets.
    """
    path = Path(var_dir) / "secrets" / f"{name}.key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        tmp = path.with_name(f".{name}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(value)
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # fails if another process created it first: its value wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return path.read_text().strip()
