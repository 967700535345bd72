"""Identify a photo against an event (boxes on the image, candidates with confidence) and verify two
photos side by side."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from bio_gateway.console import forms
from bio_gateway.console.client import ApiError
from bio_gateway.console.pages.events import FACES
from bio_gateway.console.render import page, preview, rect
from bio_gateway.console.session import PREFIX, ApiDep, ConsoleRoute, flash, redirect

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
VERIFY_WAIT_S = 30


def _faces(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, face in enumerate(result.get("faces") or [], start=1):
        match = face.get("match") if face.get("passed") else None
        out.append({**face, "n": i, "rect": rect(face.get("box")), "candidates": face.get("candidates") or [],
                    "cls": "match" if match else "unknown",
                    "text": f"{i}. {(match or {}).get('person_name') or ('unknown' if not match else '?')}"})
    return out


@router.get("/events/{event_id}/identify")
async def identify_form(request: Request, api: ApiDep, event_id: str) -> Response:
    ev = await api.get(f"{FACES}/events/{event_id}")
    return await page(request, api, "identify.html", event=ev, result=None)


@router.post("/events/{event_id}/identify")
async def identify(request: Request, api: ApiDep, event_id: str) -> Response:
    ev = await api.get(f"{FACES}/events/{event_id}")
    form = await request.form()
    files = await forms.uploads(form, "file")
    if not files:
        flash(request, "Choose a photo to identify.", "error")
        return redirect(f"{PREFIX}/events/{event_id}/identify")
    data = {"store_unknowns": str(forms.checkbox(form, "store_unknowns")).lower()}
    for field, kind in (("threshold", float), ("top_k", int)):
        value = forms.optional_number(form, field, kind)
        if value is not None:
            data[field] = str(value)
    try:
        result = await api.post(f"{FACES}/events/{event_id}/identify", data=data, files=files[:1])
    except ApiError as exc:
        return await page(request, api, "identify.html", status=exc.status, event=ev, result=None,
                          error=exc.message)
    shown = await preview(request, files[0][1][1])
    faces = _faces(result)
    return await page(request, api, "identify.html", event=ev, result=result, faces=faces, boxes=faces, photo=shown,
                      filename=files[0][1][0])


@router.get("/verify")
async def verify_form(request: Request, api: ApiDep) -> Response:
    return await page(request, api, "verify.html", job=None)


@router.post("/verify")
async def verify(request: Request, api: ApiDep) -> Response:
    form = await request.form()
    a, b = await forms.uploads(form, "image_a"), await forms.uploads(form, "image_b")
    if not a or not b:
        return await page(request, api, "verify.html", status=422, job=None, error="Choose two photos.")
    params = {"pose_policy": forms.text(form, "pose_policy") or "flag",
              "multiple_faces": forms.text(form, "multiple_faces") or "largest", "wait": VERIFY_WAIT_S}
    try:
        job = await api.post("/api/v1/verify/jobs/verify", params=params, files=a + b)
    except ApiError as exc:
        return await page(request, api, "verify.html", status=exc.status, job=None, error=exc.message)
    photos = {"a": await preview(request, a[0][1][1]), "b": await preview(request, b[0][1][1])}
    result = job.get("result") or {}
    sides = []
    for key in ("a", "b"):
        images = result.get("images") or {}
        info = images.get(key) or images.get(f"image_{key}") or {}
        sides.append({"key": key, "photo": photos[key], "info": info, "rect": rect(info.get("box")),
                      "filename": (a if key == "a" else b)[0][1][0]})
    return await page(request, api, "verify.html", job=job, result=result, sides=sides)
