"""What 1:N search of an event runs on, cached per process by ``bio_shared.gallery_cache`` and checked
against ``FaceEvent.version`` (read from the database on every use, bumped in the same transaction as
every change to the event's people or images): a change made by any replica is seen by every process
before its next answer.

Below ``exact_search_below`` embeddings an event is one exact float32 matrix (``Gallery``). From there on
it is an approximate index (``engine.ann_index``) whose candidates are re-ranked on the stored embeddings
(``service.ann``); it stays one until the event shrinks below half the threshold, so an event at the
boundary does not flip at every change. The index is

* updated in place by the process that commits a change (``apply``: the version moves one step);
* caught up by diffing id sets with the database in any other process (no rebuild);
* persisted through the sealed blob store every ``ann_snapshot_every`` changes, at once after a removal
  (a deleted face leaves no codes on disk), and by the maintenance loop; a process that has none in
  memory loads it and catches up; a missing or unusable one is rebuilt from the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bio_face_recognition.engine.ann_index import AnnIndex, AnnSettings, BlobStore, IndexMissing, IndexUnavailable
from bio_face_recognition.engine.gallery import Candidate, Gallery
from bio_face_recognition.models import FaceEmbedding, FaceEvent
from bio_face_recognition.service import ann
from bio_face_recognition.service.ann import DbVectors, Model
from bio_shared.gallery_cache import GalleryCache

log = logging.getLogger(__name__)


def load_gallery(session: Session, event_id: str, model: Model) -> Gallery:
    rows = session.execute(
        select(FaceEmbedding.person_id, FaceEmbedding.id, FaceEmbedding.vector)
        .where(FaceEmbedding.event_id == event_id, FaceEmbedding.model == model[0],
               FaceEmbedding.model_version == model[1])
        .order_by(FaceEmbedding.person_id)
    ).all()
    if not rows:
        return Gallery([], [], np.zeros((0, 128), np.float32))
    people, ids, vectors = zip(*rows, strict=True)
    return Gallery(list(people), list(ids), ann.matrix(vectors))


@dataclass
class AnnEntry:
    index: AnnIndex
    model: Model
    prefix: str
    people: tuple[int, int] | None = None  # (version, persons with embeddings), counted once per version
    saving: threading.Lock = field(default_factory=threading.Lock)


class AnnView:
    """An event's index as the use cases see it (the same calls as ``Gallery``), bound to their session."""

    def __init__(self, entry: AnnEntry, s: Session, event_id: str) -> None:
        self.entry, self.s, self.event_id = entry, s, event_id
        self.source = DbVectors(s, event_id, entry.model)

    def __len__(self) -> int:
        return len(self.entry.index)

    def search(self, probe: np.ndarray, k: int = 1) -> list[Candidate]:
        return self.entry.index.search(probe, k, self.source)

    def distances_to(self, probe: np.ndarray, person_id: str) -> np.ndarray:
        ids, vectors = self.source.person(person_id)
        return Gallery([person_id] * len(ids), ids, vectors).distances_to(probe, person_id)

    @property
    def person_count(self) -> int:
        version, cached = self.entry.index.version, self.entry.people
        if cached is None or cached[0] != version:
            cached = self.entry.people = (version, ann.people(self.s, self.event_id, self.entry.model))
        return cached[1]


Searchable = Gallery | AnnView


