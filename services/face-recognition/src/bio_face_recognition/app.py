"""create_app(settings) -> FastAPI for the face recognition service."""

from fastapi import FastAPI

from bio_face_recognition.api import routers
from bio_face_recognition.models import Job
from bio_face_recognition.service import register_jobs
from bio_face_recognition.settings import FaceRecognitionSettings
from bio_face_recognition.subjects import FaceSubjects
from bio_shared.app import create_service_app
from bio_shared.runtime import ServiceRuntime, build_runtime
from bio_shared.services import ServiceSpec
from bio_shared.subjects import subjects_router

NAME, PREFIX = "face_recognition", "/api/v1/faces"


def build(settings: FaceRecognitionSettings | None = None) -> ServiceRuntime:
    rt = build_runtime(NAME, "bio_face_recognition", PREFIX, settings or FaceRecognitionSettings(), Job)
    register_jobs(rt)
    return rt


def create_app(settings: FaceRecognitionSettings | None = None) -> FastAPI:
    rt = build(settings)
    faces = rt.options["faces"]

    def startup() -> None:
        faces.pipeline  # noqa: B018 - load the dlib models once, before the first request
        faces.start_purger()

    return create_service_app(
        rt, title="Face recognition service",
        routers=[*routers(rt), subjects_router(rt, FaceSubjects(rt, faces.delete_person))], on_startup=startup,
        description="Event galleries of people, enrollment with quality checks, 1:N identification of every "
                    "face in a photo, 1:1 verification, unknown-face labelling and bulk enrollment. dlib HOG/CNN "
                    "detection, 5/68-point alignment, 128-d ResNet embeddings; exact search over a per-process "
                    "cached embedding matrix.")


SERVICE = ServiceSpec(name=NAME, prefix=PREFIX, package="bio_face_recognition", create_app=create_app,
                      settings_cls=FaceRecognitionSettings)
