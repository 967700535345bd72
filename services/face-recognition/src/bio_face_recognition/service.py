"""Face recognition use cases: events, people, enrollment, identification, unknown faces, bulk jobs.

No FastAPI here: the API, the Celery tasks and the CLI all call :class:`FaceService`.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bio_face_recognition.engine.gallery import Gallery, confidence
from bio_face_recognition.engine.pipeline import Face, FacePipeline
from bio_face_recognition.models import OWNED_MODELS, FaceEmbedding, FaceEvent, Person, UnknownFace
from bio_shared.db import session_scope, utcnow
from bio_shared.errors import BadRequest, BioError, Conflict, NotFound, Unprocessable
from bio_shared.images import DecodedImage, Mode, fit_rgb
from bio_shared.inference import timed_inference
from bio_shared.jobs import JobContext, new_id
from bio_shared.metrics import GALLERY_SIZE
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import decode_for, register_normalize_job

log = logging.getLogger(__name__)

NORMALIZE_MODE: Mode = "rgb"
ENROLL_ZIP_KIND = "enroll_zip"
EVENT_SETTINGS = ("threshold", "detector", "landmarks", "top_k", "keep_images", "min_face_px",
                  "unknown_retention_s", "refuse_duplicates")
_EXT = {"JPEG": "jpg", "PNG": "png", "TIFF": "tif", "WEBP": "webp", "BMP": "bmp", "GIF": "gif", "PPM": "ppm"}
_ZIP_SKIP = ("__MACOSX/", ".")


def vector_bytes(v: np.ndarray) -> bytes:
    return np.asarray(v, dtype="<f4").tobytes()


def vector_of(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f4")


# -- the per-process cache of embedding matrices -------------------------------------------------------
@dataclass
class _Cached:
    version: int
    model: tuple[str, str]
    gallery: Gallery
    loaded_in_s: float


class GalleryCache:
    """Each event's embedding matrix, loaded on first use and kept while ``FaceEvent.version`` (read
    from the database on every use) is unchanged: a change made by any replica invalidates it."""

    def __init__(self, max_bytes: int, service: str) -> None:
        self.max_bytes = max_bytes
        self.service = service
        self._items: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.loads = 0

    def get(self, session: Session, event: FaceEvent, model: tuple[str, str]) -> Gallery:
        with self._lock:
            item = self._items.get(event.id)
            if item and item.version == event.version and item.model == model:
                self._items.move_to_end(event.id)
                return item.gallery
            loading = self._loading.setdefault(event.id, threading.Lock())
        with loading:  # one load per event at a time; others wait for it
            with self._lock:
                item = self._items.get(event.id)
                if item and item.version == event.version and item.model == model:
                    return item.gallery
            start = time.perf_counter()
            gallery = load_gallery(session, event.id, model)
            item = _Cached(event.version, model, gallery, time.perf_counter() - start)
            with self._lock:
                self._items[event.id] = item
                self._items.move_to_end(event.id)
                self.loads += 1
                total = sum(i.gallery.nbytes for i in self._items.values())
                while total > self.max_bytes and len(self._items) > 1:
                    _, dropped = self._items.popitem(last=False)
                    total -= dropped.gallery.nbytes
                GALLERY_SIZE.labels(self.service, "cached_embeddings").set(
                    sum(len(i.gallery) for i in self._items.values()))
            return gallery

    def drop(self, event_id: str) -> None:
        with self._lock:
            self._items.pop(event_id, None)
            self._loading.pop(event_id, None)

    def info(self, event_id: str) -> _Cached | None:
        return self._items.get(event_id)


def load_gallery(session: Session, event_id: str, model: tuple[str, str]) -> Gallery:
    rows = session.execute(
        select(FaceEmbedding.person_id, FaceEmbedding.id, FaceEmbedding.vector)
        .where(FaceEmbedding.event_id == event_id, FaceEmbedding.model == model[0],
               FaceEmbedding.model_version == model[1])
        .order_by(FaceEmbedding.person_id)
    ).all()
    if not rows:
        return Gallery([], [], np.zeros((0, 128), np.float32))
    people, ids, vectors = zip(*rows)
    matrix = np.frombuffer(b"".join(vectors), dtype="<f4").reshape(len(rows), -1)
    return Gallery(list(people), list(ids), matrix)


# -- helpers ---------------------------------------------------------------------------------------------
@dataclass
class Upload:
    data: bytes
    filename: str | None = None


def _bump(session: Session, event_id: str) -> None:
    session.execute(update(FaceEvent).where(FaceEvent.id == event_id)
                    .values(version=FaceEvent.version + 1, updated_at=utcnow()))


def _crop_jpeg(rgb: np.ndarray, box: tuple[int, int, int, int], max_side: int = 256) -> bytes:
    h, w = rgb.shape[:2]
    left, top, right, bottom = box
    mx, my = int(0.3 * (right - left)), int(0.3 * (bottom - top))
    crop = rgb[max(0, top - my):min(h, bottom + my), max(0, left - mx):min(w, right + mx)]
    img = Image.fromarray(np.ascontiguousarray(crop))
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def event_dict(event: FaceEvent, people: int | None = None, embeddings: int | None = None) -> dict[str, Any]:
    out = {"id": event.id, "name": event.name, "settings": {k: getattr(event, k) for k in EVENT_SETTINGS},
           "version": event.version, "created_at": event.created_at, "updated_at": event.updated_at}
    if people is not None:
        out["person_count"] = people
    if embeddings is not None:
        out["image_count"] = embeddings
    return out


def face_quality(face: Face) -> dict[str, Any]:
    return {"face_px": face.size, "sharpness": round(face.sharpness, 2), "detector_score": round(face.score, 3)}


class FaceService:
    def __init__(self, rt: ServiceRuntime, pipeline: FacePipeline | None = None) -> None:
        self.rt = rt
        self.settings = rt.settings
        self._pipeline = pipeline
        self._pipeline_lock = threading.Lock()
        self.cache = GalleryCache(self.settings.gallery_cache_bytes, rt.name)

    # -- models ------------------------------------------------------------------------------------
    @property
    def pipeline(self) -> FacePipeline:
        if self._pipeline is None:
            with self._pipeline_lock:
                if self._pipeline is None:
                    self._pipeline = FacePipeline(detect_max_pixels=self.settings.detect_max_pixels,
                                                  descriptor=self.settings.descriptor)
        return self._pipeline

    @property
    def model(self) -> tuple[str, str]:
        return self.pipeline.model_name, self.pipeline.model_version

    def decode(self, data: bytes) -> DecodedImage:
        return decode_for(self.rt, data, "rgb")

    def analyze(self, rgb: np.ndarray, event: FaceEvent, detector: str | None = None) -> list[Face]:
        detector = detector or event.detector
        if detector not in ("hog", "cnn"):
            raise BadRequest("detector must be hog or cnn", code="invalid_detector")
        with timed_inference(self.rt.name, f"{detector}+resnet"):
            return self.pipeline.analyze(rgb, detector=detector, landmarks=event.landmarks,  # type: ignore[arg-type]
                                         min_face_px=event.min_face_px)

    # -- events ------------------------------------------------------------------------------------
    def _event(self, s: Session, owner: str, event_id: str, *, lock: bool = False) -> FaceEvent:
        stmt = select(FaceEvent).where(FaceEvent.id == event_id, FaceEvent.owner_id == owner)
        if lock:
            stmt = stmt.with_for_update()
        event = s.scalar(stmt) if len(event_id) <= 32 else None
        if event is None:
            raise NotFound("event not found", code="event_not_found")
        return event

    def create_event(self, owner: str, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        st = self.settings
        values = {"threshold": st.default_threshold, "detector": "hog", "landmarks": 5, "top_k": st.default_top_k,
                  "keep_images": False, "min_face_px": None, "unknown_retention_s": st.default_unknown_retention_s,
                  "refuse_duplicates": False}
        values.update({k: v for k, v in settings.items() if v is not None and k in EVENT_SETTINGS})
        now = utcnow()
        event = FaceEvent(id=new_id(), owner_id=owner, name=name, version=0, created_at=now, updated_at=now, **values)
        try:
            with session_scope(self.rt.sessions) as s:
                s.add(event)
        except IntegrityError as exc:
            raise Conflict(f"an event named {name!r} already exists", code="event_name_taken") from exc
        return event_dict(event, 0, 0)

    def _counts(self, s: Session, event_ids: list[str]) -> tuple[dict[str, int], dict[str, int]]:
        if not event_ids:
            return {}, {}
        people = dict(s.execute(select(Person.event_id, func.count()).where(Person.event_id.in_(event_ids))
                                .group_by(Person.event_id)).all())
        images = dict(s.execute(select(FaceEmbedding.event_id, func.count())
                                .where(FaceEmbedding.event_id.in_(event_ids)).group_by(FaceEmbedding.event_id)).all())
        return people, images

    def list_events(self, owner: str, limit: int, offset: int) -> dict[str, Any]:
        with self.rt.sessions() as s:
            total = s.scalar(select(func.count()).select_from(FaceEvent).where(FaceEvent.owner_id == owner))
            events = list(s.scalars(select(FaceEvent).where(FaceEvent.owner_id == owner)
                                    .order_by(FaceEvent.created_at, FaceEvent.id).limit(limit).offset(offset)))
            people, images = self._counts(s, [e.id for e in events])
        return {"items": [event_dict(e, people.get(e.id, 0), images.get(e.id, 0)) for e in events],
                "total": total, "limit": limit, "offset": offset}

    def get_event(self, owner: str, event_id: str) -> dict[str, Any]:
        with self.rt.sessions() as s:
            event = self._event(s, owner, event_id)
            people, images = self._counts(s, [event.id])
        return event_dict(event, people.get(event.id, 0), images.get(event.id, 0))

    def update_event(self, owner: str, event_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        try:
            with session_scope(self.rt.sessions) as s:
                event = self._event(s, owner, event_id)
                for key, value in changes.items():
                    if key == "name" and value is not None:
                        event.name = value
                    elif key in EVENT_SETTINGS and (value is not None or key == "min_face_px"):
                        setattr(event, key, value)
                event.updated_at = utcnow()
        except IntegrityError as exc:
            raise Conflict(f"an event named {changes.get('name')!r} already exists", code="event_name_taken") from exc
        return self.get_event(owner, event_id)

    def _delete_people_rows(self, s: Session, event_id: str, person_id: str | None = None) -> tuple[dict, list[str]]:
        """Delete embeddings (and people) of an event or of one person; returns counts and blob keys."""
        emb_filter = [FaceEmbedding.event_id == event_id]
        if person_id:
            emb_filter.append(FaceEmbedding.person_id == person_id)
        keys = [k for k in s.scalars(select(FaceEmbedding.image_key).where(*emb_filter)) if k]
        n_emb = s.execute(delete(FaceEmbedding).where(*emb_filter)).rowcount
        people_filter = [Person.event_id == event_id] + ([Person.id == person_id] if person_id else [])
        n_people = s.execute(delete(Person).where(*people_filter)).rowcount
        return {"people": n_people, "images": n_emb}, keys

    def _delete_blobs(self, keys: Iterable[str]) -> int:
        n = 0
        for key in keys:
            try:
                n += bool(self.rt.blobs.delete(key))
            except Exception:
                log.exception("could not delete blob of a deleted face")
        return n

    def delete_event(self, owner: str, event_id: str) -> dict[str, Any]:
        with session_scope(self.rt.sessions) as s:
            event = self._event(s, owner, event_id)
            counts, keys = self._delete_people_rows(s, event.id)
            ukeys = [k for k in s.scalars(select(UnknownFace.crop_key).where(UnknownFace.event_id == event.id)) if k]
            counts["unknowns"] = s.execute(delete(UnknownFace).where(UnknownFace.event_id == event.id)).rowcount
            s.delete(event)
        counts["blobs"] = self._delete_blobs(keys + ukeys)
        self.cache.drop(event_id)
        return {"deleted": counts}

    def reset_event(self, owner: str, event_id: str) -> dict[str, Any]:
        """Remove every person (their embeddings and images); the event and its settings stay."""
        with session_scope(self.rt.sessions) as s:
            event = self._event(s, owner, event_id)
            counts, keys = self._delete_people_rows(s, event.id)
            _bump(s, event.id)
        counts["blobs"] = self._delete_blobs(keys)
        return {"deleted": counts, "event": self.get_event(owner, event_id)}

    # -- people ------------------------------------------------------------------------------------
    def _person(self, s: Session, owner: str, event_id: str, person_id: str) -> Person:
        person = s.scalar(select(Person).where(Person.id == person_id, Person.event_id == event_id,
                                               Person.owner_id == owner)) if len(person_id) <= 32 else None
        if person is None:
            raise NotFound("person not found in this event", code="person_not_found")
        return person

    def person_dict(self, s: Session, person: Person, with_images: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"id": person.id, "event_id": person.event_id, "name": person.name,
                               "created_at": person.created_at, "updated_at": person.updated_at}
        if with_images:
            rows = s.scalars(select(FaceEmbedding).where(FaceEmbedding.person_id == person.id)
                             .order_by(FaceEmbedding.created_at, FaceEmbedding.id)).all()
            out["images"] = [self.image_dict(e) for e in rows]
            out["image_count"] = len(rows)
        return out

    @staticmethod
    def image_dict(e: FaceEmbedding) -> dict[str, Any]:
        return {"id": e.id, "box": e.box, "quality": e.quality, "model": e.model, "model_version": e.model_version,
                "image_kept": bool(e.image_key), "created_at": e.created_at}

    def list_people(self, owner: str, event_id: str, limit: int, offset: int, name: str | None = None
                    ) -> dict[str, Any]:
        with self.rt.sessions() as s:
            self._event(s, owner, event_id)
            cond = [Person.event_id == event_id, Person.owner_id == owner]
            if name:
                cond.append(Person.name == name)
            total = s.scalar(select(func.count()).select_from(Person).where(*cond))
            people = list(s.scalars(select(Person).where(*cond).order_by(Person.created_at, Person.id)
                                    .limit(limit).offset(offset)))
            ids = [p.id for p in people]
            counts = dict(s.execute(select(FaceEmbedding.person_id, func.count())
                                    .where(FaceEmbedding.person_id.in_(ids)).group_by(FaceEmbedding.person_id)).all()
                          ) if ids else {}
        items = [self.person_dict(s, p) | {"image_count": counts.get(p.id, 0)} for p in people]
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    def get_person(self, owner: str, event_id: str, person_id: str) -> dict[str, Any]:
        with self.rt.sessions() as s:
            self._event(s, owner, event_id)
            return self.person_dict(s, self._person(s, owner, event_id, person_id), with_images=True)

    def rename_person(self, owner: str, event_id: str, person_id: str, name: str) -> dict[str, Any]:
        try:
            with session_scope(self.rt.sessions) as s:
                self._event(s, owner, event_id)
                person = self._person(s, owner, event_id, person_id)
                person.name = name
                person.updated_at = utcnow()
        except IntegrityError as exc:
            raise Conflict(f"a person named {name!r} already exists in this event", code="person_name_taken") from exc
        return self.get_person(owner, event_id, person_id)

    def delete_person(self, owner: str, event_id: str, person_id: str) -> dict[str, Any]:
        with session_scope(self.rt.sessions) as s:
            self._event(s, owner, event_id)
            self._person(s, owner, event_id, person_id)
            counts, keys = self._delete_people_rows(s, event_id, person_id)
            _bump(s, event_id)
        counts["blobs"] = self._delete_blobs(keys)
        return {"deleted": counts}

    def _image(self, s: Session, owner: str, event_id: str, person_id: str, image_id: str) -> FaceEmbedding:
        """One enrolled photo (its embedding row) of a person of the owner's event, or 404."""
        self._event(s, owner, event_id)
        self._person(s, owner, event_id, person_id)
        emb = s.scalar(select(FaceEmbedding).where(FaceEmbedding.id == image_id,
                                                   FaceEmbedding.person_id == person_id))
        if emb is None:
            raise NotFound("image not found for this person", code="image_not_found")
        return emb

    def delete_image(self, owner: str, event_id: str, person_id: str, image_id: str) -> dict[str, Any]:
        with session_scope(self.rt.sessions) as s:
            emb = self._image(s, owner, event_id, person_id, image_id)
            key = emb.image_key
            s.delete(emb)
            _bump(s, event_id)
        return {"deleted": {"images": 1, "blobs": self._delete_blobs([key] if key else [])}}

    def image_bytes(self, owner: str, event_id: str, person_id: str, image_id: str) -> tuple[bytes, str]:
        with self.rt.sessions() as s:
            emb = self._image(s, owner, event_id, person_id, image_id)
        if not emb.image_key:
            raise NotFound("this event does not keep images; only the embedding was stored", code="image_not_kept")
        data = self.rt.blobs.get(emb.image_key)
        return data, _media_type(emb.image_key)

    # -- enrollment --------------------------------------------------------------------------------
    def prepare_face(self, event: FaceEvent, upload: Upload, largest: bool) -> tuple[Face, DecodedImage]:
        """Decode, detect and check one enrollment photo; raises a clear 4xx for every refusal."""
        decoded = self.decode(upload.data)
        rgb = decoded.pixels
        with timed_inference(self.rt.name, f"{event.detector}_detect"):
            boxes = self.pipeline.detect(rgb, event.detector, event.min_face_px)
        name = upload.filename
        if not boxes:
            raise Unprocessable("no face was found in the photo", code="no_face", details={"file": name})
        if len(boxes) > 1 and not largest:
            raise Unprocessable(f"{len(boxes)} faces were found; send a photo of one person, or ask for the "
                                "largest face (largest=true)", code="multiple_faces",
                                details={"file": name, "faces": len(boxes),
                                         "boxes": [[round(v) for v in b] for b, _ in boxes]})
        box, score = max(boxes, key=lambda b: (b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))
        size = min(box[2] - box[0], box[3] - box[1])
        if size < self.settings.enroll_min_face_px:
            raise Unprocessable(f"the face is {size:.0f} px; at least {self.settings.enroll_min_face_px} px are "
                                "needed", code="face_too_small",
                                details={"file": name, "face_px": round(size),
                                         "min_face_px": self.settings.enroll_min_face_px})
        with timed_inference(self.rt.name, "resnet_embed"):
            face = self.pipeline.describe(rgb, box, score, landmarks=event.landmarks)
        if face.sharpness < self.settings.enroll_min_sharpness:
            raise Unprocessable("the face is too blurred to enroll", code="face_too_blurred",
                                details={"file": name, "sharpness": round(face.sharpness, 2),
                                         "min_sharpness": self.settings.enroll_min_sharpness})
        return face, decoded

    def _duplicates(self, s: Session, event: FaceEvent, face: Face, person_id: str | None) -> list[dict[str, Any]]:
        gallery = self.cache.get(s, event, self.model)
        out = []
        for cand in gallery.search(face.embedding, k=3):
            if cand.person_id != person_id and cand.distance <= event.threshold:
                out.append({"person_id": cand.person_id, "distance": round(cand.distance, 4)})
        if out:
            names = dict(s.execute(select(Person.id, Person.name)
                                   .where(Person.id.in_([d["person_id"] for d in out]))).all())
            for d in out:
                d["person_name"] = names.get(d["person_id"])
        return out

    def _store_image(self, owner: str, decoded: DecodedImage, data: bytes) -> str:
        ext = _EXT.get(decoded.format, "bin")
        return self.rt.blobs.put(self.rt.blobs.new_key(owner, "face-images", ext), data)

    def enroll(self, owner: str, event_id: str, uploads: list[Upload], *, name: str | None = None,
               person_id: str | None = None, largest: bool = False, refuse_duplicates: bool | None = None,
               source: str | None = None) -> dict[str, Any]:
        """Add a new person (``name``) or images to an existing one (``person_id``). All photos are
        checked first: one refusal refuses the request and nothing is stored."""
        if not uploads:
            raise BadRequest("at least one image is needed", code="no_images")
        if len(uploads) > self.settings.max_images_per_request:
            raise BadRequest(f"at most {self.settings.max_images_per_request} images per request",
                             code="too_many_images")
        with self.rt.sessions() as s:
            event = self._event(s, owner, event_id)
            if person_id:
                self._person(s, owner, event_id, person_id)
        prepared = []
        for i, up in enumerate(uploads):
            try:
                prepared.append((self.prepare_face(event, up, largest), up))
            except BioError as exc:
                if isinstance(exc.details, dict):
                    exc.details.setdefault("index", i)
                raise
        refuse = event.refuse_duplicates if refuse_duplicates is None else refuse_duplicates
        keys: list[str] = []
        try:
            with session_scope(self.rt.sessions) as s:
                event = self._event(s, owner, event_id, lock=True)
                warnings = []
                for (face, _), up in prepared:
                    for dup in self._duplicates(s, event, face, person_id):
                        warnings.append({"code": "possible_duplicate", "file": up.filename, **dup})
                if warnings and refuse:
                    raise Conflict("the face already matches another person of this event",
                                   code="duplicate_person", details={"matches": warnings})
                now = utcnow()
                if person_id is None:
                    person = Person(id=new_id(), owner_id=owner, event_id=event_id, name=name, created_at=now,
                                    updated_at=now)
                    s.add(person)
                    s.flush()
                else:
                    person = self._person(s, owner, event_id, person_id)
                    person.updated_at = now
                images = []
                for (face, decoded), up in prepared:
                    key = self._store_image(owner, decoded, up.data) if event.keep_images else None
                    if key:
                        keys.append(key)
                    emb = FaceEmbedding(id=new_id(), owner_id=owner, event_id=event_id, person_id=person.id,
                                        vector=vector_bytes(face.embedding), model=self.model[0],
                                        model_version=self.model[1], box=list(face.box), quality=face_quality(face),
                                        image_key=key, source=source, created_at=now)
                    s.add(emb)
                    images.append(emb)
                _bump(s, event_id)
                s.flush()
                result = self.person_dict(s, person, with_images=True)
                result["added"] = [self.image_dict(e) for e in images]
                result["warnings"] = warnings
        except IntegrityError as exc:
            self._delete_blobs(keys)
            raise Conflict(f"a person named {name!r} already exists in this event", code="person_name_taken") from exc
        except BaseException:
            self._delete_blobs(keys)
            raise
        return result

    # -- recognition -------------------------------------------------------------------------------
    def identify(self, owner: str, event_id: str, data: bytes, *, threshold: float | None = None,
                 top_k: int | None = None, store_unknowns: bool = True, detector: str | None = None
                 ) -> dict[str, Any]:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        decoded = self.decode(data)
        timings["decode_ms"] = (time.perf_counter() - t0) * 1e3
        with self.rt.sessions() as s:
            event = self._event(s, owner, event_id)
        t = time.perf_counter()
        faces = self.analyze(decoded.pixels, event, detector)
        timings["detect_embed_ms"] = (time.perf_counter() - t) * 1e3
        threshold = event.threshold if threshold is None else threshold
        k = event.top_k if top_k is None else top_k
        t = time.perf_counter()
        with self.rt.sessions() as s:
            event = self._event(s, owner, event_id)
            gallery = self.cache.get(s, event, self.model)
            timings["gallery_ms"] = (time.perf_counter() - t) * 1e3
            t = time.perf_counter()
            results = [gallery.search(f.embedding, k=k) for f in faces]
            timings["search_ms"] = (time.perf_counter() - t) * 1e3
            ids = {c.person_id for cands in results for c in cands}
            names = dict(s.execute(select(Person.id, Person.name).where(Person.id.in_(ids))).all()) if ids else {}
        out_faces, unknowns = [], []
        for face, cands in zip(faces, results):
            best = cands[0] if cands else None
            passed = best is not None and best.distance <= threshold
            entry: dict[str, Any] = {
                "box": _box(face.box), "quality": face_quality(face),
                "match": _cand(best, names) if best else None, "passed": passed,
                "candidates": [_cand(c, names) | {"passed": c.distance <= threshold} for c in cands],
                "unknown_id": None,
            }
            if not passed and store_unknowns and event.unknown_retention_s > 0:
                unknowns.append((entry, face, best))
            out_faces.append(entry)
        if unknowns:
            self._store_unknowns(owner, event, decoded.pixels, unknowns)
        self.purge_expired(owner=owner, event_id=event_id)
        timings["total_ms"] = (time.perf_counter() - t0) * 1e3
        return {"event_id": event_id, "threshold": threshold, "top_k": k, "model": self.model[0],
                "model_version": self.model[1], "gallery_size": {"people": gallery.person_count,
                                                                 "embeddings": len(gallery)},
                "faces": out_faces, "timings_ms": {k2: round(v, 2) for k2, v in timings.items()}}

    def _store_unknowns(self, owner: str, event: FaceEvent, rgb: np.ndarray, items: list) -> None:
        now = utcnow()
        keys = []
        try:
            with session_scope(self.rt.sessions) as s:
                for entry, face, best in items:
                    key = self.rt.blobs.put(self.rt.blobs.new_key(owner, "face-unknowns", "jpg"),
                                            _crop_jpeg(rgb, face.box))
                    keys.append(key)
                    row = UnknownFace(id=new_id(), owner_id=owner, event_id=event.id,
                                      vector=vector_bytes(face.embedding), model=self.model[0],
                                      model_version=self.model[1], box=list(face.box), quality=face_quality(face),
                                      best_distance=best.distance if best else None, crop_key=key, created_at=now,
                                      expires_at=now + timedelta(seconds=event.unknown_retention_s))
                    s.add(row)
                    entry["unknown_id"] = row.id
        except BaseException:
            self._delete_blobs(keys)
            raise

    def verify(self, owner: str, event_id: str, person_id: str, data: bytes, *,
               threshold: float | None = None, detector: str | None = None) -> dict[str, Any]:
        """Is the (largest) face of the probe this person? Distance = nearest of the person's embeddings."""
        decoded = self.decode(data)
        with self.rt.sessions() as s:
            event = self._event(s, owner, event_id)
            person = self._person(s, owner, event_id, person_id)
        faces = self.analyze(decoded.pixels, event, detector)
        if not faces:
            raise Unprocessable("no face was found in the probe", code="no_face")
        face = max(faces, key=lambda f: f.area)
        with self.rt.sessions() as s:
            event = self._event(s, owner, event_id)
            gallery = self.cache.get(s, event, self.model)
        dists = gallery.distances_to(face.embedding, person_id)
        if len(dists) == 0:
            raise Conflict("this person has no embedding of the current model; add an image first",
                           code="person_has_no_embeddings")
        threshold = event.threshold if threshold is None else threshold
        distance = float(dists.min())
        return {"person_id": person_id, "person_name": person.name, "same_person": distance <= threshold,
                "distance": round(distance, 6), "confidence": round(confidence(distance), 6),
                "threshold": threshold, "box": _box(face.box), "faces_in_probe": len(faces),
                "model": self.model[0], "model_version": self.model[1]}

    # -- unknown faces -----------------------------------------------------------------------------
    @staticmethod
    def unknown_dict(u: UnknownFace) -> dict[str, Any]:
        return {"id": u.id, "event_id": u.event_id, "box": u.box, "quality": u.quality,
                "best_distance": u.best_distance, "created_at": u.created_at, "expires_at": u.expires_at,
                "model": u.model, "model_version": u.model_version}

    def list_unknowns(self, owner: str, event_id: str, limit: int, offset: int) -> dict[str, Any]:
        self.purge_expired(owner=owner, event_id=event_id)
        with self.rt.sessions() as s:
            self._event(s, owner, event_id)
            cond = [UnknownFace.event_id == event_id, UnknownFace.owner_id == owner]
            total = s.scalar(select(func.count()).select_from(UnknownFace).where(*cond))
            rows = s.scalars(select(UnknownFace).where(*cond).order_by(UnknownFace.created_at.desc(), UnknownFace.id)
                             .limit(limit).offset(offset)).all()
        return {"items": [self.unknown_dict(u) for u in rows], "total": total, "limit": limit, "offset": offset}

    def _unknown(self, s: Session, owner: str, event_id: str, unknown_id: str) -> UnknownFace:
        u = s.scalar(select(UnknownFace).where(UnknownFace.id == unknown_id, UnknownFace.event_id == event_id,
                                               UnknownFace.owner_id == owner)) if len(unknown_id) <= 32 else None
        if u is None or u.expires_at < utcnow():
            raise NotFound("unknown face not found (or expired)", code="unknown_not_found")
        return u

    def unknown_crop(self, owner: str, event_id: str, unknown_id: str) -> bytes:
        with self.rt.sessions() as s:
            self._event(s, owner, event_id)
            u = self._unknown(s, owner, event_id, unknown_id)
        if not u.crop_key:
            raise NotFound("no crop is stored for this face", code="crop_not_found")
        return self.rt.blobs.get(u.crop_key)

    def confirm_unknown(self, owner: str, event_id: str, unknown_id: str, *, person_id: str | None = None,
                        name: str | None = None) -> dict[str, Any]:
        """Enroll the unknown face's embedding as a new person (``name``) or into ``person_id``."""
        if bool(person_id) == bool(name):
            raise BadRequest("give either person_id (an existing person) or name (a new person)",
                             code="person_or_name")
        drop_key = None
        try:
            with session_scope(self.rt.sessions) as s:
                event = self._event(s, owner, event_id, lock=True)
                u = self._unknown(s, owner, event_id, unknown_id)
                now = utcnow()
                if person_id:
                    person = self._person(s, owner, event_id, person_id)
                    person.updated_at = now
                else:
                    person = Person(id=new_id(), owner_id=owner, event_id=event_id, name=name, created_at=now,
                                    updated_at=now)
                    s.add(person)
                    s.flush()
                keep = event.keep_images and u.crop_key
                emb = FaceEmbedding(id=new_id(), owner_id=owner, event_id=event_id, person_id=person.id,
                                    vector=u.vector, model=u.model, model_version=u.model_version, box=None,
                                    quality=u.quality, image_key=u.crop_key if keep else None,
                                    source=f"unknown:{u.id}", created_at=now)
                s.add(emb)
                drop_key = None if keep else u.crop_key
                s.delete(u)
                _bump(s, event_id)
                s.flush()
                result = self.person_dict(s, person, with_images=True)
        except IntegrityError as exc:
            raise Conflict(f"a person named {name!r} already exists in this event", code="person_name_taken") from exc
        if drop_key:
            self._delete_blobs([drop_key])
        return result

    def discard_unknown(self, owner: str, event_id: str, unknown_id: str) -> dict[str, Any]:
        with session_scope(self.rt.sessions) as s:
            self._event(s, owner, event_id)
            u = self._unknown(s, owner, event_id, unknown_id)
            key = u.crop_key
            s.delete(u)
        return {"deleted": {"unknowns": 1, "blobs": self._delete_blobs([key] if key else [])}}

    def purge_expired(self, owner: str | None = None, event_id: str | None = None) -> int:
        """Delete unknown faces past their retention (rows, then crops)."""
        cond = [UnknownFace.expires_at < utcnow()]
        if owner:
            cond.append(UnknownFace.owner_id == owner)
        if event_id:
            cond.append(UnknownFace.event_id == event_id)
        with session_scope(self.rt.sessions) as s:
            rows = s.execute(select(UnknownFace.id, UnknownFace.crop_key).where(*cond).limit(5000)).all()
            if not rows:
                return 0
            s.execute(delete(UnknownFace).where(UnknownFace.id.in_([r[0] for r in rows])))
        self._delete_blobs(r[1] for r in rows if r[1])
        return len(rows)

    # -- bulk enrollment ---------------------------------------------------------------------------
    def enroll_entries(self, owner: str, event_id: str, entries: Iterable[tuple[str | None, str, Callable[[], bytes]]],
                       total: int, *, largest: bool = False, source_prefix: str = "",
                       progress: Callable[[float], None] | None = None) -> dict[str, Any]:
        """Enroll ``(person name, file name, read bytes)`` entries one by one; every file gets a line in
        the report (enrolled, or why not). Files already enrolled under the same source (a re-run of an
        interrupted job) are reported as such and not enrolled twice."""
        report: list[dict[str, Any]] = []
        people_created: set[str] = set()
        with self.rt.sessions() as s:
            self._event(s, owner, event_id)
            done = set(s.scalars(select(FaceEmbedding.source).where(
                FaceEmbedding.event_id == event_id, FaceEmbedding.source.like(f"{source_prefix}%")))
            ) if source_prefix else set()
        for i, (person_name, filename, read) in enumerate(entries):
            line: dict[str, Any] = {"file": filename, "person": person_name}
            source = f"{source_prefix}{filename}"[:300] if source_prefix else None
            try:
                if source and source in done:
                    line.update(status="enrolled", note="already enrolled by an earlier attempt")
                else:
                    data = read()  # metadata files and unreadable archive entries are reported here
                    if not person_name:
                        raise BioError("files must be in one folder per person", code="no_person_folder")
                    line.update(self._enroll_named(owner, event_id, person_name, Upload(data, filename),
                                                   largest=largest, source=source, created=people_created))
            except BioError as exc:
                status = "skipped" if exc.code == "skipped_metadata" else "failed"
                line.update(status=status, code=exc.code, message=exc.message)
            except Exception as exc:
                log.exception("bulk enrollment of %s failed", filename)
                line.update(status="failed", code="internal_error", message=type(exc).__name__)
            report.append(line)
            if progress and (i % 5 == 4 or i + 1 == total):
                progress((i + 1) / max(1, total))
        enrolled = sum(1 for r in report if r["status"] == "enrolled")
        skipped = sum(1 for r in report if r["status"] == "skipped")
        failures: dict[str, int] = {}
        for r in report:
            if r["status"] == "failed":
                failures[r["code"]] = failures.get(r["code"], 0) + 1
        return {"event_id": event_id, "files": len(report), "enrolled": enrolled, "skipped": skipped,
                "failed": len(report) - enrolled - skipped,
                "failures_by_code": failures, "people_created": len(people_created), "report": report}

    def _enroll_named(self, owner: str, event_id: str, name: str, upload: Upload, *, largest: bool,
                      source: str | None, created: set[str]) -> dict[str, Any]:
        with self.rt.sessions() as s:
            person_id = s.scalar(select(Person.id).where(Person.event_id == event_id, Person.owner_id == owner,
                                                         Person.name == name))
        if person_id is None:
            try:
                res = self.enroll(owner, event_id, [upload], name=name, largest=largest, source=source)
                created.add(res["id"])
            except Conflict as exc:
                if exc.code != "person_name_taken":
                    raise
                return self._enroll_named(owner, event_id, name, upload, largest=largest, source=source,
                                          created=created)
        else:
            res = self.enroll(owner, event_id, [upload], person_id=person_id, largest=largest, source=source)
        return {"status": "enrolled", "person_id": res["id"], "image_id": res["added"][0]["id"],
                "warnings": res["warnings"]}

    # -- re-embedding for a new model --------------------------------------------------------------
    def reembed(self, owner: str | None = None, event_id: str | None = None, dry_run: bool = False
                ) -> dict[str, Any]:
        """Recompute every embedding whose model or version differs from the loaded model, from its
        stored image (events that keep images); the others are reported (their people must re-enroll)."""
        cond = [(FaceEmbedding.model != self.model[0]) | (FaceEmbedding.model_version != self.model[1])]
        if owner:
            cond.append(FaceEmbedding.owner_id == owner)
        if event_id:
            cond.append(FaceEmbedding.event_id == event_id)
        with self.rt.sessions() as s:
            rows = s.execute(select(FaceEmbedding.id, FaceEmbedding.event_id, FaceEmbedding.image_key,
                                    FaceEmbedding.box).where(*cond)).all()
            settings = {e.id: (e.detector, e.landmarks, e.min_face_px) for e in s.scalars(
                select(FaceEvent).where(FaceEvent.id.in_({r[1] for r in rows})))} if rows else {}
        out = {"stale": len(rows), "recomputed": 0, "no_image": 0, "failed": 0, "model": self.model[0],
               "model_version": self.model[1], "failures": []}
        for emb_id, ev_id, key, box in rows:
            if not key or not self.rt.blobs.exists(key):
                out["no_image"] += 1
                continue
            if dry_run:
                continue
            try:
                detector, landmarks, min_face = settings[ev_id]
                rgb = self.decode(self.rt.blobs.get(key)).pixels
                boxes = self.pipeline.detect(rgb, detector, min_face)
                if not boxes:
                    raise Unprocessable("no face found again", code="no_face")
                chosen = max(boxes, key=lambda b: _iou(b[0], box) if box else (b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))
                face = self.pipeline.describe(rgb, chosen[0], chosen[1], landmarks=landmarks)
                with session_scope(self.rt.sessions) as s:
                    s.execute(update(FaceEmbedding).where(FaceEmbedding.id == emb_id).values(
                        vector=vector_bytes(face.embedding), model=self.model[0], model_version=self.model[1],
                        box=list(face.box), quality=face_quality(face)))
                    _bump(s, ev_id)
                out["recomputed"] += 1
            except BioError as exc:
                out["failed"] += 1
                out["failures"].append({"image_id": emb_id, "code": exc.code})
        return out

    # -- background ------------------------------------------------------------------------------
    def start_purger(self) -> threading.Event:
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.settings.unknown_purge_interval_s):
                try:
                    self.purge_expired()
                except Exception:
                    log.exception("purge of expired unknown faces failed")

        threading.Thread(target=loop, name="face-unknown-purger", daemon=True).start()
        return stop


