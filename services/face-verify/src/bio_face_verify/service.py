"""Face verify use cases; no FastAPI imports."""

from functools import partial

from bio_shared.images import Mode
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import register_normalize_job

from bio_face_verify.engine.normalize import normalize_probe_photo

NORMALIZE_MODE: Mode = "rgb"


def register_jobs(rt: ServiceRuntime) -> None:
    transform = partial(normalize_probe_photo, max_side=rt.settings.max_side)
    register_normalize_job(rt, transform, mode=NORMALIZE_MODE)
