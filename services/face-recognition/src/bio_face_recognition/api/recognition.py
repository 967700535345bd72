"""Recognition: every face of a probe against the event (1:N), or one claimed person (1:1)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from bio_face_recognition import schemas as S
from bio_face_recognition.api.deps import EVENTS, OwnerDep, RuntimeDep, require_identity
from bio_face_recognition.exceptions import (
    EventNotFound,
    NoFace,
    PersonHasNoEmbeddings,
    PersonNotFound,
    error_responses,
)
from bio_face_recognition.service import recognition
from bio_shared.uploads import read_upload

router = APIRouter(prefix=EVENTS, tags=["face_recognition: recognition"], dependencies=[require_identity])
Probe = Annotated[UploadFile, File(description="a photo with one or more faces")]
Threshold = Annotated[float | None, Form(gt=0, le=2, description="overrides the event's")]
Detector = Annotated[Literal["hog", "cnn"] | None, Form(description="overrides the event's")]


@router.post("/{event_id}/identify", response_model=S.FaceIdentifyOut, operation_id="face_recognition_identify_faces",
             summary="Every face of the probe against the event: box, match (when one passes), top-k candidates",
             responses=error_responses(EventNotFound, decode=True))
async def identify(event_id: str, rt: RuntimeDep, owner: OwnerDep, file: Probe, threshold: Threshold = None,
                   top_k: Annotated[int | None, Form(ge=1, le=100)] = None,
                   store_unknowns: Annotated[bool, Form(description="keep unmatched faces as unknowns")] = True,
                   detector: Detector = None) -> S.FaceIdentifyOut:
    data = await read_upload(file, rt.settings.max_upload_bytes)
    result = await run_in_threadpool(recognition.identify, rt, owner, event_id, data, threshold=threshold,
                                     top_k=top_k, store_unknowns=store_unknowns, detector=detector)
    return S.FaceIdentifyOut.model_validate(result)


@router.post("/{event_id}/people/{person_id}/verify", response_model=S.FaceVerifyOut,
             summary="Is the (largest) face of the probe this person?", operation_id="face_recognition_verify_person",
             responses=error_responses(EventNotFound, PersonNotFound, NoFace, PersonHasNoEmbeddings, decode=True))
async def verify(event_id: str, person_id: str, rt: RuntimeDep, owner: OwnerDep, file: Probe,
                 threshold: Threshold = None, detector: Detector = None) -> S.FaceVerifyOut:
    data = await read_upload(file, rt.settings.max_upload_bytes)
    result = await run_in_threadpool(recognition.verify, rt, owner, event_id, person_id, data,
                                     threshold=threshold, detector=detector)
    return S.FaceVerifyOut.model_validate(result)
