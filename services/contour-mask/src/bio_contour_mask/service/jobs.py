"""The job handlers of the contour service (contours, and the platform's normalize job)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from bio_contour_mask.exceptions import InputMissing
from bio_contour_mask.models import CacheEntry
from bio_contour_mask.runtime import ContourRuntime
from bio_contour_mask.service.inputs import validate_input
from bio_contour_mask.service.processing import process
from bio_contour_mask.service.storage import drop_inputs, result_key
from bio_shared.errors import BioError
from bio_shared.images import Mode, fit_rgb
from bio_shared.jobs import JobContext
from bio_shared.uploads import register_normalize_job

NORMALIZE_MODE: Mode = "rgb"
CONTOURS_KIND = "contours"


def run_contours(rt: ContourRuntime, ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    done_key = result_key(ctx.owner_id, f"job-{ctx.id}", "json")
    if p.get("image_key") and rt.blobs.exists(p["image_key"]):
        try:
            inp = validate_input(rt, rt.blobs.get(p["image_key"]), p.get("landmarks"),
                                 rt.blobs.get(p["map_key"]) if p.get("map_key") else None,
                                 p.get("options") or {}, p.get("filename"), landmarks_in_pixels=True, decode=False)
            ctx.progress(0.1)
            result = process(rt, ctx.owner_id, ctx.id, inp)
        except BioError:
            drop_inputs(rt, p)  # a permanent failure (no face...): nothing to retry with
            raise
        rt.blobs.put(done_key, json.dumps(result).encode())
        drop_inputs(rt, p)
        return result
    if rt.blobs.exists(done_key):  # an earlier attempt did the work, then its worker died
        return json.loads(rt.blobs.get(done_key))
    raise InputMissing("the uploaded image is no longer available; submit it again")


def register_jobs(rt: ContourRuntime) -> None:
    register_normalize_job(rt, partial(fit_rgb, max_side=rt.state.settings.max_side), mode=NORMALIZE_MODE)
    rt.owned_models[:0] = [CacheEntry]

    @rt.jobs.handler(CONTOURS_KIND, on_abandon=lambda params: drop_inputs(rt, params))
    def contours(ctx: JobContext) -> dict[str, Any]:
        return run_contours(rt, ctx)
