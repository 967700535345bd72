"""Unknown faces: list, crop, confirm as a person, discard."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from bio_face_recognition import schemas as S
from bio_face_recognition.api.deps import EVENTS, OwnerDep, PageDep, RuntimeDep, require_identity
from bio_face_recognition.exceptions import (
    CropNotFound,
    EventNotFound,
    PersonNameTaken,
    PersonNotFound,
    PersonOrName,
    UnknownNotFound,
    error_responses,
)
from bio_face_recognition.service import unknowns

router = APIRouter(prefix=EVENTS, tags=["face_recognition: unknowns"], dependencies=[require_identity])


@router.get("/{event_id}/unknowns", response_model=S.FaceUnknownList, operation_id="face_recognition_list_unknowns",
            summary="Faces that matched nobody, newest first (kept for the event's retention period)",
            responses=error_responses(EventNotFound))
def list_unknowns(event_id: str, rt: RuntimeDep, owner: OwnerDep, page: PageDep) -> S.FaceUnknownList:
    items, total = unknowns.list_unknowns(rt, owner, event_id, page.limit, page.offset)
    return S.FaceUnknownList(items=[S.FaceUnknownOut.model_validate(u) for u in items], total=total,
                             limit=page.limit, offset=page.offset)


@router.get("/{event_id}/unknowns/{unknown_id}/crop", response_class=Response, summary="The unknown face's crop",
            operation_id="face_recognition_get_unknown_crop",
            responses={200: {"content": {"image/jpeg": {}}},
                       **error_responses(EventNotFound, UnknownNotFound, CropNotFound)})
def unknown_crop(event_id: str, unknown_id: str, rt: RuntimeDep, owner: OwnerDep) -> Response:
    return Response(unknowns.unknown_crop(rt, owner, event_id, unknown_id), media_type="image/jpeg")


@router.post("/{event_id}/unknowns/{unknown_id}/confirm", status_code=201, response_model=S.FacePersonOut,
             summary="Enroll an unknown face as a new person (name) or into an existing one (person_id)",
             operation_id="face_recognition_confirm_unknown",
             responses=error_responses(EventNotFound, UnknownNotFound, PersonNotFound, PersonOrName, PersonNameTaken))
def confirm_unknown(event_id: str, unknown_id: str, body: S.FaceUnknownConfirm, rt: RuntimeDep,
                    owner: OwnerDep) -> S.FacePersonOut:
    person = unknowns.confirm_unknown(rt, owner, event_id, unknown_id, person_id=body.person_id, name=body.name)
    return S.FacePersonOut.model_validate(person)


@router.delete("/{event_id}/unknowns/{unknown_id}", response_model=S.FaceDeleted, summary="Discard an unknown face",
               operation_id="face_recognition_discard_unknown", responses=error_responses(EventNotFound, UnknownNotFound))
def discard_unknown(event_id: str, unknown_id: str, rt: RuntimeDep, owner: OwnerDep) -> S.FaceDeleted:
    return S.FaceDeleted(deleted=unknowns.discard_unknown(rt, owner, event_id, unknown_id))
