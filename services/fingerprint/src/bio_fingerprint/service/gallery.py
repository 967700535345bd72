"""Per-owner galleries for 1:N search, kept in the shared per-process GalleryCache and reloaded when the
owner's templates change (the version is read from the database on every search): the whole gallery packed
for exhaustive search, or one shard of it (the templates whose id ``shards.shard_of`` puts there) with its
MCC-LSH prefilter for the two-stage search. Every shard checks the owner's one version, so an enrollment or
a deletion is seen by all of them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bio_fingerprint.engine import matcher
from bio_fingerprint.engine.indexing import default_positions
from bio_fingerprint.engine.shards import Shard, shard_of
from bio_fingerprint.engine.template import field_at_500dpi, resample_to_500dpi
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
    templates = [template_of(r) for r in rows]
    return Gallery(matcher.Gallery([r.id for r in rows], [resample_to_500dpi(t) for t in templates],
                                   [field_at_500dpi(t) for t in templates]), entries)


def gallery_of(cache: GalleryCache[Gallery], sessions: sessionmaker[Session], owner_id: str) -> Gallery:
    with sessions() as s:
        gallery = cache.get(owner_id, _version(s, owner_id), lambda: _load(s, owner_id))
    GALLERY_SIZE.labels("fingerprint", "templates").set(len(gallery.entries))
    return gallery


@dataclass(frozen=True)
class ShardGallery:
    shard: Shard
    entries: list[Entry]
    by_id: dict[str, Entry]
    fingers: np.ndarray  # finger per template (the finger filter of identify)
    groups: np.ndarray  # one integer per (subject, finger): the shard search returns the best template of each
    alive: np.ndarray  # False: deleted since the shard was built (kept in memory, never returned)

    def allowed(self, finger: int | None) -> np.ndarray | None:
        """The templates a search may return (None: all of them)."""
        mask = self.alive if finger is None else self.alive & (self.fingers == finger)
        return None if mask.all() else mask


MAX_DEAD = 0.2  # a shard with more deleted templates than this share is built again


@lru_cache(maxsize=1)
def lsh_positions() -> np.ndarray:
    """The prefilter's bit positions: deterministic, so every shard worker and replica hashes alike."""
    return default_positions()


def template_counts(s: Session, owner_id: str, finger: int | None = None) -> tuple[int, int]:
    """(templates, subjects) of the owner's gallery, of one finger when given."""
    where = [FingerprintTemplate.owner_id == owner_id]
    if finger is not None:
        where.append(FingerprintTemplate.finger == finger)
    row = s.execute(select(func.count(), func.count(func.distinct(FingerprintTemplate.subject))).where(*where)).one()
    return int(row[0]), int(row[1])


def _shard_ids(s: Session, owner_id: str, index: int, shards: int) -> list[str]:
    return [i for i in s.scalars(select(FingerprintTemplate.id).where(FingerprintTemplate.owner_id == owner_id))
            if shard_of(i, shards) == index]


def _rows(s: Session, owner_id: str, ids: list[str]) -> list[FingerprintTemplate]:
    rows: list[FingerprintTemplate] = []
    for k in range(0, len(ids), 1000):  # only these rows are read and decrypted
        rows += s.scalars(select(FingerprintTemplate).where(FingerprintTemplate.owner_id == owner_id,
                                                            FingerprintTemplate.id.in_(ids[k:k + 1000])))
    return sorted(rows, key=lambda r: (r.created_at, r.id))


def _entries(rows: list[FingerprintTemplate]) -> list[Entry]:
    return [Entry(r.id, r.subject, r.finger, r.impression) for r in rows]


def _gallery(shard: Shard, entries: list[Entry], alive: np.ndarray) -> ShardGallery:
    keys: dict[tuple[str, int], int] = {}
    groups = np.asarray([keys.setdefault((e.subject, e.finger), len(keys)) for e in entries], np.int64)
    return ShardGallery(shard, entries, {e.template_id: e for e in entries},
                        np.asarray([e.finger for e in entries], np.int64), groups, alive)


def _load_shard(s: Session, owner_id: str, index: int, shards: int) -> ShardGallery:
    rows = _rows(s, owner_id, _shard_ids(s, owner_id, index, shards))
    templates = [template_of(r) for r in rows]
    shard = Shard([r.id for r in rows], [resample_to_500dpi(t) for t in templates], lsh_positions(),
                  [field_at_500dpi(t) for t in templates])
    return _gallery(shard, _entries(rows), np.ones(len(rows), bool))


def _refresh_shard(s: Session, owner_id: str, index: int, shards: int, old: ShardGallery) -> ShardGallery:
    """The shard after enrollments and deletions: new templates appended (only they are read, prepared and
    hashed), deleted ones marked dead; built again when too many are dead."""
    ids = _shard_ids(s, owner_id, index, shards)
    current = set(ids)
    alive = old.alive & np.asarray([e.template_id in current for e in old.entries], bool)
    if np.count_nonzero(~alive) > MAX_DEAD * max(1, len(ids)):
        return _load_shard(s, owner_id, index, shards)
    rows = _rows(s, owner_id, [i for i in ids if i not in old.by_id])
    templates = [template_of(r) for r in rows]
    shard = old.shard.extended([r.id for r in rows], [resample_to_500dpi(t) for t in templates],
                               [field_at_500dpi(t) for t in templates]) if rows else old.shard
    return _gallery(shard, old.entries + _entries(rows), np.concatenate([alive, np.ones(len(rows), bool)]))


def shard_gallery_of(cache: GalleryCache[ShardGallery], sessions: sessionmaker[Session], owner_id: str, index: int,
                     shards: int) -> ShardGallery:
    with sessions() as s:
        gallery = cache.get(f"{owner_id}#{index}/{shards}", _version(s, owner_id),
                            lambda: _load_shard(s, owner_id, index, shards),
                            lambda old: _refresh_shard(s, owner_id, index, shards, old))
    GALLERY_SIZE.labels("fingerprint", "shard_templates").set(int(np.count_nonzero(gallery.alive)))
    return gallery
