"""Routers of the fingerprint service, one per sub-domain; each requires the gateway identity."""

from __future__ import annotations

from fastapi import APIRouter

from bio_fingerprint.api import admin, distortion, enrollment, matching, outputs, processing, templates
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import normalize_router

ROUTERS = [processing.router, enrollment.router, outputs.router, templates.router, matching.router,
           distortion.router, admin.router]


def routers(rt: ServiceRuntime) -> list[APIRouter]:
    return [normalize_router(rt, what="grayscale, contrast stretched"), *ROUTERS]
