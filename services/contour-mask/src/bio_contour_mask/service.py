"""Contour mask use cases; no FastAPI imports."""

from functools import partial

from bio_shared.images import Mode
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import register_normalize_job

from bio_contour_mask.engine.normalize import normalize_parsing_input

NORMALIZE_MODE: Mode = "rgb"


def register_jobs(rt: ServiceRuntime) -> None:
    transform = partial(normalize_parsing_input, max_side=rt.settings.max_side)
    register_normalize_job(rt, transform, mode=NORMALIZE_MODE)
