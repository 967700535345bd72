"""Re-embedding: embeddings made by another model (or model version) recomputed from their stored photo."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select, update

from bio_face_recognition.exceptions import NoFace
from bio_face_recognition.models import FaceEmbedding, FaceEvent
from bio_face_recognition.runtime import FaceState, face_state
from bio_face_recognition.service.common import bump, decode, face_quality, vector_bytes
from bio_shared.db import session_scope
from bio_shared.errors import BioError
from bio_shared.runtime import ServiceRuntime


def _iou(a: Any, b: Any) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _recompute(rt: ServiceRuntime, state: FaceState, emb_id: str, ev_id: str, key: str, box: Any,
               settings: tuple[str, int, int | None]) -> None:
    detector, landmarks, min_face = settings
    rgb = decode(rt, rt.blobs.get(key)).pixels
    boxes = state.pipeline.detect(rgb, detector, min_face)  # type: ignore[arg-type]
    if not boxes:
        raise NoFace("no face found again")
    # the face that was enrolled: the one overlapping its stored box most (else the largest)
    chosen = max(boxes, key=lambda b: _iou(b[0], box) if box else (b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))
    face = state.pipeline.describe(rgb, chosen[0], chosen[1], landmarks=landmarks)
    with session_scope(rt.sessions) as s:
        s.execute(update(FaceEmbedding).where(FaceEmbedding.id == emb_id).values(
            vector=vector_bytes(face.embedding), model=state.model[0], model_version=state.model[1],
            box=list(face.box), quality=face_quality(face)))
        bump(s, ev_id)


def reembed(rt: ServiceRuntime, owner: str | None = None, event_id: str | None = None, dry_run: bool = False
            ) -> dict[str, Any]:
    """Recompute every embedding whose model or version differs from the loaded model, from its stored
    image (events that keep images); the others are reported (their people must re-enroll)."""
    state = face_state(rt)
    model = state.model
    cond: list[ColumnElement[bool]] = [(FaceEmbedding.model != model[0]) | (FaceEmbedding.model_version != model[1])]
    if owner:
        cond.append(FaceEmbedding.owner_id == owner)
    if event_id:
        cond.append(FaceEmbedding.event_id == event_id)
    with rt.sessions() as s:
        rows = s.execute(select(FaceEmbedding.id, FaceEmbedding.event_id, FaceEmbedding.image_key,
                                FaceEmbedding.box).where(*cond)).all()
        settings = {e.id: (e.detector, e.landmarks, e.min_face_px) for e in s.scalars(
            select(FaceEvent).where(FaceEvent.id.in_({r[1] for r in rows})))} if rows else {}
    out: dict[str, Any] = {"stale": len(rows), "recomputed": 0, "no_image": 0, "failed": 0, "model": model[0],
                           "model_version": model[1], "failures": []}
    for emb_id, ev_id, key, box in rows:
        if not key or not rt.blobs.exists(key):
            out["no_image"] += 1
            continue
        if dry_run:
            continue
        try:
            _recompute(rt, state, emb_id, ev_id, key, box, settings[ev_id])
            out["recomputed"] += 1
        except BioError as exc:
            out["failed"] += 1
            out["failures"].append({"image_id": emb_id, "code": exc.code})
    return out
