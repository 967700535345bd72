from fastapi import APIRouter

from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import normalize_router


def routers(rt: ServiceRuntime) -> list[APIRouter]:
    return [normalize_router(rt, what="grayscale, contrast stretched")]
