"""Enrollment: a new person or more photos of one, each photo checked (one face, large and sharp enough),
identical pictures skipped, faces that match another person warned about (or refused)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bio_face_recognition.engine.pipeline import Face
from bio_face_recognition.exceptions import (
    DuplicatePerson,
    FaceTooBlurred,
    FaceTooSmall,
    MultipleFaces,
    NoFace,
    NoImages,
    PersonNameTaken,
    TooManyImages,
)
from bio_face_recognition.models import FaceEmbedding, FaceEvent, Person
from bio_face_recognition.runtime import FaceState, face_state
from bio_face_recognition.service.common import (
    Upload,
    With,
    bump,
    decode,
    delete_blobs,
    face_quality,
    get_event,
    get_person,
    vector_bytes,
)
from bio_face_recognition.service.people import with_images
from bio_shared.db import session_scope, utcnow
from bio_shared.errors import BioError
from bio_shared.images import DecodedImage
from bio_shared.inference import timed_inference
from bio_shared.jobs import new_id
from bio_shared.runtime import ServiceRuntime

_EXT = {"JPEG": "jpg", "PNG": "png", "TIFF": "tif", "WEBP": "webp", "BMP": "bmp", "GIF": "gif", "PPM": "ppm"}


def pixel_sha256(pixels: np.ndarray) -> str:
    """sha256 of the decoded pixels and their shape: the same picture whatever its file (re-zipped, EXIF
    rewritten, re-saved losslessly) has one hash; a visibly different crop or re-compression does not."""
    h = hashlib.sha256("x".join(map(str, pixels.shape)).encode() + b":")
    h.update(np.ascontiguousarray(pixels).data)
    return h.hexdigest()


@dataclass
class Prepared:
    upload: Upload
    index: int
    decoded: DecodedImage
    sha256: str
    face: Face | None = None


@dataclass
class Plan:
    """The photos of one enrollment request: those to enroll, and the skipped identical ones."""

    event: FaceEvent
    todo: list[Prepared] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _skip(p: Prepared, image_id: str | None) -> dict[str, Any]:
    return {"file": p.upload.filename, "index": p.index, "code": "duplicate_image", "image_id": image_id,
            "message": "this picture is already enrolled for the person"}


def check_face(state: FaceState, event: FaceEvent, p: Prepared, largest: bool) -> Face:
    """Detect and check the face of one enrollment photo; a clear 422 for every refusal."""
    rgb, st, where = p.decoded.pixels, state.settings, {"file": p.upload.filename, "index": p.index}
    with timed_inference("face_recognition", f"{event.detector}_detect"):
        boxes = state.pipeline.detect(rgb, event.detector, event.min_face_px)  # type: ignore[arg-type]
    if not boxes:
        raise NoFace(details=where)
    if len(boxes) > 1 and not largest:
        raise MultipleFaces(f"{len(boxes)} faces were found; send a photo of one person, or ask for the largest "
                            "face (largest=true)", details=where | {
                                "faces": len(boxes), "boxes": [[round(v) for v in b] for b, _ in boxes]})
    box, score = max(boxes, key=lambda b: (b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))
    size = min(box[2] - box[0], box[3] - box[1])
    if size < st.enroll_min_face_px:
        raise FaceTooSmall(f"the face is {size:.0f} px; at least {st.enroll_min_face_px} px are needed",
                           details=where | {"face_px": round(size), "min_face_px": st.enroll_min_face_px})
    with timed_inference("face_recognition", "resnet_embed"):
        face = state.pipeline.describe(rgb, box, score, landmarks=event.landmarks)
    if face.sharpness < st.enroll_min_sharpness:
        raise FaceTooBlurred(details=where | {"sharpness": round(face.sharpness, 2),
                                              "min_sharpness": st.enroll_min_sharpness})
    return face


def _known_hashes(s: Session, person_id: str | None) -> dict[str, str]:
    if not person_id:
        return {}
    rows = s.execute(select(FaceEmbedding.content_sha256, FaceEmbedding.id).where(
        FaceEmbedding.person_id == person_id, FaceEmbedding.content_sha256.is_not(None))).all()
    return {h: i for h, i in rows if h}


def plan(rt: ServiceRuntime, owner: str, event_id: str, uploads: list[Upload], person_id: str | None,
         largest: bool) -> Plan:
    """Decode every photo, skip pictures the person already has (or that repeat in the request), check
    the faces of the others. One refusal refuses the request."""
    state = face_state(rt)
    if not uploads:
        raise NoImages()
    if len(uploads) > state.settings.max_images_per_request:
        raise TooManyImages(f"at most {state.settings.max_images_per_request} images per request")
    with rt.sessions() as s:
        out = Plan(get_event(s, owner, event_id))
        if person_id:
            get_person(s, owner, event_id, person_id)
        known = _known_hashes(s, person_id)
    seen: set[str] = set()
    for i, up in enumerate(uploads):
        try:
            decoded = decode(rt, up.data)
            p = Prepared(up, i, decoded, pixel_sha256(decoded.pixels))
            if p.sha256 in known or p.sha256 in seen:
                out.skipped.append(_skip(p, known.get(p.sha256)))
                continue
            p.face = check_face(state, out.event, p, largest)
        except BioError as exc:
            if exc.details is None:
                exc.details = {}
            if isinstance(exc.details, dict):
                exc.details.setdefault("file", up.filename)
                exc.details.setdefault("index", i)
            raise
        seen.add(p.sha256)
        out.todo.append(p)
    return out


def _duplicates(state: FaceState, s: Session, event: FaceEvent, face: Face, person_id: str | None
                ) -> list[dict[str, Any]]:
    gallery = state.galleries.get(s, event, state.model)
    out: list[dict[str, Any]] = [{"person_id": c.person_id, "distance": round(c.distance, 4)}
                                 for c in gallery.search(face.vector, k=3) if c.person_id != person_id and c.distance <= event.threshold]
    if out:
        names = dict(s.execute(select(Person.id, Person.name).where(
            Person.id.in_([d["person_id"] for d in out]))).all())
        for d in out:
            d["person_name"] = names.get(d["person_id"])
    return out


def _person_for(s: Session, owner: str, event_id: str, name: str | None, person_id: str | None) -> Person:
    now = utcnow()
    if person_id is None:
        person = Person(id=new_id(), owner_id=owner, event_id=event_id, name=name, created_at=now, updated_at=now)
        s.add(person)
        s.flush()
        return person
    person = get_person(s, owner, event_id, person_id)
    person.updated_at = now
    return person


def _write(rt: ServiceRuntime, s: Session, owner: str, p: Plan, person: Person, source: str | None,
           keys: list[str]) -> list[FaceEmbedding]:
    state, now, images = face_state(rt), utcnow(), []
    for item in p.todo:
        assert item.face is not None
        key = None
        if p.event.keep_images:
            ext = _EXT.get(item.decoded.format, "bin")
            key = rt.blobs.put(rt.blobs.new_key(owner, "face-images", ext), item.upload.data)
            keys.append(key)
        emb = FaceEmbedding(id=new_id(), owner_id=owner, event_id=p.event.id, person_id=person.id,
                            vector=vector_bytes(item.face.embedding), model=state.model[0],
                            model_version=state.model[1], box=list(item.face.box),
                            quality=face_quality(item.face), image_key=key, source=source,
                            content_sha256=item.sha256, created_at=now)
        s.add(emb)
        images.append(emb)
    return images


def enroll(rt: ServiceRuntime, owner: str, event_id: str, uploads: list[Upload], *, name: str | None = None,
           person_id: str | None = None, largest: bool = False, refuse_duplicates: bool | None = None,
           source: str | None = None) -> With:
    """Add a new person (``name``) or images to an existing one (``person_id``). All photos are checked
    first: one refusal refuses the request and nothing is stored."""
    state = face_state(rt)
    p = plan(rt, owner, event_id, uploads, person_id, largest)
    refuse = p.event.refuse_duplicates if refuse_duplicates is None else refuse_duplicates
    keys: list[str] = []
    try:
        with session_scope(rt.sessions) as s:
            p.event = get_event(s, owner, event_id, lock=True)
            # a concurrent request may have enrolled the same picture since the plan was made
            known = _known_hashes(s, person_id)
            p.skipped += [_skip(i, known[i.sha256]) for i in p.todo if i.sha256 in known]
            p.todo = [i for i in p.todo if i.sha256 not in known]
            warnings = [{"code": "possible_duplicate", "file": i.upload.filename, **dup}
                        for i in p.todo if i.face is not None
                        for dup in _duplicates(state, s, p.event, i.face, person_id)]
            if warnings and refuse:
                raise DuplicatePerson(details={"matches": warnings})
            person = _person_for(s, owner, event_id, name, person_id)
            added = _write(rt, s, owner, p, person, source, keys)
            version = bump(s, event_id) if added else None
            s.flush()
            result = with_images(s, person, added=added, warnings=warnings, skipped=p.skipped)
    except IntegrityError as exc:
        delete_blobs(rt, keys)
        raise PersonNameTaken(f"a person named {name!r} already exists in this event") from exc
    except BaseException:
        delete_blobs(rt, keys)
        raise
    if version is not None:  # committed: this process's index takes the new embeddings at once
        state.galleries.apply(event_id, state.model, version, [(e.id, e.vector) for e in added])
    return result