class EventGalleries:
    """The least recently used events are dropped beyond ``max_events``; one load per event at a time."""

    def __init__(self, max_events: int, service: str, *, exact_below: int = 20_000,
                 ann_settings: AnnSettings | None = None, snapshot_every: int = 1000) -> None:
        self.cache: GalleryCache[Gallery | AnnEntry] = GalleryCache("face_events", service=service,
                                                                     max_entries=max_events)
        self.exact_below, self.snapshot_every = exact_below, snapshot_every
        self.ann_settings = ann_settings or AnnSettings()
        self.store: BlobStore | None = None  # the runtime's sealed blob store (attached once it exists)
        self.loads = 0  # (re)loads and catch-ups
        self.builds = 0  # indexes built from the database

    def get(self, session: Session, event: FaceEvent, model: Model) -> Searchable:
        value = self.cache.get(event.id, f"{event.version}:{model[0]}:{model[1]}",
                               lambda: self._load(session, event, model, None),
                               refresh=lambda old: self._load(session, event, model, old))
        return AnnView(value, session, event.id) if isinstance(value, AnnEntry) else value

    def _load(self, s: Session, event: FaceEvent, model: Model, old: Gallery | AnnEntry | None) -> Gallery | AnnEntry:
        """The event at its new version: ``old`` (the stale cached value) caught up when it is an index."""
        self.loads += 1
        if isinstance(old, AnnEntry) and old.model == model:
            if old.index.version >= event.version:  # this process applied the change itself
                live, removed = len(old.index), 0
            else:
                live, removed = ann.catch_up(s, old.index, event.id, model, event.version)
            if live >= self.exact_below // 2:
                self._persist(old, erase=removed > 0)
                return old
            self._drop_persisted(old)
            return load_gallery(s, event.id, model)
        if ann.count(s, event.id, model) < self.exact_below:
            return load_gallery(s, event.id, model)
        return self._open(s, event, model)

    def _open(self, s: Session, event: FaceEvent, model: Model) -> AnnEntry:
        prefix = ann.index_prefix(event.owner_id, event.id, model)
        try:
            if self.store is None:
                raise IndexMissing("no blob store attached")
            index = AnnIndex.load(self.store, prefix, self.ann_settings)
            entry = AnnEntry(index, model, prefix)
            if index.version < event.version:
                _, removed = ann.catch_up(s, index, event.id, model, event.version)
                self._persist(entry, erase=removed > 0)
            return entry
        except IndexMissing:
            log.info("building the face index of event %s from the database", event.id)
        except IndexUnavailable as exc:
            log.warning("face index of event %s: %s; rebuilding it from the database", event.id, exc)
        entry = AnnEntry(ann.build(s, event.id, model, event.version, self.ann_settings), model, prefix)
        self.builds += 1
        self._persist(entry, force=True)
        return entry

    def _persist(self, entry: AnnEntry, *, erase: bool = False, force: bool = False) -> None:
        """Snapshot when due. One save per index at a time; a save in progress covers the next one
        unless it erases."""
        if self.store is None or not (force or erase or entry.index.changes >= self.snapshot_every):
            return
        if not entry.saving.acquire(blocking=erase):
            return
        try:
            entry.index.save(self.store, entry.prefix, keep_previous=not erase)
        except Exception:  # the in-memory index stays right; the next snapshot retries
            log.exception("could not persist the face index under %s", entry.prefix)
        finally:
            entry.saving.release()

    def _drop_persisted(self, entry: AnnEntry) -> None:
        if self.store is not None:
            AnnIndex.delete_persisted(self.store, entry.prefix)

    # -- changes committed by this process --------------------------------------------------------
    def apply(self, event_id: str, model: Model, version: int, added: Iterable[tuple[str, bytes]] = (),
              removed: Iterable[str] = ()) -> None:
        """The change that moved the event to ``version`` (committed), applied to this process's index
        when it is at the version before; otherwise the next use catches up."""
        cached = self.cache.peek(event_id)
        entry = cached[1] if cached else None
        if not isinstance(entry, AnnEntry) or entry.model != model:
            return
        pairs, gone = list(added), list(removed)
        if entry.index.apply(version - 1, version, [p[0] for p in pairs], ann.matrix([p[1] for p in pairs]), gone):
            self._persist(entry, erase=bool(gone))

    def drop(self, event_id: str, owner: str | None = None, model: Model | None = None) -> None:
        """Forget an event (deleted or emptied); with its owner and model, delete its persisted index too."""
        self.cache.invalidate(event_id)
        if owner and model and self.store is not None:
            AnnIndex.delete_persisted(self.store, ann.index_prefix(owner, event_id, model))

    # -- maintenance ------------------------------------------------------------------------------
    def maintain(self, sessions: sessionmaker[Session]) -> dict[str, int]:
        """Persist every index with unsaved changes; rebuild those whose lists no longer fit."""
        out = {"saved": 0, "rebuilt": 0}
        for event_id, _, entry in self.cache.items():
            if not isinstance(entry, AnnEntry):
                continue
            if entry.index.rebuild_due:
                with sessions() as s:
                    event = s.get(FaceEvent, event_id)
                    if event is None:
                        continue
                    fresh = AnnEntry(ann.build(s, event.id, entry.model, event.version, self.ann_settings),
                                     entry.model, entry.prefix)
                self.builds += 1
                self.cache.put(event_id, f"{fresh.index.version}:{entry.model[0]}:{entry.model[1]}", fresh)
                self._persist(fresh, force=True, erase=True)
                out["rebuilt"] += 1
            elif entry.index.changes:
                self._persist(entry, force=True)
                out["saved"] += 1
        return out


def start_index_maintenance(galleries: EventGalleries, sessions: sessionmaker[Session],
                            interval_s: float) -> threading.Event:
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                galleries.maintain(sessions)
            except Exception:
                log.exception("face index maintenance failed")

    threading.Thread(target=loop, name="face-index-maintenance", daemon=True).start()
    return stop
