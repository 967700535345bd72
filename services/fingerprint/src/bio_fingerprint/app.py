"""create_app(settings) -> FastAPI for the fingerprint service."""

from fastapi import FastAPI

from bio_fingerprint.api import routers
from bio_fingerprint.models import FingerprintOutput, FingerprintTemplate, Job
from bio_fingerprint.service import engine, register_jobs
from bio_fingerprint.settings import FingerprintSettings
from bio_fingerprint.subjects import FingerprintSubjects
from bio_shared.app import create_service_app
from bio_shared.runtime import ServiceRuntime, build_runtime
from bio_shared.services import ServiceSpec
from bio_shared.subjects import subjects_router

NAME, PREFIX = "fingerprint", "/api/v1/fingerprint"


def build(settings: FingerprintSettings | None = None) -> ServiceRuntime:
    rt = build_runtime(NAME, "bio_fingerprint", PREFIX, settings or FingerprintSettings(), Job)
    rt.owned_models.extend([FingerprintTemplate, FingerprintOutput])
    register_jobs(rt)
    return rt


def create_app(settings: FingerprintSettings | None = None) -> FastAPI:
    rt = build(settings)
    return create_service_app(rt, title="Fingerprint service", routers=[*routers(rt), subjects_router(rt, FingerprintSubjects(rt))], on_startup=engine(rt).load,
                              description="Fingerprint enhancement, minutiae templates (ISO/IEC 19794-2), "
                                          "1:1 verification and 1:N identification, distortion tools.")


SERVICE = ServiceSpec(name=NAME, prefix=PREFIX, package="bio_fingerprint", create_app=create_app,
                      settings_cls=FingerprintSettings)