def _iou(a: Any, b: Any) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _box(box: tuple[int, int, int, int]) -> dict[str, int]:
    left, top, right, bottom = box
    return {"left": left, "top": top, "right": right, "bottom": bottom, "width": right - left, "height": bottom - top}


def _cand(c: Any, names: dict[str, str]) -> dict[str, Any]:
    return {"person_id": c.person_id, "person_name": names.get(c.person_id), "image_id": c.embedding_id,
            "distance": round(c.distance, 6), "confidence": round(c.confidence, 6)}


def _media_type(key: str) -> str:
    ext = key.rsplit(".", 1)[-1]
    return {"jpg": "image/jpeg", "png": "image/png", "tif": "image/tiff", "webp": "image/webp", "bmp": "image/bmp",
            "gif": "image/gif", "ppm": "image/x-portable-pixmap"}.get(ext, "application/octet-stream")


# -- zip archives --------------------------------------------------------------------------------------
def zip_entries(zf: zipfile.ZipFile, max_bytes: int, max_entries: int) -> tuple[list, int]:
    """``(person, file, read)`` for every file of a zip laid out one folder per person."""
    members = [m for m in zf.infolist() if not m.is_dir()]
    if len(members) > max_entries:
        raise Unprocessable(f"the archive has {len(members)} files; the limit is {max_entries}",
                            code="too_many_files")

    def reader(m: zipfile.ZipInfo) -> Callable[[], bytes]:
        def read() -> bytes:
            if m.file_size > max_bytes:
                raise BioError(f"file is {m.file_size} bytes; the limit is {max_bytes}", code="payload_too_large")
            try:
                with zf.open(m) as fh:
                    data = fh.read(max_bytes + 1)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                raise BioError(f"the archive entry cannot be read: {exc}", code="corrupt_archive_entry") from exc
            if len(data) > max_bytes:
                raise BioError(f"file is larger than {max_bytes} bytes", code="payload_too_large")
            return data
        return read

    out = []
    for m in members:
        parts = PurePosixPath(m.filename).parts
        person = parts[-2].strip() if len(parts) >= 2 else None
        out.append((person or None, m.filename, _skipped if _is_metadata(parts) else reader(m)))
    return out, len(out)


