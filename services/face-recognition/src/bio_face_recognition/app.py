"""create_app(settings) -> FastAPI for the face recognition service."""

from fastapi import FastAPI

from bio_shared.app import create_service_app
from bio_shared.runtime import ServiceRuntime, build_runtime
from bio_shared.services import ServiceSpec

from bio_face_recognition.api import routers
from bio_face_recognition.models import Job
from bio_face_recognition.service import register_jobs
from bio_face_recognition.settings import FaceRecognitionSettings

NAME, PREFIX = "face_recognition", "/api/v1/faces"


def build(settings: FaceRecognitionSettings | None = None) -> ServiceRuntime:
    rt = build_runtime(NAME, "bio_face_recognition", PREFIX, settings or FaceRecognitionSettings(), Job)
    register_jobs(rt)
    return rt


def create_app(settings: FaceRecognitionSettings | None = None) -> FastAPI:
    rt = build(settings)
    return create_service_app(rt, title="Face recognition service", routers=routers(rt),
                              description="Face detection, embeddings, gallery enrolment and 1:N identification.")


SERVICE = ServiceSpec(name=NAME, prefix=PREFIX, package="bio_face_recognition", create_app=create_app,
                      settings_cls=FaceRecognitionSettings)
