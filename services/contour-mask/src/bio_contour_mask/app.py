"""create_app(settings) -> FastAPI for the contour mask service."""

from fastapi import FastAPI

from bio_shared.app import create_service_app
from bio_shared.runtime import ServiceRuntime, build_runtime
from bio_shared.services import ServiceSpec

from bio_contour_mask.api import routers
from bio_contour_mask.models import Job
from bio_contour_mask.service import register_jobs
from bio_contour_mask.settings import ContourMaskSettings

NAME, PREFIX = "contour_mask", "/api/v1/contours"


def build(settings: ContourMaskSettings | None = None) -> ServiceRuntime:
    rt = build_runtime(NAME, "bio_contour_mask", PREFIX, settings or ContourMaskSettings(), Job)
    register_jobs(rt)
    return rt


def create_app(settings: ContourMaskSettings | None = None) -> FastAPI:
    rt = build(settings)
    return create_service_app(rt, title="Contour mask service", routers=routers(rt),
                              description="Face landmarks, face parsing (skin, eyes, lips, hair...) and contour masks.")


SERVICE = ServiceSpec(name=NAME, prefix=PREFIX, package="bio_contour_mask", create_app=create_app,
                      settings_cls=ContourMaskSettings)
