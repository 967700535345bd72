"""create_app(settings) -> FastAPI for the face recognition service."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from bio_face_recognition.api import routers
from bio_face_recognition.models import OWNED_MODELS, Job
from bio_face_recognition.runtime import NAME, PREFIX, FaceState, face_state, new_state
from bio_face_recognition.service.bulk import register_enroll_zip
from bio_face_recognition.service.galleries import start_index_maintenance
from bio_face_recognition.service.subjects import FaceSubjects
from bio_face_recognition.service.sync_jobs import register_sync_jobs
from bio_face_recognition.service.unknowns import start_purger
from bio_face_recognition.settings import FaceRecognitionSettings
from bio_shared.app import create_service_app
from bio_shared.images import fit_rgb
from bio_shared.runtime import ServiceRuntime, build_runtime
from bio_shared.services import ServiceSpec
from bio_shared.subjects import subjects_router
from bio_shared.uploads import register_normalize_job


def build(settings: FaceRecognitionSettings | None = None) -> ServiceRuntime[FaceState]:
    """The runtime with this service's state and job handlers (API processes, workers and the CLI)."""
    settings = settings or FaceRecognitionSettings()
    rt: ServiceRuntime[FaceState] = build_runtime(NAME, "bio_face_recognition", PREFIX, settings, Job,
                                                   state=new_state(settings))
    rt.owned_models.extend(OWNED_MODELS)
    face_state(rt).galleries.store = rt.blobs  # indexes persist through the sealed store
    register_normalize_job(rt, partial(fit_rgb, max_side=settings.max_side), mode="rgb")
    register_enroll_zip(rt)
    register_sync_jobs(rt)
    return rt


def create_app(settings: FaceRecognitionSettings | None = None) -> FastAPI:
    rt = build(settings)

    def startup() -> None:
        face_state(rt).pipeline  # noqa: B018 - load the dlib models once, before the first request
        start_purger(rt)
        state = face_state(rt)
        start_index_maintenance(state.galleries, rt.sessions, state.settings.ann_maintenance_interval_s)

    return create_service_app(
        rt, title="Face recognition service",
        routers=[*routers(rt), subjects_router(rt, FaceSubjects(rt))], on_startup=startup,
        description="Event galleries of people, enrollment with quality checks, 1:N identification of every "
                    "face in a photo, 1:1 verification, unknown-face labelling and bulk enrollment. dlib HOG/CNN "
                    "detection, 5/68-point alignment, 128-d ResNet embeddings; exact search over a per-process "
                    "cached embedding matrix, an approximate index (faiss IVF-SQ8, exact re-ranking) for "
                    "large events.")


SERVICE = ServiceSpec(name=NAME, prefix=PREFIX, package="bio_face_recognition", create_app=create_app,
                      settings_cls=FaceRecognitionSettings)
