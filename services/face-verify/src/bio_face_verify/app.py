"""create_app(settings) -> FastAPI for the face verify service."""

from fastapi import FastAPI

from bio_face_verify.api import routers
from bio_face_verify.models import Job
from bio_face_verify.runtime import NAME, PREFIX, FaceVerifyRuntime, FaceVerifyState
from bio_face_verify.service.jobs import load_models, register_jobs
from bio_face_verify.settings import FaceVerifySettings
from bio_shared.app import create_service_app
from bio_shared.runtime import build_runtime
from bio_shared.services import ServiceSpec


def build(settings: FaceVerifySettings | None = None) -> FaceVerifyRuntime:
    settings = settings or FaceVerifySettings()
    rt: FaceVerifyRuntime = build_runtime(NAME, "bio_face_verify", PREFIX, settings, Job,
                                          state=FaceVerifyState(settings=settings))
    register_jobs(rt)
    return rt


def create_app(settings: FaceVerifySettings | None = None) -> FastAPI:
    rt = build(settings)
    # Models are loaded once per process: here when jobs run in this process (embedded mode), in each
    # Celery worker child otherwise (bio_face_verify.tasks).
    on_startup = (lambda: load_models(rt)) if rt.settings.jobs_in_process else None
    return create_service_app(rt, title="Face verification service", routers=routers(rt), on_startup=on_startup,
                              description="1:1 face verification: does this photo show the same person as that one? "
                                          "MTCNN detection, a frontal-pose check (68 landmarks, solvePnP), FaceNet or "
                                          "dlib embeddings.")


SERVICE = ServiceSpec(name=NAME, prefix=PREFIX, package="bio_face_verify", create_app=create_app,
                      settings_cls=FaceVerifySettings)
