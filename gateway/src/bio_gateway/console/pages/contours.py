"""Contour masks: upload a face photo as a job, watch it, see the SVG drawn over the aligned face and
download the results."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response

from bio_gateway.console import forms
from bio_gateway.console.client import ApiError
from bio_gateway.console.pages.jobs import get_job
from bio_gateway.console.render import page
from bio_gateway.console.session import PREFIX, ApiDep, ConsoleRoute, flash, redirect

router = APIRouter(prefix=f"{PREFIX}/contours", route_class=ConsoleRoute, include_in_schema=False)
CONTOURS = "/api/v1/contours"
STYLES = ("filled", "outline")


@router.get("")
async def contours(request: Request, api: ApiDep) -> Response:
    listing = await api.get(f"{CONTOURS}/jobs", limit=50)
    recent = [j for j in listing.get("items", []) if j.get("kind") == "contours"]
    return await page(request, api, "contours.html", recent=recent, styles=STYLES)


@router.post("")
async def submit(request: Request, api: ApiDep) -> Response:
    form = await request.form()
    files = await forms.uploads(form, "file")
    if not files:
        flash(request, "Choose a face photo.", "error")
        return redirect(f"{PREFIX}/contours")
    options = {"style": forms.text(form, "style") or "filled", "formats": ["svg", "png", "json"]}
    smoothing = forms.optional_number(form, "smoothing")
    if smoothing is not None:
        options["smoothing"] = smoothing
    extra = await forms.uploads(form, "label_map")
    try:
        job = await api.post(f"{CONTOURS}/jobs/contours", files=files[:1] + extra[:1],
                             data={"options": json.dumps(options)})
    except ApiError as exc:
        flash(request, f"Not submitted: {exc.message}", "error")
        return redirect(f"{PREFIX}/contours")
    return redirect(f"{PREFIX}/contours/{job['id']}")


@router.get("/{job_id}")
async def contour_job(request: Request, api: ApiDep, job_id: str) -> Response:
    job = await get_job(api, "contour_mask", job_id)
    found = (job.get("result") or {}).get("regions")
    regions = [r for r in found if isinstance(r, dict) and r.get("name")] if isinstance(found, list) else []
    media = f"{PREFIX}/media{CONTOURS}/jobs/{job_id}"
    return await page(request, api, "contour_job.html", job=job, media=media, regions=regions)
