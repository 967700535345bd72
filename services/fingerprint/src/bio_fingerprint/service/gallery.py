"""Per-owner packed galleries for 1:N search, rebuilt when the owner's templates change."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from bio_fingerprint.engine import matcher
from bio_fingerprint.engine.template import resample_to_500dpi
from bio_fingerprint.models import FingerprintTemplate
from bio_fingerprint.service.codec import template_of
from bio_shared.metrics import GALLERY_SIZE

MAX_OWNERS = 64


@dataclass(frozen=True)
class Entry:
    template_id: str
    subject: str
    finger: int
    impression: int


class GalleryCache:
    """Keyed by owner; the version is (count, newest row, minutiae sum) of the owner's templates, so an
    enrollment or a deletion in any process is seen by the next search."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[tuple[Any, ...], matcher.Gallery, list[Entry]]] = {}

    def get(self, sessions: Any, owner_id: str) -> tuple[matcher.Gallery, list[Entry]]:
        with sessions() as s:
            version = tuple(s.execute(select(func.count(), func.max(FingerprintTemplate.created_at),
                                             func.sum(FingerprintTemplate.minutiae_count))
                                      .where(FingerprintTemplate.owner_id == owner_id)).one())
            with self._lock:
                hit = self._items.get(owner_id)
            if hit and hit[0] == version:
                return hit[1], hit[2]
            rows = list(s.scalars(select(FingerprintTemplate).where(FingerprintTemplate.owner_id == owner_id)
                                  .order_by(FingerprintTemplate.created_at, FingerprintTemplate.id)))
            meta = [Entry(r.id, r.subject, r.finger, r.impression) for r in rows]
            gallery = matcher.Gallery([r.id for r in rows], [resample_to_500dpi(template_of(r)) for r in rows])
        with self._lock:
            self._items[owner_id] = (version, gallery, meta)
            if len(self._items) > MAX_OWNERS:
                self._items.pop(next(iter(self._items)))
        GALLERY_SIZE.labels("fingerprint", "templates").set(len(gallery))
        return gallery, meta
