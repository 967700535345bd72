"""What every use case of the service needs: owned-row lookups, the event version bump, blob clean-up."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bio_face_recognition.engine.pipeline import Face
from bio_face_recognition.exceptions import EventNotFound, PersonNotFound
from bio_face_recognition.models import FaceEvent, Person
from bio_shared.db import utcnow
from bio_shared.images import DecodedImage
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import decode_for

log = logging.getLogger(__name__)

_ID = re.compile(r"[0-9a-f]{1,32}")  # ids are uuid4().hex; anything else is not found without a query


@dataclass
class Upload:
    data: bytes
    filename: str | None = None


class With:
    """A database row seen with extra attributes (counts, lists), for a response schema built from_attributes."""

    def __init__(self, row: Any, **extra: Any) -> None:
        self._row = row
        self.__dict__.update(extra)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def valid_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


def get_event(s: Session, owner: str, event_id: str, *, lock: bool = False) -> FaceEvent:
    if not valid_id(event_id):
        raise EventNotFound()
    stmt = select(FaceEvent).where(FaceEvent.id == event_id, FaceEvent.owner_id == owner)
    event = s.scalar(stmt.with_for_update() if lock else stmt)
    if event is None:
        raise EventNotFound()
    return event


def get_person(s: Session, owner: str, event_id: str, person_id: str) -> Person:
    person = s.scalar(select(Person).where(Person.id == person_id, Person.event_id == event_id,
                                           Person.owner_id == owner)) if valid_id(person_id) else None
    if person is None:
        raise PersonNotFound()
    return person


def bump(s: Session, event_id: str) -> int:
    """Every change to an event's people or images bumps its version (the gallery caches' check); returns
    the new version (this transaction's own write, so one step past the version it changed)."""
    s.execute(update(FaceEvent).where(FaceEvent.id == event_id)
              .values(version=FaceEvent.version + 1, updated_at=utcnow()))
    return int(s.scalar(select(FaceEvent.version).where(FaceEvent.id == event_id)) or 0)


def delete_blobs(rt: ServiceRuntime, keys: Iterable[str]) -> int:
    n = 0
    for key in keys:
        try:
            n += bool(rt.blobs.delete(key))
        except Exception:
            log.exception("could not delete blob of a deleted face")
    return n


def decode(rt: ServiceRuntime, data: bytes) -> DecodedImage:
    return decode_for(rt, data, "rgb")


def vector_bytes(v: np.ndarray | None) -> bytes:
    return np.asarray(v, dtype="<f4").tobytes()


def face_quality(face: Face) -> dict[str, Any]:
    return {"face_px": face.size, "sharpness": round(face.sharpness, 2), "detector_score": round(face.score, 3)}

