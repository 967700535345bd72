"""Rendering and storing a result's outputs (SVG, PNG, polygons JSON, aligned image), and the job result
that links them."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client import Histogram

from bio_contour_mask.engine import render
from bio_contour_mask.engine.align import invert
from bio_contour_mask.engine.contours import Region, Ring
from bio_contour_mask.runtime import ContourRuntime
from bio_contour_mask.schemas import ContourOptions
from bio_contour_mask.service.storage import result_key

STAGE_SECONDS = Histogram("bio_contour_stage_seconds", "Time per processing stage of a contour job", ["stage"],
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


@dataclass
class Timer:
    timings: dict[str, float] = field(default_factory=dict)

    def stage(self, name: str, start: float) -> float:
        now = time.perf_counter()
        self.timings[name] = round(self.timings.get(name, 0.0) + (now - start) * 1000, 3)
        STAGE_SECONDS.labels(name).observe(now - start)
        return now


def transform_facts(m: np.ndarray, angle: float, scale: float, size: int) -> dict[str, Any]:
    return {
        "original_to_aligned": np.round(m, 6).tolist(),
        "aligned_to_original": np.round(invert(m), 6).tolist(),
        "rotation_deg": round(-angle, 3), "scale": round(scale, 6), "aligned_size": size,
        "convention": "2x3 affine [[a, b, tx], [c, d, ty]]: x' = a*x + b*y + tx, y' = c*x + d*y + ty; pixel "
                      "coordinates with (0, 0) at the top-left corner of the top-left pixel",
    }


def region_facts(r: Region) -> dict[str, Any]:
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


def regions_from_doc(doc: dict[str, Any]) -> list[Region]:
    out = []
    for reg in doc["regions"]:
        rings = []
        for poly in reg["polygons"]:
            rings.append(Ring(np.asarray(poly["outer"], np.float64)))
            rings += [Ring(np.asarray(h, np.float64), hole=True) for h in poly["holes"]]
        out.append(Region(reg["name"], reg["source"], rings, reg.get("labels") or []))
    return out


@dataclass
class Rendered:
    regions: list[Region]
    width: int
    height: int
    facts: dict[str, Any]
    aligned_jpg: bytes | None


def render_and_store(rt: ContourRuntime, owner_id: str, rid: str, out: Rendered, options: ContourOptions,
                     timer: Timer, t: float) -> dict[str, Any]:
    """Render every output (whatever formats were asked: a later cache hit may ask for others), store them
    under the result id, and store the result facts for cache hits."""
    sm = options.smoothing
    svg = render.render_svg(out.regions, out.width, out.height, sm, options.style, out.facts["space"]["kind"]).encode()
    png = render.encode_png(render.colour_mask(out.regions, out.width, out.height, sm))
    facts = dict(out.facts)
    doc = {"space": facts["space"], "smoothing": sm, "style": options.style,
           "regions": render.region_polygons(out.regions), "transform": facts["transform"],
           "landmarks": facts.pop("landmark_points", None)}
    t = timer.stage("render", t)
    rt.blobs.put(result_key(owner_id, rid, "svg"), svg)
    rt.blobs.put(result_key(owner_id, rid, "png"), png)
    rt.blobs.put(result_key(owner_id, rid, "json"), json.dumps(doc, separators=(",", ":")).encode())
    if out.aligned_jpg is not None:
        rt.blobs.put(result_key(owner_id, rid, "aligned.jpg"), out.aligned_jpg)
    stored = {**facts, "result_id": rid, "regions": [region_facts(r) for r in out.regions],
              "has_aligned_image": out.aligned_jpg is not None, "svg_bytes": len(svg)}
    rt.blobs.put(result_key(owner_id, rid, "result.json"), json.dumps(stored).encode())
    timer.stage("store", t)
    return stored


def job_result(rt: ContourRuntime, owner_id: str, job_id: str, stored: dict[str, Any],
               options: ContourOptions, cache: str, timer: Timer) -> dict[str, Any]:
    base = rt.jobs.status_url(job_id)
    links: dict[str, str] = {fmt: f"{base}/{fmt}" for fmt in options.formats}
    links["masks"] = f"{base}/masks/{{region}}"
    if stored.get("has_aligned_image"):
        links["aligned_image"] = f"{base}/aligned"
    result = {k: v for k, v in stored.items() if k != "has_aligned_image"}
    result.update(cache=cache, formats=list(options.formats), links=links,
                  timings_ms={**timer.timings, "total": round(sum(timer.timings.values()), 3)})
    if "svg" in options.formats and options.inline_svg and stored["svg_bytes"] <= rt.state.settings.inline_svg_max_bytes:
        svg = rt.blobs.get(result_key(owner_id, stored["result_id"], "svg"))
        result["svg_base64"] = base64.b64encode(svg).decode()
    return result
