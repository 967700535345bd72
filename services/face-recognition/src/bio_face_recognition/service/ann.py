"""The approximate index of a large event against the database.

Re-ranking reads the candidates' embeddings by id from the sealed ``face_embeddings.vector`` column (the
column type opens each row in memory). Why there and not in a second copy: the embeddings are stored there
already, sealed per row, so a candidate costs one primary-key lookup and one AES-GCM open of 516 bytes
(about 32 per probe, well under a millisecond each); a deleted face leaves nothing behind to erase; and
sealed segment blobs would need a whole block opened per candidate or a plaintext copy on disk.

A build streams every embedding ordered by id (uuid4: the first rows are a uniform training sample). A
process whose index is older than ``FaceEvent.version`` catches up by diffing its id set with the
database's (only the missing rows' vectors are read) instead of rebuilding. The event's version is read
before the rows, so an index is never older than the version it is stamped with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from bio_face_recognition.engine.ann_index import AnnIndex, AnnSettings, Chunk
from bio_face_recognition.models import FaceEmbedding

FETCH_BATCH = 500  # ids per IN (...) query
STREAM_BATCH = 20_000
Model = tuple[str, str]


def _of(event_id: str, model: Model) -> tuple[ColumnElement[bool], ...]:
    return (FaceEmbedding.event_id == event_id, FaceEmbedding.model == model[0],
            FaceEmbedding.model_version == model[1])


def index_prefix(owner: str, event_id: str, model: Model) -> str:
    """Blob folder of an event's persisted index (under the owner: an account purge removes it)."""
    tag = hashlib.sha256(f"{model[0]}\0{model[1]}".encode()).hexdigest()[:16]
    return f"{owner}/face-index/{event_id}/{tag}"


def matrix(vectors: Sequence[bytes]) -> np.ndarray:
    if not vectors:
        return np.zeros((0, 128), np.float32)
    return np.frombuffer(b"".join(vectors), "<f4").reshape(len(vectors), -1)


def by_id(s: Session, embedding_ids: list[str], event_id: str, model: Model, *columns: Any) -> list[Any]:
    """Rows of the given ids (``columns`` of them, id first) that belong to the event and model. Only the
    ids are in the WHERE: with the event in it too SQLite plans the (event_id, person_id) index and scans
    the whole event (8 ms for 32 ids out of 5,000) instead of 32 primary-key lookups (0.2 ms)."""
    rows: list[Any] = []
    for at in range(0, len(embedding_ids), FETCH_BATCH):
        rows += s.execute(select(FaceEmbedding.id, *columns, FaceEmbedding.event_id, FaceEmbedding.model,
                                 FaceEmbedding.model_version)
                          .where(FaceEmbedding.id.in_(embedding_ids[at:at + FETCH_BATCH]))).all()
    return [r for r in rows if (r[-3], (r[-2], r[-1])) == (event_id, model)]


class DbVectors:
    """The index's ``VectorSource``: candidates' embeddings from the database, in the caller's session."""

    def __init__(self, s: Session, event_id: str, model: Model) -> None:
        self.s, self.event_id, self.model = s, event_id, model

    def fetch(self, embedding_ids: list[str]) -> tuple[list[str], list[str], np.ndarray]:
        rows = by_id(self.s, embedding_ids, self.event_id, self.model, FaceEmbedding.person_id, FaceEmbedding.vector)
        return [r[0] for r in rows], [r[1] for r in rows], matrix([r[2] for r in rows])

    def person(self, person_id: str) -> tuple[list[str], np.ndarray]:
        rows = self.s.execute(select(FaceEmbedding.id, FaceEmbedding.vector, FaceEmbedding.event_id,
                                     FaceEmbedding.model, FaceEmbedding.model_version)
                              .where(FaceEmbedding.person_id == person_id)).all()  # the person_id index
        rows = [r for r in rows if (r[2], (r[3], r[4])) == (self.event_id, self.model)]
        return [r[0] for r in rows], matrix([r[1] for r in rows])


