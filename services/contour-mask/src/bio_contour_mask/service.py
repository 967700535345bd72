"""Contour mask use cases; no FastAPI imports.

Input validation (image, landmarks, label map, options) runs before a job exists, so bad input gets its 422
at once and leaves nothing behind. The work itself (cache lookup, landmarks, alignment, contours, outputs)
runs in :func:`process`, from a job or from the synchronous endpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from sqlalchemy import select, update

from bio_contour_mask.engine import labels as L
from bio_contour_mask.engine import phash, render
from bio_contour_mask.engine.align import compose, invert, scale_matrix
from bio_contour_mask.engine.contours import Region, Ring
from bio_contour_mask.engine.detect import MODEL_NAME, models
from bio_contour_mask.engine.errors import InputError
from bio_contour_mask.engine.landmarks import Landmarks, parse_landmarks
from bio_contour_mask.engine.pipeline import Options, run
from bio_contour_mask.models import CacheEntry
from bio_contour_mask.schemas import ContourOptions
from bio_shared.db import session_scope, utcnow
from bio_shared.errors import BioError, NotFound, PayloadTooLarge, Unprocessable
from bio_shared.identity import Identity
from bio_shared.images import ALLOWED_FORMATS, Mode, check_size, fit_rgb
from bio_shared.inference import timed_inference
from bio_shared.jobs import JobContext, JobStatus, new_id
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import decode_for, register_normalize_job

NORMALIZE_MODE: Mode = "rgb"
CONTOURS_KIND = "contours"
ENGINE_VERSION = "contours-1"  # part of every cache key: a change of the engine never serves stale results
MAP_FORMATS = {"PNG", "BMP", "TIFF", "GIF"}  # lossless: a JPEG would blur class boundaries into other classes

CACHE_LOOKUPS = Counter("bio_contour_cache", "Result cache lookups of the contour-mask service (hit, miss)",
                        ["result"])
STAGE_SECONDS = Histogram("bio_contour_stage_seconds", "Time per processing stage of a contour job", ["stage"],
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


@dataclass
class ContourInput:
    """What a caller sent, validated: the image bytes stay as sent (stored for the job)."""

    image: bytes
    width: int
    height: int
    image_format: str
    landmarks: Landmarks | None
    label_map: bytes | None
    labels: np.ndarray | None
    options: ContourOptions
    filename: str | None = None
    pixels: np.ndarray | None = None  # the decoded image, when the caller's process has it


@dataclass
class Timer:
    timings: dict[str, float] = field(default_factory=dict)

    def stage(self, name: str, start: float) -> float:
        now = time.perf_counter()
        self.timings[name] = round(self.timings.get(name, 0.0) + (now - start) * 1000, 3)
        STAGE_SECONDS.labels(name).observe(now - start)
        return now


def register_jobs(rt: ServiceRuntime) -> None:
    transform = partial(fit_rgb, max_side=rt.settings.max_side)
    register_normalize_job(rt, transform, mode=NORMALIZE_MODE)
    rt.owned_models[:0] = [CacheEntry]
    @rt.jobs.handler(CONTOURS_KIND, on_abandon=lambda params: _drop_inputs(rt, params))
    def contours(ctx: JobContext) -> dict[str, Any]:
        p = ctx.params
        done_key = _key(ctx.owner_id, f"job-{ctx.id}", "json")
        if p.get("image_key") and rt.blobs.exists(p["image_key"]):
            try:
                inp = validate_input(rt, rt.blobs.get(p["image_key"]), p.get("landmarks"),
                                     rt.blobs.get(p["map_key"]) if p.get("map_key") else None,
                                     p.get("options") or {}, p.get("filename"), landmarks_in_pixels=True,
                                     decode=False)
                ctx.progress(0.1)
                result = process(rt, ctx.owner_id, ctx.id, inp)
            except BioError:
                _drop_inputs(rt, p)  # a permanent failure (no face...): nothing to retry with
                raise
            rt.blobs.put(done_key, json.dumps(result).encode())
            _drop_inputs(rt, p)
            return result
        if rt.blobs.exists(done_key):  # an earlier attempt did the work, then its worker died
            return json.loads(rt.blobs.get(done_key))
        raise BioError("the uploaded image is no longer available; submit it again", code="input_missing",
                       status_code=410)


def load_models() -> None:
    models()


def _drop_inputs(rt: ServiceRuntime, params: dict[str, Any]) -> None:
    for k in ("image_key", "map_key"):
        if params.get(k):
            rt.blobs.delete(params[k])


def _key(owner_id: str, name: str, ext: str) -> str:
    return f"{owner_id}/contour_mask-results/{name}.{ext}"


# -- input ---------------------------------------------------------------------------------------------
def b64decode(value: str, what: str) -> bytes:
    if "," in value[:100] and value.startswith("data:"):
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Unprocessable(f"{what} is not valid base64", code="invalid_base64") from None


def parse_options(raw: Any) -> ContourOptions:
    if isinstance(raw, ContourOptions):
        return raw
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            raise Unprocessable("options must be a JSON object", code="invalid_options") from None
    try:
        return ContourOptions.model_validate(raw or {})
    except ValidationError as exc:
        details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        raise Unprocessable("invalid options", code="invalid_options", details=details) from None


def parse_landmark_field(raw: Any) -> Any:
    if isinstance(raw, (str, bytes)):
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise Unprocessable("landmarks must be a JSON list of {x, y} points", code="invalid_landmarks") from None
    return raw


def decode_label_map(data: bytes, rt: ServiceRuntime) -> np.ndarray:
    """A label map as class indices (uint8 HxW); a colour visualisation or a lossy map is the wrong kind."""
    s = rt.settings
    check_size(data, s.max_upload_bytes)
    try:
        img = Image.open(io.BytesIO(data))
        fmt = (img.format or "").upper()
        if img.size[0] * img.size[1] > s.max_image_pixels:
            raise PayloadTooLarge(f"label map is {img.size[0]}x{img.size[1]}; the limit is {s.max_image_pixels} px",
                                  code="too_many_pixels")
        img.load()
    except BioError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise Unprocessable(f"the label map is not a readable image; expected {L.EXPECTED_MAP}",
                            code="invalid_label_map", details={"reason": str(exc)}) from None
    if fmt not in MAP_FORMATS:
        raise Unprocessable(f"the label map is {fmt or 'of an unknown format'}; expected {L.EXPECTED_MAP} (a lossy "
                            "format such as JPEG changes class values at region borders)", code="wrong_map_kind")
    mode = img.mode
    if mode in ("L", "P", "1"):
        arr = np.asarray(img if mode != "1" else img.convert("L").point(lambda v: 1 if v else 0))
    elif mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img).astype(np.int64)
    elif mode in ("RGB", "RGBA", "LA"):
        a = np.asarray(img)
        colour = a[..., :3] if mode != "LA" else a[..., :1]
        if mode in ("RGBA", "LA") and (a[..., -1] != 255).any():
            raise Unprocessable(f"the label map has transparency; expected {L.EXPECTED_MAP}", code="wrong_map_kind")
        if mode != "LA" and not ((colour[..., 0] == colour[..., 1]).all() and (colour[..., 1] == colour[..., 2]).all()):
            raise Unprocessable("the label map is a colour image (a colour-coded visualisation?); expected "
                                f"{L.EXPECTED_MAP}", code="wrong_map_kind")
        arr = colour[..., 0]
    else:
        raise Unprocessable(f"the label map has pixel mode {mode}; expected {L.EXPECTED_MAP}", code="wrong_map_kind")
    if arr.size and arr.dtype != np.uint8 and arr.min() < 0:
        raise Unprocessable(f"the label map holds negative values; expected {L.EXPECTED_MAP}", code="wrong_map_kind")
    if arr.size and arr.max() >= L.NUM_CLASSES:
        bad = np.unique(arr[(arr < 0) | (arr >= L.NUM_CLASSES)])[:20]
        raise Unprocessable(f"the label map holds values up to {int(arr.max())}; expected {L.EXPECTED_MAP}",
                            code="wrong_map_kind", details={"unexpected_values": bad.tolist()})
    return np.ascontiguousarray(arr.astype(np.uint8))


def validate_input(rt: ServiceRuntime, image: bytes, landmarks_raw: Any, map_bytes: bytes | None,
                   options_raw: Any, filename: str | None = None, landmarks_in_pixels: bool = False,
                   decode: bool = True) -> ContourInput:
    """Everything a caller can get wrong, checked before any work: 4xx with a message that says what was
    expected. ``landmarks_in_pixels``: stored job params are already in pixels whatever the options said.
    ``decode=False`` (a job re-reading its validated upload) reads the size from the header and leaves the
    full decode to :func:`process`, which skips it on a cache hit."""
    options = parse_options(options_raw)
    pixels = None
    if decode:
        decoded = decode_for(rt, image, "rgb")
        w, h, fmt, pixels = decoded.width, decoded.height, decoded.format, decoded.pixels
    else:
        w, h, fmt = header_size(image)
    lm = None
    raw = parse_landmark_field(landmarks_raw)
    try:
        if raw is not None:
            lm = parse_landmarks(raw, w, h, normalized=options.landmarks_normalized and not landmarks_in_pixels)
        labels = None
        if map_bytes is not None and decode:  # a job re-reading a validated map decodes it on a cache miss only
            labels = decode_label_map(map_bytes, rt)
            L.validate_label_map(labels, w, h)
        engine_options(options)
    except InputError as exc:
        raise Unprocessable(exc.message, code=exc.code, details=exc.details) from None
    inp = ContourInput(image, w, h, fmt, lm, map_bytes, labels, options, filename)
    inp.pixels = pixels
    return inp


def header_size(data: bytes) -> tuple[int, int, str]:
    """Width and height as the decoder will return them (EXIF rotation applied), from the header only."""
    img = Image.open(io.BytesIO(data))
    w, h = img.size
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    return (h, w, img.format or "") if orientation in (5, 6, 7, 8) else (w, h, img.format or "")


def engine_options(o: ContourOptions) -> Options:
    return Options(regions=tuple(o.regions) if o.regions is not None else None, coordinate_space=o.coordinate_space,
                   smoothing=o.smoothing, aligned_size=o.aligned_size, margin=o.margin, label_order=o.label_order)


# -- submit --------------------------------------------------------------------------------------------
def submit_contours(rt: ServiceRuntime, identity: Identity, inp: ContourInput) -> Any:
    owner = identity.account_id
    image_key = rt.blobs.put(rt.blobs.new_key(owner, "contour_mask-uploads", "bin"), inp.image)
    map_key = None
    try:
        if inp.label_map is not None:
            map_key = rt.blobs.put(rt.blobs.new_key(owner, "contour_mask-uploads", "bin"), inp.label_map)
        params = {
            "image_key": image_key, "map_key": map_key, "filename": inp.filename,
            "landmarks": inp.landmarks.points.tolist() if inp.landmarks is not None else None,
            "options": inp.options.model_dump(mode="json"),
        }
        return rt.jobs.submit(identity, CONTOURS_KIND, params)
    except Exception:
        rt.blobs.delete(image_key)
        if map_key:
            rt.blobs.delete(map_key)
        raise


def extract_now(rt: ServiceRuntime, identity: Identity, inp: ContourInput) -> Any:
    """The synchronous variant: the work runs in the request; the result is stored as a finished job."""
    limit = rt.settings.sync_max_pixels
    if inp.width * inp.height > limit:
        raise PayloadTooLarge(f"the image is {inp.width}x{inp.height}; the synchronous endpoint takes at most "
                              f"{limit} pixels: submit a job (POST {rt.prefix}/jobs/contours)",
                              code="too_large_for_sync", details={"limit_pixels": limit})
    job_id = new_id()
    now = utcnow()
    model = rt.jobs.model
    with session_scope(rt.sessions) as s:
        s.add(model(id=job_id, owner_id=identity.account_id, kind=CONTOURS_KIND, status=JobStatus.running.value,
                    params={"sync": True, "filename": inp.filename}, attempts=1, created_at=now, started_at=now,
                    # should this process die mid-request, the reaper fails the row instead of leaving it running
                    lease_expires_at=now + timedelta(seconds=rt.settings.job_time_limit_s
                                                     + rt.settings.job_lease_grace_s)))
    try:
        result = process(rt, identity.account_id, job_id, inp)
    except BioError as exc:
        _finish(rt, job_id, JobStatus.failed, error=exc.to_dict())
        raise
    except Exception:
        _finish(rt, job_id, JobStatus.failed, error={"code": "internal_error", "message": "internal error"})
        raise
    _finish(rt, job_id, JobStatus.succeeded, result=result)
    with rt.sessions() as s:
        return s.get(model, job_id)


def _finish(rt: ServiceRuntime, job_id: str, status: JobStatus, result: dict | None = None,
            error: dict | None = None) -> None:
    m = rt.jobs.model
    values: dict[str, Any] = {"status": status.value, "finished_at": utcnow(), "result": result, "error": error,
                              "lease_expires_at": None}
    if status == JobStatus.succeeded:
        values["progress"] = 1.0
    with session_scope(rt.sessions) as s:
        s.execute(update(m).where(m.id == job_id).values(**values))


# -- processing ------------------------------------------------------------------------------------------
def quick_signature(data: bytes, rt: ServiceRuntime) -> phash.Signature:
    """Signature from a small decode (JPEG DCT scaling): what lets a cache hit skip the full decode."""
    s = rt.settings
    check_size(data, s.max_upload_bytes)
    img = Image.open(io.BytesIO(data))
    if (img.format or "").upper() not in ALLOWED_FORMATS or img.size[0] * img.size[1] > s.max_image_pixels:
        raise ValueError("not a decodable image")
    full_w, full_h = img.size
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:
        orientation = 1
    if img.format == "JPEG":
        img.draft("L", (128, 128))
    img.load()
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:
        pass
    if orientation in (5, 6, 7, 8):
        full_w, full_h = full_h, full_w
    gray = np.asarray(img.convert("L"), dtype=np.uint8)
    return phash.signature(gray, full_w, full_h)


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


def _lookup(rt: ServiceRuntime, owner_id: str, key: str, sig: phash.Signature) -> Any:
    c = CacheEntry
    with rt.sessions() as s:
        rows = s.execute(select(c.id, c.phash, c.thumb, c.width, c.height, c.result_id)
                         .where(c.owner_id == owner_id, c.key_hash == key)
                         .order_by(c.created_at.desc()).limit(rt.settings.cache_candidates)).all()
    for row in rows:
        cand = phash.Signature(int(row.phash, 16), row.thumb, row.width, row.height)
        if phash.same_image(sig, cand) and rt.blobs.exists(_key(owner_id, row.result_id, "result.json")):
            return row
    return None


def process(rt: ServiceRuntime, owner_id: str, job_id: str, inp: ContourInput) -> dict[str, Any]:
    timer = Timer()
    t = time.perf_counter()
    key = cache_key(inp)
    sig = None
    if rt.settings.cache_enabled:
        try:
            sig = quick_signature(inp.image, rt)
        except Exception:
            sig = None
    t = timer.stage("hash", t)
    if sig is not None:
        hit = _lookup(rt, owner_id, key, sig)
        t = timer.stage("cache_lookup", t)
        if hit is not None:
            CACHE_LOOKUPS.labels("hit").inc()
            with session_scope(rt.sessions) as s:
                s.execute(update(CacheEntry).where(CacheEntry.id == hit.id).values(hits=CacheEntry.hits + 1))
            return _from_cache(rt, owner_id, job_id, inp, hit, timer, t)
        CACHE_LOOKUPS.labels("miss").inc()
    pixels = inp.pixels
    if pixels is None:
        pixels = decode_for(rt, inp.image, "rgb").pixels
    if inp.label_map is not None and inp.labels is None:
        inp.labels = decode_label_map(inp.label_map, rt)
        try:
            L.validate_label_map(inp.labels, inp.width, inp.height)
        except InputError as exc:
            raise Unprocessable(exc.message, code=exc.code, details=exc.details) from None
    t = timer.stage("decode", t)
    try:
        with timed_inference("contour_mask", MODEL_NAME if inp.landmarks is None else "contours"):
            res = run(pixels, inp.landmarks, inp.labels, engine_options(inp.options))
    except InputError as exc:
        raise Unprocessable(exc.message, code=exc.code, details=exc.details) from None
    for stage, ms in res.timings.items():
        timer.timings[stage] = round(ms, 3)
        STAGE_SECONDS.labels(stage).observe(ms / 1000)
    t = time.perf_counter()
    facts = {
        "image": {"width": inp.width, "height": inp.height, "format": inp.image_format},
        "landmarks": {"scheme": res.landmarks.scheme, "source": res.landmarks_source,
                      "count": len(res.landmarks.points)},
        "label_map": None if inp.labels is None else {
            "width": int(inp.labels.shape[1]), "height": int(inp.labels.shape[0]), "order": res.label_order,
            "order_scores": {k: round(float(v), 3) for k, v in (res.order_scores or {}).items()},
            "classes": [L.ORDERS[res.label_order][v] for v in np.flatnonzero(np.bincount(inp.labels.ravel()))]},
        "missing": res.missing,
        "transform": _transform(res.alignment.matrix, res.alignment.angle_deg, res.alignment.scale,
                                res.alignment.size),
        "space": {"kind": inp.options.coordinate_space, "width": res.width, "height": res.height},
    }
    if res.landmarks_source != "label_map":
        pts = res.landmarks.points if inp.options.coordinate_space == "original" else \
            res.landmarks.transformed(res.alignment.matrix).points
        facts["landmark_points"] = np.round(pts, 2).tolist()
    aligned_jpg = None
    if res.aligned_image is not None:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(res.aligned_image, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 92])
        aligned_jpg = buf.tobytes() if ok else None
    stored = _render_and_store(rt, owner_id, job_id, res.regions, res.width, res.height, inp.options, facts,
                               aligned_jpg, timer, t)
    t = time.perf_counter()
    if sig is not None:
        with session_scope(rt.sessions) as s:
            s.add(CacheEntry(owner_id=owner_id, key_hash=key, phash=f"{sig.phash:016x}", thumb=sig.thumb,
                             width=sig.width, height=sig.height, result_id=job_id, created_at=utcnow()))
        timer.stage("cache_store", t)
    return _job_result(rt, owner_id, job_id, stored, inp.options, "miss", timer)


def _transform(m: np.ndarray, angle: float, scale: float, size: int) -> dict[str, Any]:
    return {
        "original_to_aligned": np.round(m, 6).tolist(),
        "aligned_to_original": np.round(invert(m), 6).tolist(),
        "rotation_deg": round(-angle, 3), "scale": round(scale, 6), "aligned_size": size,
        "convention": "2x3 affine [[a, b, tx], [c, d, ty]]: x' = a*x + b*y + tx, y' = c*x + d*y + ty; pixel "
                      "coordinates with (0, 0) at the top-left corner of the top-left pixel",
    }


def _render_and_store(rt: ServiceRuntime, owner_id: str, rid: str, regions: list[Region], width: int,
                      height: int, options: ContourOptions, facts: dict[str, Any], aligned_jpg: bytes | None,
                      timer: Timer, t: float) -> dict[str, Any]:
    """Render every output (whatever formats were asked: a later cache hit may ask for others), store them
    under the result id, and store the result facts for cache hits."""
    sm = options.smoothing
    svg = render.render_svg(regions, width, height, sm, options.style, facts["space"]["kind"]).encode()
    png = render.encode_png(render.colour_mask(regions, width, height, sm))
    region_facts = [_region_facts(r) for r in regions]
    facts = dict(facts)
    doc = {"space": facts["space"], "smoothing": sm, "style": options.style, "regions": render.region_polygons(regions),
           "transform": facts["transform"], "landmarks": facts.pop("landmark_points", None)}
    t = timer.stage("render", t)
    rt.blobs.put(_key(owner_id, rid, "svg"), svg)
    rt.blobs.put(_key(owner_id, rid, "png"), png)
    rt.blobs.put(_key(owner_id, rid, "json"), json.dumps(doc, separators=(",", ":")).encode())
    if aligned_jpg is not None:
        rt.blobs.put(_key(owner_id, rid, "aligned.jpg"), aligned_jpg)
    stored = {**facts, "result_id": rid, "regions": region_facts, "has_aligned_image": aligned_jpg is not None,
              "svg_bytes": len(svg)}
    rt.blobs.put(_key(owner_id, rid, "result.json"), json.dumps(stored).encode())
    timer.stage("store", t)
    return stored


def _region_facts(r: Region) -> dict[str, Any]:
    area = 0.0
    pts_all = []
    for ring in r.rings:
        p = ring.points
        a = 0.5 * abs(float(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(np.roll(p[:, 0], -1), p[:, 1])))
        area += -a if ring.hole else a
        if not ring.hole:
            pts_all.append(p)
    pts = np.vstack(pts_all)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return {"name": r.name, "source": r.source, "labels": r.labels, "area_px": round(area, 1),
            "bbox": [round(float(v), 2) for v in (*lo, *hi)], "parts": sum(not g.hole for g in r.rings),
            "holes": sum(g.hole for g in r.rings)}


def _regions_from_doc(doc: dict[str, Any]) -> list[Region]:
    out = []
    for reg in doc["regions"]:
        rings = []
        for poly in reg["polygons"]:
            rings.append(Ring(np.asarray(poly["outer"], np.float64)))
            rings += [Ring(np.asarray(h, np.float64), hole=True) for h in poly["holes"]]
        out.append(Region(reg["name"], reg["source"], rings, reg.get("labels") or []))
    return out


def _from_cache(rt: ServiceRuntime, owner_id: str, job_id: str, inp: ContourInput, hit: CacheEntry, timer: Timer,
                t: float) -> dict[str, Any]:
    stored = json.loads(rt.blobs.get(_key(owner_id, hit.result_id, "result.json")))
    if (hit.width, hit.height) == (inp.width, inp.height):
        t = timer.stage("cache_load", t)
        return _job_result(rt, owner_id, job_id, stored, inp.options, "hit", timer)
    # a resized copy: same geometry, rescaled; no landmarks, no contours, only the outputs are drawn again
    sx, sy = inp.width / hit.width, inp.height / hit.height
    doc = json.loads(rt.blobs.get(_key(owner_id, hit.result_id, "json")))
    old = np.asarray(stored["transform"]["original_to_aligned"], np.float64)
    new = compose(old, scale_matrix(1 / sx, 1 / sy))
    tr = stored["transform"]
    facts = {k: stored[k] for k in ("landmarks", "label_map", "missing")}
    facts["image"] = {"width": inp.width, "height": inp.height, "format": inp.image_format}
    facts["transform"] = _transform(new, -tr["rotation_deg"], tr["scale"] / np.sqrt(sx * sy), tr["aligned_size"])
    regions = _regions_from_doc(doc)
    space = dict(stored["space"])
    if space["kind"] == "original":
        regions = [r.transformed(scale_matrix(sx, sy)) for r in regions]
        space.update(width=inp.width, height=inp.height)
    facts["space"] = space
    if doc.get("landmarks"):
        pts = np.asarray(doc["landmarks"], np.float64)
        facts["landmark_points"] = (pts * [sx, sy] if space["kind"] == "original" else pts).tolist()
    aligned = rt.blobs.get(_key(owner_id, hit.result_id, "aligned.jpg")) if stored.get("has_aligned_image") else None
    t = timer.stage("cache_load", t)
    stored = _render_and_store(rt, owner_id, job_id, regions, space["width"], space["height"], inp.options, facts,
                               aligned, timer, t)
    return _job_result(rt, owner_id, job_id, stored, inp.options, "hit", timer)


def _job_result(rt: ServiceRuntime, owner_id: str, job_id: str, stored: dict[str, Any], options: ContourOptions,
                cache: str,
                timer: Timer) -> dict[str, Any]:
    base = rt.jobs.status_url(job_id)
    links = {fmt: f"{base}/{fmt}" for fmt in options.formats}
    links["masks"] = f"{base}/masks/{{region}}"
    if stored.get("has_aligned_image"):
        links["aligned_image"] = f"{base}/aligned"
    result = {k: v for k, v in stored.items() if k not in ("has_aligned_image",)}
    result.update(cache=cache, formats=list(options.formats), links=links,
                  timings_ms={**timer.timings, "total": round(sum(timer.timings.values()), 3)})
    if "svg" in options.formats and options.inline_svg and stored["svg_bytes"] <= rt.settings.inline_svg_max_bytes:
        svg = rt.blobs.get(_key(owner_id, stored["result_id"], "svg"))
        result["svg_base64"] = base64.b64encode(svg).decode()
    return result


# -- downloads -------------------------------------------------------------------------------------------
ARTIFACTS = {"svg": ("svg", "image/svg+xml"), "png": ("png", "image/png"), "json": ("json", "application/json"),
             "aligned": ("aligned.jpg", "image/jpeg")}


def artifact(rt: ServiceRuntime, job: Any, what: str) -> tuple[bytes, str]:
    ext, media = ARTIFACTS[what]
    rid = (job.result or {}).get("result_id")
    if not rid or not rt.blobs.exists(_key(job.owner_id, rid, ext)):
        raise NotFound(f"this job has no {what} output", code="output_not_found")
    return rt.blobs.get(_key(job.owner_id, rid, ext)), media


def region_mask(rt: ServiceRuntime, job: Any, region: str) -> bytes:
    """One region as a black-and-white PNG of the output space, drawn from the stored geometry."""
    doc = json.loads(artifact(rt, job, "json")[0])
    regions = {r.name: r for r in _regions_from_doc(doc)}
    if region not in regions:
        raise NotFound(f"region {region!r} is not in this result; it has {sorted(regions)}", code="region_not_found")
    from bio_contour_mask.engine.contours import rasterise_region

    w, h = doc["space"]["width"], doc["space"]["height"]
    mask = rasterise_region(regions[region], w, h, doc["smoothing"]) * 255
    return render.encode_png(mask.astype(np.uint8))
