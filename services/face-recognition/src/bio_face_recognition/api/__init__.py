"""The face recognition API: one router per sub-domain, each guarded by the gateway identity."""

from __future__ import annotations

from fastapi import APIRouter

from bio_face_recognition.api import bulk, enrollment, events, people, recognition, unknowns
from bio_face_recognition.api.jobs import normalize_jobs
from bio_shared.runtime import ServiceRuntime


def routers(rt: ServiceRuntime) -> list[APIRouter]:
    return [normalize_jobs(rt), events.router, people.router, enrollment.router, recognition.router,
            unknowns.router, bulk.router]
