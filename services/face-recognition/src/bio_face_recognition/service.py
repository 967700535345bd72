"""Face recognition use cases; no FastAPI imports."""

from functools import partial

from bio_shared.images import Mode
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import register_normalize_job

from bio_face_recognition.engine.normalize import normalize_face_photo

NORMALIZE_MODE: Mode = "rgb"


def register_jobs(rt: ServiceRuntime) -> None:
    transform = partial(normalize_face_photo, max_side=rt.settings.max_side)
    register_normalize_job(rt, transform, mode=NORMALIZE_MODE)
