"""The per-account result cache: a perceptual signature of the image plus a hash of everything else that
shaped the result; a re-encoded or resized copy gets the stored result (rescaled)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from prometheus_client import Counter
from sqlalchemy import select, update

from bio_contour_mask.engine import phash
from bio_contour_mask.engine.align import compose, scale_matrix
from bio_contour_mask.models import CacheEntry
from bio_contour_mask.runtime import ContourRuntime
from bio_contour_mask.service.inputs import ContourInput
from bio_contour_mask.service.outputs import (
    Rendered,
    Timer,
    job_result,
    regions_from_doc,
    render_and_store,
    transform_facts,
)
from bio_contour_mask.service.storage import result_key
from bio_shared.db import session_scope, utcnow

ENGINE_VERSION = "contours-1"  # part of every cache key: a change of the engine never serves stale results
CACHE_LOOKUPS = Counter("bio_contour_cache", "Result cache lookups of the contour-mask service (hit, miss)",
                        ["result"])


def cache_key(inp: ContourInput) -> str:
    o = inp.options
    parts: dict[str, Any] = {
        "engine": ENGINE_VERSION,
        "options": {k: v for k, v in o.model_dump(mode="json").items()
                    if k not in ("formats", "inline_svg", "landmarks_normalized")},
    }
    if inp.landmarks is not None:
        rel = inp.landmarks.points / np.array([inp.width, inp.height])
        parts["landmarks"] = np.round(rel, 4).tolist()  # resolution-free: a resized copy with scaled points hits
    if inp.label_map is not None:
        parts["map"] = hashlib.sha256(inp.label_map).hexdigest()
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def lookup(rt: ContourRuntime, owner_id: str, key: str, sig: phash.Signature) -> Any:
    c = CacheEntry
    with rt.sessions() as s:
        rows = s.execute(select(c.id, c.phash, c.thumb, c.width, c.height, c.result_id)
                         .where(c.owner_id == owner_id, c.key_hash == key)
                         .order_by(c.created_at.desc()).limit(rt.state.settings.cache_candidates)).all()
    for row in rows:
        cand = phash.Signature(int(row.phash, 16), row.thumb, row.width, row.height)
        if phash.same_image(sig, cand) and rt.blobs.exists(result_key(owner_id, row.result_id, "result.json")):
            return row
    return None


def record_hit(rt: ContourRuntime, hit: Any) -> None:
    CACHE_LOOKUPS.labels("hit").inc()
    with session_scope(rt.sessions) as s:
        s.execute(update(CacheEntry).where(CacheEntry.id == hit.id).values(hits=CacheEntry.hits + 1))


def store(rt: ContourRuntime, owner_id: str, key: str, sig: phash.Signature, result_id: str) -> None:
    with session_scope(rt.sessions) as s:
        s.add(CacheEntry(owner_id=owner_id, key_hash=key, phash=f"{sig.phash:016x}", thumb=sig.thumb,
                         width=sig.width, height=sig.height, result_id=result_id, created_at=utcnow()))


def from_cache(rt: ContourRuntime, owner_id: str, job_id: str, inp: ContourInput, hit: Any, timer: Timer,
               t: float) -> dict[str, Any]:
    stored = json.loads(rt.blobs.get(result_key(owner_id, hit.result_id, "result.json")))
    if (hit.width, hit.height) == (inp.width, inp.height):
        t = timer.stage("cache_load", t)
        return job_result(rt, owner_id, job_id, stored, inp.options, "hit", timer)
    # a resized copy: same geometry, rescaled; no landmarks, no contours, only the outputs are drawn again
    sx, sy = inp.width / hit.width, inp.height / hit.height
    doc = json.loads(rt.blobs.get(result_key(owner_id, hit.result_id, "json")))
    old = np.asarray(stored["transform"]["original_to_aligned"], np.float64)
    tr = stored["transform"]
    facts = {k: stored[k] for k in ("landmarks", "label_map", "missing")}
    facts["image"] = {"width": inp.width, "height": inp.height, "format": inp.image_format}
    facts["transform"] = transform_facts(compose(old, scale_matrix(1 / sx, 1 / sy)), -tr["rotation_deg"],
                                         tr["scale"] / np.sqrt(sx * sy), tr["aligned_size"])
    regions = regions_from_doc(doc)
    space = dict(stored["space"])
    if space["kind"] == "original":
        regions = [r.transformed(scale_matrix(sx, sy)) for r in regions]
        space.update(width=inp.width, height=inp.height)
    facts["space"] = space
    if doc.get("landmarks"):
        pts = np.asarray(doc["landmarks"], np.float64)
        facts["landmark_points"] = (pts * [sx, sy] if space["kind"] == "original" else pts).tolist()
    aligned = (rt.blobs.get(result_key(owner_id, hit.result_id, "aligned.jpg"))
               if stored.get("has_aligned_image") else None)
    t = timer.stage("cache_load", t)
    stored = render_and_store(rt, owner_id, job_id, Rendered(regions, space["width"], space["height"], facts, aligned),
                              inp.options, timer, t)
    return job_result(rt, owner_id, job_id, stored, inp.options, "hit", timer)
