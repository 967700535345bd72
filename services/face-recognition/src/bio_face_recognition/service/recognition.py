"""Recognition: every face of a probe against an event (1:N identify) and one claimed person (1:1 verify)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bio_face_recognition.engine.gallery import Candidate
from bio_face_recognition.engine.pipeline import Face
from bio_face_recognition.exceptions import NoFace, PersonHasNoEmbeddings
from bio_face_recognition.models import FaceEvent, Person, UnknownFace
from bio_face_recognition.runtime import FaceState, face_state
from bio_face_recognition.service.common import decode, delete_blobs, face_quality, get_event, get_person, vector_bytes
from bio_face_recognition.service.unknowns import crop_jpeg, purge_expired
from bio_shared.db import session_scope, utcnow
from bio_shared.inference import timed_inference
from bio_shared.jobs import new_id
from bio_shared.runtime import ServiceRuntime


@dataclass
class CandidateView:
    person_id: str
    person_name: str | None
    image_id: str
    distance: float
    confidence: float
    passed: bool


@dataclass
class FaceView:
    box: tuple[int, int, int, int]
    quality: dict[str, Any]
    match: CandidateView | None  # the nearest person, only when it passes the threshold
    passed: bool
    candidates: list[CandidateView]
    unknown_id: str | None = None


@dataclass
class Identified:
    event_id: str
    threshold: float
    top_k: int
    model: str
    model_version: str
    gallery_size: dict[str, int]
    faces: list[FaceView]
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class Verified:
    person_id: str
    person_name: str
    same_person: bool
    distance: float
    confidence: float
    threshold: float
    box: tuple[int, int, int, int]
    faces_in_probe: int
    model: str
    model_version: str


def analyze(state: FaceState, rgb: Any, event: FaceEvent, detector: str | None) -> list[Face]:
    detector = detector or event.detector
    with timed_inference("face_recognition", f"{detector}+resnet"):
        return state.pipeline.analyze(rgb, detector=detector, landmarks=event.landmarks,  # type: ignore[arg-type]
                                      min_face_px=event.min_face_px)


def _candidate(state: FaceState, c: Candidate, names: dict[str, str], threshold: float) -> CandidateView:
    return CandidateView(c.person_id, names.get(c.person_id), c.embedding_id, round(c.distance, 6),
                         round(state.confidence(c.distance), 6), c.distance <= threshold)


def _face_view(state: FaceState, face: Face, cands: list[Candidate], names: dict[str, str], threshold: float
               ) -> FaceView:
    views = [_candidate(state, c, names, threshold) for c in cands]
    best = views[0] if views and views[0].passed else None
    return FaceView(face.box, face_quality(face), best, best is not None, views)


def identify(rt: ServiceRuntime, owner: str, event_id: str, data: bytes, *, threshold: float | None = None,
             top_k: int | None = None, store_unknowns: bool = True, detector: str | None = None) -> Identified:
    state, timings = face_state(rt), {}
    t0 = time.perf_counter()
    with rt.sessions() as s:
        event = get_event(s, owner, event_id)
    decoded = decode(rt, data)
    timings["decode_ms"] = (time.perf_counter() - t0) * 1e3
    t = time.perf_counter()
    faces = analyze(state, decoded.pixels, event, detector)
    timings["detect_embed_ms"] = (time.perf_counter() - t) * 1e3
    threshold = event.threshold if threshold is None else threshold
    k = event.top_k if top_k is None else top_k
    t = time.perf_counter()
    with rt.sessions() as s:
        event = get_event(s, owner, event_id)
        gallery = state.galleries.get(s, event, state.model)
        timings["gallery_ms"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        results = [gallery.search(f.vector, k=k) for f in faces]
        timings["search_ms"] = (time.perf_counter() - t) * 1e3
        ids = {c.person_id for cands in results for c in cands}
        names = dict(s.execute(select(Person.id, Person.name).where(Person.id.in_(ids))).all()) if ids else {}
        size = {"people": gallery.person_count, "embeddings": len(gallery)}
    views = [_face_view(state, f, cands, names, threshold) for f, cands in zip(faces, results, strict=True)]
    if store_unknowns and event.unknown_retention_s > 0:
        strangers = [(v, f, cands[0] if cands else None)
                     for v, f, cands in zip(views, faces, results, strict=True) if not v.passed]
        if strangers:
            _store_unknowns(rt, owner, event, decoded.pixels, strangers)
    purge_expired(rt, owner=owner, event_id=event_id)
    timings["total_ms"] = (time.perf_counter() - t0) * 1e3
    return Identified(event_id, threshold, k, state.model[0], state.model[1], size, views,
                      {name: round(v, 2) for name, v in timings.items()})


def _store_unknowns(rt: ServiceRuntime, owner: str, event: FaceEvent, rgb: Any,
                    items: list[tuple[FaceView, Face, Candidate | None]]) -> None:
    state, now, keys = face_state(rt), utcnow(), []
    try:
        with session_scope(rt.sessions) as s:
            for view, face, best in items:
                key = rt.blobs.put(rt.blobs.new_key(owner, "face-unknowns", "jpg"), crop_jpeg(rgb, face.box))
                keys.append(key)
                row = UnknownFace(id=new_id(), owner_id=owner, event_id=event.id, vector=vector_bytes(face.embedding),
                                  model=state.model[0], model_version=state.model[1], box=list(face.box),
                                  quality=face_quality(face), best_distance=best.distance if best else None,
                                  crop_key=key, created_at=now,
                                  expires_at=now + timedelta(seconds=event.unknown_retention_s))
                s.add(row)
                view.unknown_id = row.id
    except BaseException:
        delete_blobs(rt, keys)
        raise


def verify(rt: ServiceRuntime, owner: str, event_id: str, person_id: str, data: bytes, *,
           threshold: float | None = None, detector: str | None = None) -> Verified:
    """Is the (largest) face of the probe this person? Distance = nearest of the person's embeddings."""
    state = face_state(rt)
    with rt.sessions() as s:
        event = get_event(s, owner, event_id)
        person = get_person(s, owner, event_id, person_id)
    decoded = decode(rt, data)
    faces = analyze(state, decoded.pixels, event, detector)
    if not faces:
        raise NoFace("no face was found in the probe")
    face = max(faces, key=lambda f: f.area)
    with rt.sessions() as s:
        event = get_event(s, owner, event_id)
        dists = state.galleries.get(s, event, state.model).distances_to(face.vector, person_id)
    if len(dists) == 0:
        raise PersonHasNoEmbeddings()
    threshold = event.threshold if threshold is None else threshold
    distance = float(dists.min())
    return Verified(person_id, person.name, distance <= threshold, round(distance, 6),
                    round(state.confidence(distance), 6), threshold, face.box, len(faces),
                    state.model[0], state.model[1])