def _is_metadata(parts: tuple[str, ...]) -> bool:
    """macOS resource forks (__MACOSX/, ._x.jpg) and hidden files (.DS_Store): reported as skipped."""
    return any(part.startswith(_ZIP_SKIP) for part in parts)


def _skipped() -> bytes:
    raise BioError("hidden or system metadata file (e.g. __MACOSX/, .DS_Store); not a photo", code="skipped_metadata")


def open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise Unprocessable("the upload is not a readable zip archive", code="not_a_zip") from exc


def directory_entries(root: Path) -> tuple[list, int]:
    """``(person, file, read)`` for a directory laid out one folder per person (CLI bulk enrollment)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    out = []
    for p in files:
        rel = p.relative_to(root)
        person = rel.parts[-2] if len(rel.parts) >= 2 else None
        out.append((person, rel.as_posix(), _skipped if _is_metadata(rel.parts) else p.read_bytes))
    return out, len(out)


# -- wiring --------------------------------------------------------------------------------------------
def register_jobs(rt: ServiceRuntime) -> FaceService:
    transform = partial(fit_rgb, max_side=rt.settings.max_side)
    register_normalize_job(rt, transform, mode=NORMALIZE_MODE)
    svc = FaceService(rt)
    rt.options["faces"] = svc
    rt.owned_models.extend(OWNED_MODELS)

    @rt.jobs.handler(ENROLL_ZIP_KIND, on_abandon=lambda params: rt.blobs.delete(params["zip_key"]))
    def enroll_zip(ctx: JobContext) -> dict[str, Any]:
        key = ctx.params["zip_key"]
        if not rt.blobs.exists(key):
            raise BioError("the uploaded archive is no longer available; submit it again", code="input_missing",
                           status_code=410)
        with open_zip(rt.blobs.get(key)) as zf:
            entries, total = zip_entries(zf, rt.settings.max_upload_bytes, rt.settings.max_zip_entries)
            try:
                result = svc.enroll_entries(ctx.owner_id, ctx.params["event_id"], entries, total,
                                            largest=bool(ctx.params.get("largest")), source_prefix=f"zip:{ctx.id}:",
                                            progress=ctx.progress)
            except NotFound:
                rt.blobs.delete(key)
                raise
        result["filename"] = ctx.params.get("filename")
        rt.blobs.delete(key)
        return result

    return svc


def submit_zip(rt: ServiceRuntime, svc: FaceService, owner_identity: Any, event_id: str, data: bytes,
               filename: str | None, largest: bool) -> Any:
    owner = owner_identity.account_id
    with rt.sessions() as s:
        svc._event(s, owner, event_id)
    with open_zip(data) as zf:  # refuse what is not a zip (or is too big) before anything is stored
        zip_entries(zf, rt.settings.max_upload_bytes, rt.settings.max_zip_entries)
        bad = zf.testzip() if len(data) < 50_000_000 else None
        if bad is not None:
            log.info("zip member %s has a bad CRC; it will be reported as unreadable", bad)
    key = rt.blobs.put(rt.blobs.new_key(owner, "face-zips", "zip"), data)
    try:
        return rt.jobs.submit(owner_identity, ENROLL_ZIP_KIND, {"event_id": event_id, "zip_key": key,
                                                              "filename": filename, "largest": largest})
    except Exception:
        rt.blobs.delete(key)
        raise
