"""Per-owner packed galleries for 1:N search, kept in the shared per-process GalleryCache and reloaded when
the owner's templates change (the version is read from the database on every search)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bio_fingerprint.engine import matcher
from bio_fingerprint.engine.template import resample_to_500dpi
from bio_fingerprint.models import FingerprintTemplate
from bio_fingerprint.service.codec import template_of
from bio_shared.gallery_cache import GalleryCache
from bio_shared.metrics import GALLERY_SIZE


@dataclass(frozen=True)
class Entry:
    template_id: str
    subject: str
    finger: int
    impression: int


@dataclass(frozen=True)
class Gallery:
    packed: matcher.Gallery
    entries: list[Entry]


def _version(s: Session, owner_id: str) -> str:
    """Count, newest row and minutiae sum of the owner's templates: any enrollment or deletion changes it."""
    row = s.execute(select(func.count(), func.max(FingerprintTemplate.created_at),
                           func.sum(FingerprintTemplate.minutiae_count))
                    .where(FingerprintTemplate.owner_id == owner_id)).one()
    return "|".join(str(v) for v in row)


def _load(s: Session, owner_id: str) -> Gallery:
    rows = list(s.scalars(select(FingerprintTemplate).where(FingerprintTemplate.owner_id == owner_id)
                          .order_by(FingerprintTemplate.created_at, FingerprintTemplate.id)))
    entries = [Entry(r.id, r.subject, r.finger, r.impression) for r in rows]
    return Gallery(matcher.Gallery([r.id for r in rows], [resample_to_500dpi(template_of(r)) for r in rows]), entries)


def gallery_of(cache: GalleryCache[Gallery], sessions: sessionmaker[Session], owner_id: str) -> Gallery:
    with sessions() as s:
        gallery = cache.get(owner_id, _version(s, owner_id), lambda: _load(s, owner_id))
    GALLERY_SIZE.labels("fingerprint", "templates").set(len(gallery.entries))
    return gallery
