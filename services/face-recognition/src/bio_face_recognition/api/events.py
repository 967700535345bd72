"""Events (galleries): create, list, read, change, delete, reset."""

from __future__ import annotations

from fastapi import APIRouter

from bio_face_recognition import schemas as S
from bio_face_recognition.api.deps import EVENTS, OwnerDep, PageDep, RuntimeDep, require_identity
from bio_face_recognition.exceptions import EventNameTaken, EventNotFound, error_responses
from bio_face_recognition.service import events

router = APIRouter(prefix=EVENTS, tags=["face_recognition: events"], dependencies=[require_identity])


@router.post("", status_code=201, response_model=S.FaceEventOut, summary="Create an event (gallery)",
             operation_id="face_recognition_create_event", responses=error_responses(EventNameTaken))
def create_event(body: S.FaceEventCreate, rt: RuntimeDep, owner: OwnerDep) -> S.FaceEventOut:
    event = events.create_event(rt, owner, body.name, body.model_dump(exclude={"name"}))
    return S.FaceEventOut.model_validate(event)


@router.get("", response_model=S.FaceEventList, summary="The caller's events with person and image counts",
            operation_id="face_recognition_list_events")
def list_events(rt: RuntimeDep, owner: OwnerDep, page: PageDep) -> S.FaceEventList:
    items, total = events.list_events(rt, owner, page.limit, page.offset)
    return S.FaceEventList(items=[S.FaceEventOut.model_validate(e) for e in items], total=total, limit=page.limit,
                           offset=page.offset)


@router.get("/{event_id}", response_model=S.FaceEventOut, summary="One event",
            operation_id="face_recognition_get_event", responses=error_responses(EventNotFound))
def get_event(event_id: str, rt: RuntimeDep, owner: OwnerDep) -> S.FaceEventOut:
    return S.FaceEventOut.model_validate(events.read_event(rt, owner, event_id))


@router.patch("/{event_id}", response_model=S.FaceEventOut, summary="Rename an event or change its settings",
              operation_id="face_recognition_update_event", responses=error_responses(EventNotFound, EventNameTaken))
def update_event(event_id: str, body: S.FaceEventUpdate, rt: RuntimeDep, owner: OwnerDep) -> S.FaceEventOut:
    event = events.update_event(rt, owner, event_id, body.model_dump(exclude_unset=True))
    return S.FaceEventOut.model_validate(event)


@router.delete("/{event_id}", response_model=S.FaceDeleted, operation_id="face_recognition_delete_event",
               summary="Delete an event with its people, embeddings, stored images and unknown faces",
               responses=error_responses(EventNotFound))
def delete_event(event_id: str, rt: RuntimeDep, owner: OwnerDep) -> S.FaceDeleted:
    return S.FaceDeleted(deleted=events.delete_event(rt, owner, event_id))


@router.post("/{event_id}/reset", response_model=S.FaceEventReset, operation_id="face_recognition_reset_event",
             summary="Remove every person of the event; the event and its settings stay",
             responses=error_responses(EventNotFound))
def reset_event(event_id: str, rt: RuntimeDep, owner: OwnerDep) -> S.FaceEventReset:
    counts, event = events.reset_event(rt, owner, event_id)
    return S.FaceEventReset(deleted=counts, event=S.FaceEventOut.model_validate(event))
