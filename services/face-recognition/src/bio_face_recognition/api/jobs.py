"""The image-normalisation job every service offers (shared router), for this service's RGB photos."""

from __future__ import annotations

from fastapi import APIRouter

from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import normalize_router


def normalize_jobs(rt: ServiceRuntime) -> APIRouter:
    return normalize_router(rt, what=f"RGB, longer side at most {rt.settings.max_side} px")  # type: ignore[attr-defined]
