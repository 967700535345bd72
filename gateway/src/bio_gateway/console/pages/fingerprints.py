"""Fingerprints: enroll impressions (quality shown), identify a print, and one processed print with
its minutiae drawn on the enhanced image."""

from __future__ import annotations

import json
from itertools import groupby
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from bio_gateway.console import forms
from bio_gateway.console.client import Api, ApiError
from bio_gateway.console.render import minutia_marks, page
from bio_gateway.console.session import PREFIX, ApiDep, ConsoleRoute, flash, redirect

router = APIRouter(prefix=f"{PREFIX}/fingerprints", route_class=ConsoleRoute, include_in_schema=False)
FP = "/api/v1/fingerprint"
FINGERS = ["unknown", "right thumb", "right index", "right middle", "right ring", "right little",
           "left thumb", "left index", "left middle", "left ring", "left little"]
FMRS = [0.01, 0.001, 0.0001]


async def _overview(request: Request, api: Api, status: int = 200, **ctx: Any) -> Response:
    listing = await api.get(f"{FP}/templates", limit=500)
    rows = listing.get("items", [])
    rows.sort(key=lambda t: (t["subject"], t["finger"], t.get("impression", 0)))
    subjects = [{"subject": s, "templates": list(ts)} for s, ts in groupby(rows, key=lambda t: t["subject"])]
    return await page(request, api, "fingerprints.html", status=status, subjects=subjects, fingers=FINGERS,
                      fmrs=FMRS, shown=len(rows), total=listing.get("total", len(rows)), **ctx)


@router.get("")
async def overview(request: Request, api: ApiDep) -> Response:
    return await _overview(request, api)


@router.post("/enroll")
async def enroll(request: Request, api: ApiDep) -> Response:
    form = await request.form()
    files = await forms.uploads(form, "files")
    if not files:
        return await _overview(request, api, status=422, enroll_error="Choose one or more impressions.")
    data = {"subject": forms.text(form, "subject"), "finger": forms.text(form, "finger") or "0"}
    try:
        out = await api.post(f"{FP}/enroll", data=data, files=files)
    except ApiError as exc:
        return await _overview(request, api, status=exc.status, enroll_error=exc.message,
                               enroll_details=exc.details)
    return await _overview(request, api, enrolled=out)


async def _probe_view(api: Api, output_id: str) -> dict[str, Any]:
    output = await api.get(f"{FP}/outputs/{output_id}")
    template = await api.get(f"{FP}/outputs/{output_id}/template", format="json")
    return {"output": output, "template": template, "marks": minutia_marks(template.get("minutiae") or [])}


@router.post("/identify")
async def identify(request: Request, api: ApiDep) -> Response:
    """The probe is processed once (stored as an output, so its minutiae can be drawn), then its
    template is searched against every enrolled one."""
    form = await request.form()
    files = await forms.uploads(form, "file")
    if not files:
        return await _overview(request, api, status=422, identify_error="Choose a print to identify.")
    try:
        extracted = await api.post(f"{FP}/extract", files=files[:1])
        probe = await _probe_view(api, extracted["output"]["id"])
        data = {"top_k": forms.text(form, "top_k") or "5", "fmr": forms.text(form, "fmr") or "0.001"}
        template = ("template", ("probe.json", json.dumps(probe["template"]).encode(), "application/json"))
        result = await api.post(f"{FP}/identify", data={**data, "template_format": "json"}, files=[template])
    except ApiError as exc:
        return await _overview(request, api, status=exc.status, identify_error=exc.message)
    return await page(request, api, "fingerprint_identify.html", result=result, probe=probe,
                      quality=extracted.get("quality"), fingers=FINGERS, filename=files[0][1][0])


@router.post("/batch")
async def batch(request: Request, api: ApiDep) -> Response:
    """Many prints as one background job (optionally enrolled under a subject); the job page shows
    its progress live."""
    form = await request.form()
    files = await forms.uploads(form, "files")
    if not files:
        return await _overview(request, api, status=422, batch_error="Choose the prints to process.")
    data = {"finger": forms.text(form, "finger") or "0"}
    if forms.text(form, "subject"):
        data["subject"] = forms.text(form, "subject")
    try:
        job = await api.post(f"{FP}/jobs/process", data=data, files=files)
    except ApiError as exc:
        return await _overview(request, api, status=exc.status, batch_error=exc.message)
    return redirect(f"{PREFIX}/jobs/fingerprint/{job['id']}")


@router.get("/outputs/{output_id}")
async def output(request: Request, api: ApiDep, output_id: str) -> Response:
    view = await _probe_view(api, output_id)
    return await page(request, api, "fingerprint_output.html", fingers=FINGERS, **view)


@router.post("/templates/{template_id}/delete")
async def delete_template(request: Request, api: ApiDep, template_id: str) -> Response:
    await api.delete(f"{FP}/templates/{template_id}")
    flash(request, "Template deleted.")
    return redirect(f"{PREFIX}/fingerprints")
