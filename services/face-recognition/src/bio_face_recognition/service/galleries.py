"""The per-process cache of each event's embedding matrix, checked against ``FaceEvent.version``.

The version is read from the database on every use and bumped in the same transaction as every change
to the event's people or images, so a change made by any replica invalidates every other cache.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from bio_face_recognition.engine.gallery import Gallery
from bio_face_recognition.models import FaceEmbedding, FaceEvent
from bio_shared.metrics import GALLERY_SIZE


@dataclass
class _Cached:
    version: int
    model: tuple[str, str]
    gallery: Gallery
    loaded_in_s: float


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
    """Least recently used event matrices are dropped beyond ``max_bytes``; one load per event at a time."""

    def __init__(self, max_bytes: int, service: str) -> None:
        self.max_bytes = max_bytes
        self.service = service
        self._items: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.loads = 0

    def _fresh(self, event: FaceEvent, model: tuple[str, str]) -> Gallery | None:
        item = self._items.get(event.id)
        if item and item.version == event.version and item.model == model:
            self._items.move_to_end(event.id)
            return item.gallery
        return None

    def get(self, session: Session, event: FaceEvent, model: tuple[str, str]) -> Gallery:
        with self._lock:
            if (gallery := self._fresh(event, model)) is not None:
                return gallery
            loading = self._loading.setdefault(event.id, threading.Lock())
        with loading:  # others wait for the one load
            with self._lock:
                if (gallery := self._fresh(event, model)) is not None:
                    return gallery
            start = time.perf_counter()
            gallery = load_gallery(session, event.id, model)
            self._store(event.id, _Cached(event.version, model, gallery, time.perf_counter() - start))
            return gallery

    def _store(self, event_id: str, item: _Cached) -> None:
        with self._lock:
            self._items[event_id] = item
            self._items.move_to_end(event_id)
            self.loads += 1
            total = sum(i.gallery.nbytes for i in self._items.values())
            while total > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                total -= dropped.gallery.nbytes
            GALLERY_SIZE.labels(self.service, "cached_embeddings").set(
                sum(len(i.gallery) for i in self._items.values()))

    def drop(self, event_id: str) -> None:
        with self._lock:
            self._items.pop(event_id, None)
            self._loading.pop(event_id, None)
