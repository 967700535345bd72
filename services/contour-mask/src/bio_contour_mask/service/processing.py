"""The work of a contour job: cache lookup, landmarks, alignment, contours, stored outputs."""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np

from bio_contour_mask.engine import labels as L
from bio_contour_mask.engine.detect import MODEL_NAME
from bio_contour_mask.engine.errors import InputError
from bio_contour_mask.engine.pipeline import Result, run
from bio_contour_mask.exceptions import from_input_error
from bio_contour_mask.runtime import ContourRuntime
from bio_contour_mask.service import cache
from bio_contour_mask.service.decoders import quick_signature
from bio_contour_mask.service.inputs import ContourInput, check_label_map, engine_options
from bio_contour_mask.service.outputs import (
    STAGE_SECONDS,
    Rendered,
    Timer,
    job_result,
    render_and_store,
    transform_facts,
)
from bio_shared.inference import timed_inference
from bio_shared.uploads import decode_for


def _signature(rt: ContourRuntime, inp: ContourInput) -> Any:
    if not rt.state.settings.cache_enabled:
        return None
    try:
        return quick_signature(inp.image, rt.state.settings.max_upload_bytes, rt.state.settings.max_image_pixels)
    except Exception:  # no signature, no cache: the full decode below reports what is wrong
        return None


def _facts(inp: ContourInput, res: Result) -> dict[str, Any]:
    a = res.alignment
    facts: dict[str, Any] = {
        "image": {"width": inp.width, "height": inp.height, "format": inp.image_format},
        "landmarks": {"scheme": res.landmarks.scheme, "source": res.landmarks_source,
                      "count": len(res.landmarks.points)},
        "label_map": None if inp.labels is None else {
            "width": int(inp.labels.shape[1]), "height": int(inp.labels.shape[0]), "order": res.label_order,
            "order_scores": {k: round(float(v), 3) for k, v in (res.order_scores or {}).items()},
            "classes": [L.ORDERS[res.label_order or "celebamask-hq"][v]
                        for v in np.flatnonzero(np.bincount(inp.labels.ravel()))]},
        "missing": res.missing,
        "transform": transform_facts(a.matrix, a.angle_deg, a.scale, a.size),
        "space": {"kind": inp.options.coordinate_space, "width": res.width, "height": res.height},
    }
    if res.landmarks_source != "label_map":
        pts = res.landmarks.points if inp.options.coordinate_space == "original" else \
            res.landmarks.transformed(a.matrix).points
        facts["landmark_points"] = np.round(pts, 2).tolist()
    return facts


def _aligned_jpeg(res: Result) -> bytes | None:
    if res.aligned_image is None:
        return None
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(res.aligned_image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return buf.tobytes() if ok else None


def compute(rt: ContourRuntime, inp: ContourInput, timer: Timer, t: float) -> Result:
    pixels = inp.pixels if inp.pixels is not None else decode_for(rt, inp.image, "rgb").pixels
    if inp.label_map is not None and inp.labels is None:
        inp.labels = check_label_map(rt, inp.label_map, inp.width, inp.height)
    timer.stage("decode", t)
    try:
        with timed_inference("contour_mask", MODEL_NAME if inp.landmarks is None else "contours"):
            res = run(pixels, inp.landmarks, inp.labels, engine_options(inp.options))
    except InputError as exc:
        raise from_input_error(exc) from None
    for stage, ms in res.timings.items():
        timer.timings[stage] = round(ms, 3)
        STAGE_SECONDS.labels(stage).observe(ms / 1000)
    return res


def process(rt: ContourRuntime, owner_id: str, job_id: str, inp: ContourInput) -> dict[str, Any]:
    timer = Timer()
    t = time.perf_counter()
    key = cache.cache_key(inp)
    sig = _signature(rt, inp)
    t = timer.stage("hash", t)
    if sig is not None:
        hit = cache.lookup(rt, owner_id, key, sig)
        t = timer.stage("cache_lookup", t)
        if hit is not None:
            cache.record_hit(rt, hit)
            return cache.from_cache(rt, owner_id, job_id, inp, hit, timer, t)
        cache.CACHE_LOOKUPS.labels("miss").inc()
    res = compute(rt, inp, timer, t)
    out = Rendered(res.regions, res.width, res.height, _facts(inp, res), _aligned_jpeg(res))
    stored = render_and_store(rt, owner_id, job_id, out, inp.options, timer, time.perf_counter())
    if sig is not None:
        t = time.perf_counter()
        cache.store(rt, owner_id, key, sig, job_id)
        timer.stage("cache_store", t)
    return job_result(rt, owner_id, job_id, stored, inp.options, "miss", timer)
