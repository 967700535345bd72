from fastapi import APIRouter

from bio_face_verify.api.verify import verify_router
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import normalize_router


def routers(rt: ServiceRuntime) -> list[APIRouter]:
    what = f"RGB, longer side at most {rt.settings.max_side} px"
    return [verify_router(rt), normalize_router(rt, what=what)]
