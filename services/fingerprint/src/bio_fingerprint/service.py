"""Fingerprint use cases; no FastAPI imports."""

from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import register_normalize_job

from bio_fingerprint.engine.normalize import normalize_print


def register_jobs(rt: ServiceRuntime) -> None:
    register_normalize_job(rt, normalize_print, mode="gray")
