"""Routers of the face-verify service: verification, and the platform's normalize job."""

from fastapi import APIRouter

from bio_face_verify.api import verify
from bio_face_verify.runtime import FaceVerifyRuntime
from bio_shared.uploads import normalize_router


def routers(rt: FaceVerifyRuntime) -> list[APIRouter]:
    what = f"RGB, longer side at most {rt.state.settings.max_side} px"
    return [verify.router, normalize_router(rt, what=what)]