def count(s: Session, event_id: str, model: Model) -> int:
    return int(s.scalar(select(func.count()).select_from(FaceEmbedding).where(*_of(event_id, model))) or 0)


def people(s: Session, event_id: str, model: Model) -> int:
    return int(s.scalar(select(func.count(FaceEmbedding.person_id.distinct())).where(*_of(event_id, model))) or 0)


def stream(s: Session, event_id: str, model: Model) -> Iterator[Chunk]:
    stmt = (select(FaceEmbedding.id, FaceEmbedding.vector).where(*_of(event_id, model))
            .order_by(FaceEmbedding.id).execution_options(yield_per=STREAM_BATCH))
    for part in s.execute(stmt).partitions():
        yield [r[0] for r in part], matrix([r[1] for r in part])


_NIBBLE = np.full(256, 255, np.uint8)
_NIBBLE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_NIBBLE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)


def _keys(ids: np.ndarray) -> np.ndarray | None:
    """uint64 of each id's first 16 hex digits (uuid4 hex: 64 random bits), or None if an id is not hex."""
    nibbles = _NIBBLE[np.ascontiguousarray(ids, "S32").view(np.uint8).reshape(-1, 32)[:, :16]]
    if (nibbles == 255).any():
        return None
    packed = np.ascontiguousarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2])  # 8 bytes per id
    return packed.view(">u8").ravel().astype(np.uint64)


def diff(have: np.ndarray, stored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(have - stored, stored - have)`` of two unique id arrays (S32). Sorting 1M strings costs seconds
    (np.setdiff1d: 3.7 s); their 64-bit keys sort in a tenth of that, and a match of keys counts only when
    the full ids match too. Ids that are not hex, or keys that repeat, take Python sets instead."""
    ka, kb = _keys(have), _keys(stored)
    if ka is not None and kb is not None and len(kb):
        oa, ob = np.argsort(ka), np.argsort(kb)
        sa, sb = ka[oa], kb[ob]
        if not ((sa[1:] == sa[:-1]).any() or (sb[1:] == sb[:-1]).any()):
            return _diff_sorted(have, stored, oa, ob, sa, sb)
    a, b = set(have.tolist()), set(stored.tolist())
    return np.asarray(sorted(a - b), "S32"), np.asarray(sorted(b - a), "S32")


def _diff_sorted(have: np.ndarray, stored: np.ndarray, oa: np.ndarray, ob: np.ndarray, sa: np.ndarray,
                 sb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = np.minimum(np.searchsorted(sb, sa), len(sb) - 1)
    same = sb[pos] == sa
    same[same] = have[oa[same]] == stored[ob[pos[same]]]
    found = np.zeros(len(stored), bool)
    found[ob[pos[same]]] = True
    return have[oa[~same]], stored[~found]


def build(s: Session, event_id: str, model: Model, version: int, settings: AnnSettings) -> AnnIndex:
    """A fresh index of the event at (at least) ``version``, read after the caller read that version."""
    return AnnIndex.build(stream(s, event_id, model), version, settings, size_hint=count(s, event_id, model))


def catch_up(s: Session, index: AnnIndex, event_id: str, model: Model, version: int) -> tuple[int, int]:
    """Bring ``index`` to ``version`` by diffing id sets; returns (live embeddings, embeddings removed)."""
    ids = s.connection().execute(select(FaceEmbedding.id).where(*_of(event_id, model))).scalars().all()
    stored = np.asarray(ids, "S32")  # (through Core: a million ids without the ORM's per-row work)
    gone, missing_ids = diff(index.live_ids(), stored)
    missing = [m.decode() for m in missing_ids]
    chunks = []
    for at in range(0, len(missing), FETCH_BATCH):
        rows = by_id(s, missing[at:at + FETCH_BATCH], event_id, model, FaceEmbedding.vector)
        chunks.append(([r[0] for r in rows], matrix([r[1] for r in rows])))
    with index.lock:  # the set now equals the rows read, which are at least as new as ``version``
        removed = index.remove(g.decode() for g in gone)
        for ids, vectors in chunks:
            index.add(ids, vectors)
        index.version = version
    return len(stored), removed
