"""People of an event and their enrolled images: list, read, rename, delete, download."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bio_face_recognition.exceptions import ImageNotFound, ImageNotKept, PersonNameTaken
from bio_face_recognition.models import FaceEmbedding, Person
from bio_face_recognition.runtime import face_state
from bio_face_recognition.service.common import With, bump, delete_blobs, get_event, get_person, valid_id
from bio_face_recognition.service.events import delete_people_rows
from bio_shared.db import session_scope, utcnow
from bio_shared.runtime import ServiceRuntime

MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "tif": "image/tiff", "webp": "image/webp",
               "bmp": "image/bmp", "gif": "image/gif", "ppm": "image/x-portable-pixmap"}


def with_images(s: Session, person: Person, **extra: object) -> With:
    rows = s.scalars(select(FaceEmbedding).where(FaceEmbedding.person_id == person.id)
                     .order_by(FaceEmbedding.created_at, FaceEmbedding.id)).all()
    return With(person, images=list(rows), image_count=len(rows), **extra)


def list_people(rt: ServiceRuntime, owner: str, event_id: str, limit: int, offset: int,
                name: str | None = None) -> tuple[list[With], int]:
    with rt.sessions() as s:
        get_event(s, owner, event_id)
        cond = [Person.event_id == event_id, Person.owner_id == owner]
        if name:
            cond.append(Person.name == name)
        total = s.scalar(select(func.count()).select_from(Person).where(*cond)) or 0
        people = list(s.scalars(select(Person).where(*cond).order_by(Person.created_at, Person.id)
                                .limit(limit).offset(offset)))
        ids = [p.id for p in people]
        counts = dict(s.execute(select(FaceEmbedding.person_id, func.count())
                                .where(FaceEmbedding.person_id.in_(ids)).group_by(FaceEmbedding.person_id))
                      .all()) if ids else {}
    return [With(p, image_count=counts.get(p.id, 0), images=None) for p in people], total


def read_person(rt: ServiceRuntime, owner: str, event_id: str, person_id: str) -> With:
    with rt.sessions() as s:
        get_event(s, owner, event_id)
        return with_images(s, get_person(s, owner, event_id, person_id))


def rename_person(rt: ServiceRuntime, owner: str, event_id: str, person_id: str, name: str) -> With:
    try:
        with session_scope(rt.sessions) as s:
            get_event(s, owner, event_id)
            person = get_person(s, owner, event_id, person_id)
            person.name = name
            person.updated_at = utcnow()
    except IntegrityError as exc:
        raise PersonNameTaken(f"a person named {name!r} already exists in this event") from exc
    return read_person(rt, owner, event_id, person_id)


def delete_person(rt: ServiceRuntime, owner: str, event_id: str, person_id: str) -> dict[str, int]:
    with session_scope(rt.sessions) as s:
        get_event(s, owner, event_id)
        get_person(s, owner, event_id, person_id)
        gone = _embeddings(s, person_id)
        counts, keys = delete_people_rows(s, event_id, person_id)
        version = bump(s, event_id)
    _removed(rt, event_id, version, gone)
    counts["blobs"] = delete_blobs(rt, keys)
    return counts


def _embeddings(s: Session, person_id: str) -> dict[tuple[str, str], list[str]]:
    """The person's embedding ids by model (about to be deleted)."""
    out: dict[tuple[str, str], list[str]] = {}
    for eid, model, version in s.execute(select(FaceEmbedding.id, FaceEmbedding.model, FaceEmbedding.model_version)
                                         .where(FaceEmbedding.person_id == person_id)):
        out.setdefault((model, version), []).append(eid)
    return out


def _removed(rt: ServiceRuntime, event_id: str, version: int, gone: dict[tuple[str, str], list[str]]) -> None:
    """Committed deletions leave this process's index at once (and its persisted snapshot)."""
    for model, ids in gone.items():
        face_state(rt).galleries.apply(event_id, model, version, removed=ids)


def _image(s: Session, owner: str, event_id: str, person_id: str, image_id: str) -> FaceEmbedding:
    """One enrolled photo (its embedding row) of a person of the owner's event, or 404."""
    get_event(s, owner, event_id)
    get_person(s, owner, event_id, person_id)
    emb = s.scalar(select(FaceEmbedding).where(FaceEmbedding.id == image_id,
                                               FaceEmbedding.person_id == person_id)) if valid_id(image_id) else None
    if emb is None:
        raise ImageNotFound()
    return emb


def delete_image(rt: ServiceRuntime, owner: str, event_id: str, person_id: str, image_id: str) -> dict[str, int]:
    with session_scope(rt.sessions) as s:
        emb = _image(s, owner, event_id, person_id, image_id)
        key, gone = emb.image_key, {(emb.model, emb.model_version): [emb.id]}
        s.delete(emb)
        version = bump(s, event_id)
    _removed(rt, event_id, version, gone)
    return {"images": 1, "blobs": delete_blobs(rt, [key] if key else [])}


def image_bytes(rt: ServiceRuntime, owner: str, event_id: str, person_id: str, image_id: str) -> tuple[bytes, str]:
    with rt.sessions() as s:
        emb = _image(s, owner, event_id, person_id, image_id)
    if not emb.image_key:
        raise ImageNotKept()
    ext = emb.image_key.rsplit(".", 1)[-1]
    return rt.blobs.get(emb.image_key), MEDIA_TYPES.get(ext, "application/octet-stream")
