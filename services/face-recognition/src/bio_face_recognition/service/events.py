"""Events (galleries): create, list, read, change, delete, reset."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bio_face_recognition.exceptions import EventNameTaken
from bio_face_recognition.models import EVENT_SETTINGS, FaceEmbedding, FaceEvent, Person, UnknownFace
from bio_face_recognition.runtime import face_state
from bio_face_recognition.service.common import With, bump, delete_blobs, get_event
from bio_shared.db import session_scope, utcnow
from bio_shared.jobs import new_id
from bio_shared.runtime import ServiceRuntime


def _defaults(rt: ServiceRuntime) -> dict[str, Any]:
    st = face_state(rt).settings
    return {"threshold": st.default_threshold, "detector": "hog", "landmarks": 5, "top_k": st.default_top_k,
            "keep_images": False, "min_face_px": None, "unknown_retention_s": st.default_unknown_retention_s,
            "refuse_duplicates": False}


def create_event(rt: ServiceRuntime, owner: str, name: str, settings: dict[str, Any]) -> With:
    values = _defaults(rt) | {k: v for k, v in settings.items() if v is not None and k in EVENT_SETTINGS}
    now = utcnow()
    event = FaceEvent(id=new_id(), owner_id=owner, name=name, version=0, created_at=now, updated_at=now, **values)
    try:
        with session_scope(rt.sessions) as s:
            s.add(event)
    except IntegrityError as exc:
        raise EventNameTaken(f"an event named {name!r} already exists") from exc
    return With(event, person_count=0, image_count=0)


def find_event(rt: ServiceRuntime, owner: str, ref: str, *, create: bool = False) -> str | None:
    """The id of the owner's event with this id or name; created (default settings) when asked."""
    with rt.sessions() as s:
        event_id = s.scalar(select(FaceEvent.id).where(FaceEvent.owner_id == owner,
                                                       (FaceEvent.id == ref) | (FaceEvent.name == ref)))
    if event_id or not create:
        return event_id
    return create_event(rt, owner, ref, {}).id


def _counts(s: Session, event_ids: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    if not event_ids:
        return {}, {}
    people = dict(s.execute(select(Person.event_id, func.count()).where(Person.event_id.in_(event_ids))
                            .group_by(Person.event_id)).all())
    images = dict(s.execute(select(FaceEmbedding.event_id, func.count())
                            .where(FaceEmbedding.event_id.in_(event_ids)).group_by(FaceEmbedding.event_id))
                  .all())
    return people, images


def list_events(rt: ServiceRuntime, owner: str, limit: int, offset: int) -> tuple[list[With], int]:
    with rt.sessions() as s:
        total = s.scalar(select(func.count()).select_from(FaceEvent).where(FaceEvent.owner_id == owner)) or 0
        events = list(s.scalars(select(FaceEvent).where(FaceEvent.owner_id == owner)
                                .order_by(FaceEvent.created_at, FaceEvent.id).limit(limit).offset(offset)))
        people, images = _counts(s, [e.id for e in events])
    return [With(e, person_count=people.get(e.id, 0), image_count=images.get(e.id, 0)) for e in events], total


def read_event(rt: ServiceRuntime, owner: str, event_id: str) -> With:
    with rt.sessions() as s:
        event = get_event(s, owner, event_id)
        people, images = _counts(s, [event.id])
    return With(event, person_count=people.get(event.id, 0), image_count=images.get(event.id, 0))


def update_event(rt: ServiceRuntime, owner: str, event_id: str, changes: dict[str, Any]) -> With:
    try:
        with session_scope(rt.sessions) as s:
            event = get_event(s, owner, event_id)
            for key, value in changes.items():
                if key == "name" and value is not None:
                    event.name = value
                elif key in EVENT_SETTINGS and (value is not None or key == "min_face_px"):
                    setattr(event, key, value)
            event.updated_at = utcnow()
    except IntegrityError as exc:
        raise EventNameTaken(f"an event named {changes.get('name')!r} already exists") from exc
    return read_event(rt, owner, event_id)


def delete_people_rows(s: Session, event_id: str, person_id: str | None = None) -> tuple[dict[str, int], list[str]]:
    """Delete the embeddings (and people) of an event or of one person; returns counts and blob keys."""
    emb_filter = [FaceEmbedding.event_id == event_id]
    if person_id:
        emb_filter.append(FaceEmbedding.person_id == person_id)
    keys = [k for k in s.scalars(select(FaceEmbedding.image_key).where(*emb_filter)) if k]
    n_emb = s.execute(delete(FaceEmbedding).where(*emb_filter)).rowcount  # type: ignore[attr-defined]
    people_filter = [Person.event_id == event_id] + ([Person.id == person_id] if person_id else [])
    n_people = s.execute(delete(Person).where(*people_filter)).rowcount  # type: ignore[attr-defined]
    return {"people": n_people, "images": n_emb}, keys


def delete_event(rt: ServiceRuntime, owner: str, event_id: str) -> dict[str, int]:
    with session_scope(rt.sessions) as s:
        event = get_event(s, owner, event_id)
        counts, keys = delete_people_rows(s, event.id)
        ukeys = [k for k in s.scalars(select(UnknownFace.crop_key).where(UnknownFace.event_id == event.id)) if k]
        counts["unknowns"] = s.execute(delete(UnknownFace).where(  # type: ignore[attr-defined]
            UnknownFace.event_id == event.id)).rowcount
        s.delete(event)
    counts["blobs"] = delete_blobs(rt, keys + ukeys)
    state = face_state(rt)
    state.galleries.drop(event_id, owner, state.model)  # and its persisted index
    return counts


def reset_event(rt: ServiceRuntime, owner: str, event_id: str) -> tuple[dict[str, int], With]:
    """Remove every person (their embeddings and images); the event and its settings stay."""
    with session_scope(rt.sessions) as s:
        event = get_event(s, owner, event_id)
        counts, keys = delete_people_rows(s, event.id)
        bump(s, event.id)
    state = face_state(rt)
    state.galleries.drop(event_id, owner, state.model)  # nobody left: no index, in memory or persisted
    counts["blobs"] = delete_blobs(rt, keys)
    return counts, read_event(rt, owner, event_id)
