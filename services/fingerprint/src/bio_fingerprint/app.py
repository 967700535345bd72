"""create_app(settings) -> FastAPI for the fingerprint service."""

from typing import cast

from fastapi import FastAPI

from bio_fingerprint.api import routers
from bio_fingerprint.models import FingerprintOutput, FingerprintTemplate, Job
from bio_fingerprint.runtime import NAME, PREFIX, attach_state, state_of
from bio_fingerprint.service import search
from bio_fingerprint.service.jobs import register_jobs
from bio_fingerprint.service.subjects import FingerprintSubjects
from bio_fingerprint.service.sync import register_sync_jobs
from bio_fingerprint.settings import FingerprintSettings
from bio_shared.app import create_service_app
from bio_shared.runtime import ServiceRuntime, build_runtime
from bio_shared.services import ServiceSpec
from bio_shared.subjects import subjects_router


def build(settings: FingerprintSettings | None = None) -> ServiceRuntime:
    # ServiceRuntime is invariant in its settings type: the service reads its own through runtime.settings_of
    rt = cast(ServiceRuntime, build_runtime(NAME, "bio_fingerprint", PREFIX, settings or FingerprintSettings(), Job))
    rt.owned_models.extend([FingerprintTemplate, FingerprintOutput])
    attach_state(rt)
    register_jobs(rt)
    register_sync_jobs(rt)
    search.configure(rt)
    return rt


def create_app(settings: FingerprintSettings | None = None) -> FastAPI:
    rt = build(settings)
    state = state_of(rt)
    return create_service_app(rt, title="Fingerprint service",
                              routers=[*routers(rt), subjects_router(rt, FingerprintSubjects(rt))],
                              on_startup=state.models.load,
                              description="Fingerprint enhancement, minutiae templates (ISO/IEC 19794-2), "
                                          "1:1 verification and 1:N identification at a requested decision FMR / "
                                          "FPIR, distortion tools.")


SERVICE = ServiceSpec(name=NAME, prefix=PREFIX, package="bio_fingerprint", create_app=create_app,
                      settings_cls=FingerprintSettings)
