from fastapi import APIRouter

from bio_face_recognition.api.faces import faces_router
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import normalize_router


def routers(rt: ServiceRuntime) -> list[APIRouter]:
    what = f"RGB, longer side at most {rt.settings.max_side} px"
    return [normalize_router(rt, what=what), faces_router(rt)]
