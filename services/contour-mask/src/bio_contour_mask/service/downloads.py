"""The stored outputs of a finished contour job."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from bio_contour_mask.engine import render
from bio_contour_mask.engine.contours import rasterise_region
from bio_contour_mask.exceptions import NotAContourJob, OutputNotFound, RegionNotFound
from bio_contour_mask.runtime import ContourRuntime
from bio_contour_mask.service.jobs import CONTOURS_KIND
from bio_contour_mask.service.outputs import regions_from_doc
from bio_contour_mask.service.storage import result_key

ARTIFACTS = {"svg": ("svg", "image/svg+xml"), "png": ("png", "image/png"), "json": ("json", "application/json"),
             "aligned": ("aligned.jpg", "image/jpeg")}


def artifact(rt: ContourRuntime, job: Any, what: str) -> tuple[bytes, str]:
    ext, media = ARTIFACTS[what]
    rid = (job.result or {}).get("result_id")
    if not rid or not rt.blobs.exists(result_key(job.owner_id, rid, ext)):
        raise OutputNotFound(f"this job has no {what} output")
    return rt.blobs.get(result_key(job.owner_id, rid, ext)), media


def region_mask(rt: ContourRuntime, job: Any, region: str) -> bytes:
    """One region as a black-and-white PNG of the output space, drawn from the stored geometry."""
    if job.kind != CONTOURS_KIND:
        raise NotAContourJob("this job has no regions")
    doc = json.loads(artifact(rt, job, "json")[0])
    regions = {r.name: r for r in regions_from_doc(doc)}
    if region not in regions:
        raise RegionNotFound(f"this result has no region named {region[:100]!r}; it has {sorted(regions)}",
                             details={"regions": sorted(regions)})
    w, h = doc["space"]["width"], doc["space"]["height"]
    mask = rasterise_region(regions[region], w, h, doc["smoothing"]) * 255
    return render.encode_png(mask.astype(np.uint8))
