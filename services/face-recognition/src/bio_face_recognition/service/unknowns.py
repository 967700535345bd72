"""Unknown faces: probe faces that matched nobody, kept (embedding and crop) for a person to label until
the event's retention expires; confirmed into a new or existing person, or discarded."""

from __future__ import annotations

import io
import logging
import threading

import numpy as np
from PIL import Image
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bio_face_recognition.exceptions import CropNotFound, PersonNameTaken, PersonOrName, UnknownNotFound
from bio_face_recognition.models import FaceEmbedding, Person, UnknownFace
from bio_face_recognition.runtime import face_state
from bio_face_recognition.service.common import With, bump, delete_blobs, get_event, get_person, valid_id
from bio_face_recognition.service.people import with_images
from bio_shared.db import session_scope, utcnow
from bio_shared.jobs import new_id
from bio_shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)


def crop_jpeg(rgb: np.ndarray, box: tuple[int, int, int, int], max_side: int = 256) -> bytes:
    h, w = rgb.shape[:2]
    left, top, right, bottom = box
    mx, my = int(0.3 * (right - left)), int(0.3 * (bottom - top))
    crop = rgb[max(0, top - my):min(h, bottom + my), max(0, left - mx):min(w, right + mx)]
    img = Image.fromarray(np.ascontiguousarray(crop))
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def list_unknowns(rt: ServiceRuntime, owner: str, event_id: str, limit: int, offset: int
                  ) -> tuple[list[UnknownFace], int]:
    purge_expired(rt, owner=owner, event_id=event_id)
    with rt.sessions() as s:
        get_event(s, owner, event_id)
        cond = [UnknownFace.event_id == event_id, UnknownFace.owner_id == owner]
        total = s.scalar(select(func.count()).select_from(UnknownFace).where(*cond)) or 0
        rows = s.scalars(select(UnknownFace).where(*cond).order_by(UnknownFace.created_at.desc(), UnknownFace.id)
                         .limit(limit).offset(offset)).all()
    return list(rows), total


def _unknown(s: Session, owner: str, event_id: str, unknown_id: str) -> UnknownFace:
    u = s.scalar(select(UnknownFace).where(UnknownFace.id == unknown_id, UnknownFace.event_id == event_id,
                                           UnknownFace.owner_id == owner)) if valid_id(unknown_id) else None
    if u is None or u.expires_at < utcnow():
        raise UnknownNotFound()
    return u


def unknown_crop(rt: ServiceRuntime, owner: str, event_id: str, unknown_id: str) -> bytes:
    with rt.sessions() as s:
        get_event(s, owner, event_id)
        u = _unknown(s, owner, event_id, unknown_id)
    if not u.crop_key:
        raise CropNotFound()
    return rt.blobs.get(u.crop_key)


def confirm_unknown(rt: ServiceRuntime, owner: str, event_id: str, unknown_id: str, *,
                    person_id: str | None = None, name: str | None = None) -> With:
    """Enroll the unknown face's embedding as a new person (``name``) or into ``person_id``."""
    if bool(person_id) == bool(name):
        raise PersonOrName()
    drop_key = None
    try:
        with session_scope(rt.sessions) as s:
            event = get_event(s, owner, event_id, lock=True)
            u = _unknown(s, owner, event_id, unknown_id)
            now = utcnow()
            if person_id:
                person = get_person(s, owner, event_id, person_id)
                person.updated_at = now
            else:
                person = Person(id=new_id(), owner_id=owner, event_id=event_id, name=name, created_at=now,
                                updated_at=now)
                s.add(person)
                s.flush()
            keep = event.keep_images and u.crop_key
            emb = FaceEmbedding(id=new_id(), owner_id=owner, event_id=event_id, person_id=person.id, vector=u.vector,
                                model=u.model, model_version=u.model_version, box=None, quality=u.quality,
                                image_key=u.crop_key if keep else None, source=f"unknown:{u.id}", created_at=now)
            s.add(emb)
            drop_key = None if keep else u.crop_key
            s.delete(u)
            version = bump(s, event_id)
            s.flush()
            result = with_images(s, person)
            model, added = (emb.model, emb.model_version), [(emb.id, emb.vector)]
    except IntegrityError as exc:
        raise PersonNameTaken(f"a person named {name!r} already exists in this event") from exc
    face_state(rt).galleries.apply(event_id, model, version, added)
    if drop_key:
        delete_blobs(rt, [drop_key])
    return result


def discard_unknown(rt: ServiceRuntime, owner: str, event_id: str, unknown_id: str) -> dict[str, int]:
    with session_scope(rt.sessions) as s:
        get_event(s, owner, event_id)
        u = _unknown(s, owner, event_id, unknown_id)
        key = u.crop_key
        s.delete(u)
    return {"unknowns": 1, "blobs": delete_blobs(rt, [key] if key else [])}


def purge_expired(rt: ServiceRuntime, owner: str | None = None, event_id: str | None = None) -> int:
    """Delete unknown faces past their retention (rows, then crops)."""
    cond = [UnknownFace.expires_at < utcnow()]
    if owner:
        cond.append(UnknownFace.owner_id == owner)
    if event_id:
        cond.append(UnknownFace.event_id == event_id)
    with session_scope(rt.sessions) as s:
        rows = s.execute(select(UnknownFace.id, UnknownFace.crop_key).where(*cond).limit(5000)).all()
        if not rows:
            return 0
        s.execute(delete(UnknownFace).where(UnknownFace.id.in_([r[0] for r in rows])))
    delete_blobs(rt, (r[1] for r in rows if r[1]))
    return len(rows)


def start_purger(rt: ServiceRuntime) -> threading.Event:
    stop = threading.Event()
    interval = face_state(rt).settings.unknown_purge_interval_s

    def loop() -> None:
        while not stop.wait(interval):
            try:
                purge_expired(rt)
            except Exception:
                log.exception("purge of expired unknown faces failed")

    threading.Thread(target=loop, name="face-unknown-purger", daemon=True).start()
    return stop
