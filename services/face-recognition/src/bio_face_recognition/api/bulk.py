"""Bulk enrollment from a zip archive, as a background job with a per-file report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bio_face_recognition.api.deps import EVENTS, IdentityDep, RuntimeDep, require_identity
from bio_face_recognition.exceptions import EventNotFound, NotAZip, OverlappingEntries, TooManyFiles, error_responses
from bio_face_recognition.service import bulk
from bio_shared.app import accepted
from bio_shared.errors import PayloadTooLarge
from bio_shared.schemas import JobOut
from bio_shared.uploads import read_upload

router = APIRouter(prefix=EVENTS, tags=["face_recognition: bulk"], dependencies=[require_identity])


@router.post("/{event_id}/enroll-zip", status_code=202, response_model=JobOut, operation_id="face_recognition_enroll_zip",
             summary="Bulk enrollment from a zip (one folder per person) as a background job with a per-file report",
             responses=error_responses(EventNotFound, NotAZip, TooManyFiles, OverlappingEntries, PayloadTooLarge))
async def enroll_zip(event_id: str, rt: RuntimeDep, identity: IdentityDep,
                     file: Annotated[UploadFile, File(description="zip: one folder per person")],
                     largest: Annotated[bool, Form()] = False) -> JSONResponse:
    data = await read_upload(file, rt.settings.max_upload_bytes)
    job = await run_in_threadpool(bulk.submit_zip, rt, identity, event_id, data, file.filename, largest)
    return accepted(job, rt)
