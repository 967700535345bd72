"""Enrollment: a new person with photos, or more photos of a person (one embedding per photo)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from bio_face_recognition import schemas as S
from bio_face_recognition.api.deps import EVENTS, IdentityDep, RuntimeDep, read_uploads, require_identity
from bio_face_recognition.exceptions import (
    DuplicatePerson,
    EventNotFound,
    FaceTooBlurred,
    FaceTooSmall,
    InvalidName,
    MultipleFaces,
    NoFace,
    NoImages,
    PersonNameTaken,
    PersonNotFound,
    TooManyImages,
    error_responses,
)
from bio_face_recognition.service.sync_jobs import ENROLL, run_now
from bio_shared.errors import TimeBudgetExceeded
from bio_shared.text import clean_name

router = APIRouter(prefix=EVENTS, tags=["face_recognition: enrollment"], dependencies=[require_identity])
ENROLL_ERRORS = (EventNotFound, NoImages, TooManyImages, NoFace, MultipleFaces, FaceTooSmall, FaceTooBlurred,
                 DuplicatePerson, TimeBudgetExceeded)
Files = Annotated[list[UploadFile], File(description="one face per photo; identical pictures are skipped")]
Largest = Annotated[bool, Form(description="several faces in a photo: take the largest")]
RefuseDuplicates = Annotated[bool | None, Form(description="refuse a face that matches another person "
                                                           "(default: the event's setting)")]


@router.post("/{event_id}/people", status_code=201, response_model=S.FaceEnrollOut,
             summary="Add a person with one or more face photos (each photo is one embedding)",
             operation_id="face_recognition_add_person",
             responses=error_responses(*ENROLL_ERRORS, PersonNameTaken, InvalidName, decode=True))
async def add_person(event_id: str, rt: RuntimeDep, identity: IdentityDep,
                     name: Annotated[str, Form(max_length=400)], files: Files, largest: Largest = False,
                     refuse_duplicates: RefuseDuplicates = None) -> S.FaceEnrollOut:
    params = {"name": clean_name(name, field="name"), "largest": largest, "refuse_duplicates": refuse_duplicates}
    ups = await read_uploads(rt, files)
    return S.FaceEnrollOut.model_validate(await run_in_threadpool(run_now, rt, identity, ENROLL, event_id, ups, params))


@router.post("/{event_id}/people/{person_id}/images", status_code=201, response_model=S.FaceEnrollOut,
             summary="Add face photos to a person (pictures the person already has are skipped)",
             operation_id="face_recognition_add_images",
             responses=error_responses(*ENROLL_ERRORS, PersonNotFound, decode=True))
async def add_images(event_id: str, person_id: str, rt: RuntimeDep, identity: IdentityDep, files: Files,
                     largest: Largest = False, refuse_duplicates: RefuseDuplicates = None) -> S.FaceEnrollOut:
    params = {"person_id": person_id, "largest": largest, "refuse_duplicates": refuse_duplicates}
    ups = await read_uploads(rt, files)
    return S.FaceEnrollOut.model_validate(await run_in_threadpool(run_now, rt, identity, ENROLL, event_id, ups, params))
