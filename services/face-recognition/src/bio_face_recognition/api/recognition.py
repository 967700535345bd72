"""Recognition: every face of a probe against the event (1:N), or one claimed person (1:1)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from bio_face_recognition import schemas as S
from bio_face_recognition.api.deps import EVENTS, IdentityDep, RuntimeDep, require_identity
from bio_face_recognition.exceptions import (
    EventNotFound,
    NoFace,
    PersonHasNoEmbeddings,
    PersonNotFound,
    error_responses,
)
from bio_face_recognition.service.common import Upload
from bio_face_recognition.service.sync_jobs import IDENTIFY, VERIFY, run_now
from bio_shared.errors import TimeBudgetExceeded
from bio_shared.uploads import read_upload

router = APIRouter(prefix=EVENTS, tags=["face_recognition: recognition"], dependencies=[require_identity])
Probe = Annotated[UploadFile, File(description="a photo with one or more faces")]
Threshold = Annotated[float | None, Form(gt=0, le=2, description="overrides the event's")]
Detector = Annotated[Literal["hog", "cnn"] | None, Form(description="overrides the event's")]


@router.post("/{event_id}/identify", response_model=S.FaceIdentifyOut, operation_id="face_recognition_identify_faces",
             summary="Every face of the probe against the event: box, match (when one passes), top-k candidates",
             responses=error_responses(EventNotFound, TimeBudgetExceeded, decode=True))
async def identify(event_id: str, rt: RuntimeDep, identity: IdentityDep, file: Probe, threshold: Threshold = None,
                   top_k: Annotated[int | None, Form(ge=1, le=100)] = None,
                   store_unknowns: Annotated[bool, Form(description="keep unmatched faces as unknowns")] = True,
                   detector: Detector = None) -> S.FaceIdentifyOut:
    probe = Upload(await read_upload(file, rt.settings.max_upload_bytes), file.filename)
    params = {"threshold": threshold, "top_k": top_k, "store_unknowns": store_unknowns, "detector": detector}
    return S.FaceIdentifyOut.model_validate(await run_in_threadpool(run_now, rt, identity, IDENTIFY, event_id,
                                                                    [probe], params))


@router.post("/{event_id}/people/{person_id}/verify", response_model=S.FaceVerifyOut,
             summary="Is the (largest) face of the probe this person?", operation_id="face_recognition_verify_person",
             responses=error_responses(EventNotFound, PersonNotFound, NoFace, PersonHasNoEmbeddings,
                                       TimeBudgetExceeded, decode=True))
async def verify(event_id: str, person_id: str, rt: RuntimeDep, identity: IdentityDep, file: Probe,
                 threshold: Threshold = None, detector: Detector = None) -> S.FaceVerifyOut:
    probe = Upload(await read_upload(file, rt.settings.max_upload_bytes), file.filename)
    params = {"person_id": person_id, "threshold": threshold, "detector": detector}
    return S.FaceVerifyOut.model_validate(await run_in_threadpool(run_now, rt, identity, VERIFY, event_id,
                                                                  [probe], params))
