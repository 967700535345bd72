"""Routers of the contour mask service: contours (job or synchronous), outputs (downloads), and the
platform's normalize job."""

from fastapi import APIRouter

from bio_contour_mask.api import contours, outputs
from bio_contour_mask.runtime import ContourRuntime
from bio_shared.uploads import normalize_router


def routers(rt: ContourRuntime) -> list[APIRouter]:
    what = f"RGB, longer side at most {rt.state.settings.max_side} px"
    return [normalize_router(rt, what=what), contours.router, outputs.router]
