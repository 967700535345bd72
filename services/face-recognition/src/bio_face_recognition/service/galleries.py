"""Each event's embedding matrix, cached per process by ``bio_shared.gallery_cache`` and checked against
``FaceEvent.version`` (read from the database on every use, bumped in the same transaction as every change
to the event's people or images): a change made by any replica invalidates every other process's copy."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from bio_face_recognition.engine.gallery import Gallery
from bio_face_recognition.models import FaceEmbedding, FaceEvent
from bio_shared.gallery_cache import GalleryCache


def load_gallery(session: Session, event_id: str, model: tuple[str, str]) -> Gallery:
    rows = session.execute(
        select(FaceEmbedding.person_id, FaceEmbedding.id, FaceEmbedding.vector)
        .where(FaceEmbedding.event_id == event_id, FaceEmbedding.model == model[0],
               FaceEmbedding.model_version == model[1])
        .order_by(FaceEmbedding.person_id)
    ).all()
    if not rows:
        return Gallery([], [], np.zeros((0, 128), np.float32))
    people, ids, vectors = zip(*rows, strict=True)
    matrix = np.frombuffer(b"".join(vectors), dtype="<f4").reshape(len(rows), -1)
    return Gallery(list(people), list(ids), matrix)


class EventGalleries:
    """The least recently used events are dropped beyond ``max_events``; one load per event at a time."""

    def __init__(self, max_events: int, service: str) -> None:
        self.cache: GalleryCache[Gallery] = GalleryCache("face_events", service=service, max_entries=max_events)
        self.loads = 0

    def get(self, session: Session, event: FaceEvent, model: tuple[str, str]) -> Gallery:
        def load() -> Gallery:
            self.loads += 1
            return load_gallery(session, event.id, model)

        return self.cache.get(event.id, f"{event.version}:{model[0]}:{model[1]}", load)

    def drop(self, event_id: str) -> None:
        self.cache.invalidate(event_id)
