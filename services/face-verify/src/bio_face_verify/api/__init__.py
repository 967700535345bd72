"""Routers of the face-verify service: verification, and the platform's normalize job."""

from fastapi import APIRouter

from bio_face_verify.api import verify
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import normalize_router


def routers(rt: ServiceRuntime) -> list[APIRouter]:
    what = f"RGB, longer side at most {rt.settings.max_side} px"
    return [verify.router, normalize_router(rt, what=what)]
