"""People of an event and their stored images: list, read, rename, delete, download."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from bio_face_recognition import schemas as S
from bio_face_recognition.api.deps import EVENTS, OwnerDep, PageDep, RuntimeDep, require_identity
from bio_face_recognition.exceptions import (
    EventNotFound,
    ImageNotFound,
    ImageNotKept,
    InvalidName,
    PersonNameTaken,
    PersonNotFound,
    error_responses,
)
from bio_face_recognition.service import people
from bio_shared.text import clean_name

router = APIRouter(prefix=EVENTS, tags=["face_recognition: people"], dependencies=[require_identity])
PERSON_ERRORS = error_responses(EventNotFound, PersonNotFound)


@router.get("/{event_id}/people", response_model=S.FacePersonList, summary="People of the event (paginated)",
            operation_id="face_recognition_list_people", responses=error_responses(EventNotFound, InvalidName))
def list_people(event_id: str, rt: RuntimeDep, owner: OwnerDep, page: PageDep,
                name: Annotated[str | None, Query(max_length=200, description="exact name")] = None
                ) -> S.FacePersonList:
    wanted = clean_name(name, field="name") if name is not None else None
    items, total = people.list_people(rt, owner, event_id, page.limit, page.offset, wanted)
    return S.FacePersonList(items=[S.FacePersonOut.model_validate(p) for p in items], total=total,
                            limit=page.limit, offset=page.offset)


@router.get("/{event_id}/people/{person_id}", response_model=S.FacePersonOut, summary="One person and its images",
            operation_id="face_recognition_get_person", responses=PERSON_ERRORS)
def get_person(event_id: str, person_id: str, rt: RuntimeDep, owner: OwnerDep) -> S.FacePersonOut:
    return S.FacePersonOut.model_validate(people.read_person(rt, owner, event_id, person_id))


@router.patch("/{event_id}/people/{person_id}", response_model=S.FacePersonOut, summary="Rename a person",
              operation_id="face_recognition_rename_person",
              responses=error_responses(EventNotFound, PersonNotFound, PersonNameTaken))
def rename_person(event_id: str, person_id: str, body: S.FacePersonRename, rt: RuntimeDep,
                  owner: OwnerDep) -> S.FacePersonOut:
    return S.FacePersonOut.model_validate(people.rename_person(rt, owner, event_id, person_id, body.name))


@router.delete("/{event_id}/people/{person_id}", response_model=S.FaceDeleted,
               summary="Delete a person with its embeddings and stored images",
               operation_id="face_recognition_delete_person", responses=PERSON_ERRORS)
def delete_person(event_id: str, person_id: str, rt: RuntimeDep, owner: OwnerDep) -> S.FaceDeleted:
    return S.FaceDeleted(deleted=people.delete_person(rt, owner, event_id, person_id))


@router.get("/{event_id}/people/{person_id}/images/{image_id}", response_class=Response,
            summary="The stored photo of one image (events that keep images)",
            operation_id="face_recognition_get_image",
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}}},
                       **error_responses(EventNotFound, PersonNotFound, ImageNotFound, ImageNotKept)})
def get_image(event_id: str, person_id: str, image_id: str, rt: RuntimeDep, owner: OwnerDep) -> Response:
    data, media = people.image_bytes(rt, owner, event_id, person_id, image_id)
    return Response(data, media_type=media)


@router.delete("/{event_id}/people/{person_id}/images/{image_id}", response_model=S.FaceDeleted,
               summary="Delete one image (embedding and stored photo) of a person",
               operation_id="face_recognition_delete_image",
               responses=error_responses(EventNotFound, PersonNotFound, ImageNotFound))
def delete_image(event_id: str, person_id: str, image_id: str, rt: RuntimeDep, owner: OwnerDep) -> S.FaceDeleted:
    return S.FaceDeleted(deleted=people.delete_image(rt, owner, event_id, person_id, image_id))
