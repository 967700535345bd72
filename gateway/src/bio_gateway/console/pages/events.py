"""Events (galleries): list with counts, create, settings, delete, reset; enrolling a new person."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from bio_gateway.console import forms
from bio_gateway.console.client import ApiError
from bio_gateway.console.render import page
from bio_gateway.console.session import PREFIX, ApiDep, ConsoleRoute, flash, redirect

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
FACES = "/api/v1/faces"
PAGE_SIZE = 50


def _settings(form: FormData, *, creating: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "threshold": forms.optional_number(form, "threshold"),
        "top_k": forms.optional_number(form, "top_k", int),
        "min_face_px": forms.optional_number(form, "min_face_px", int),
        "unknown_retention_s": forms.optional_number(form, "unknown_retention_s", int),
        "detector": forms.text(form, "detector") or None,
        "landmarks": forms.optional_number(form, "landmarks", int),
        "keep_images": forms.checkbox(form, "keep_images"),
        "refuse_duplicates": forms.checkbox(form, "refuse_duplicates"),
    }
    name = forms.text(form, "name")
    if name or creating:
        body["name"] = name
    return {k: v for k, v in body.items() if v is not None}


@router.get("/events")
async def events(request: Request, api: ApiDep, offset: int = 0) -> Response:
    listing = await api.get(f"{FACES}/events", limit=PAGE_SIZE, offset=max(0, offset))
    return await page(request, api, "events.html", events=listing, offset=max(0, offset), page_size=PAGE_SIZE)


@router.post("/events")
async def create_event(request: Request, api: ApiDep) -> Response:
    form = await request.form()
    try:
        event = await api.post(f"{FACES}/events", json=_settings(form, creating=True))
    except ApiError as exc:
        flash(request, f"The event was not created: {exc.message}", "error")
        return redirect(f"{PREFIX}/events")
    flash(request, f"Event “{event['name']}” created.")
    return redirect(f"{PREFIX}/events/{event['id']}")


@router.get("/events/{event_id}")
async def event(request: Request, api: ApiDep, event_id: str, offset: int = 0, name: str = "") -> Response:
    ev = await api.get(f"{FACES}/events/{event_id}")
    people = await api.get(f"{FACES}/events/{event_id}/people", limit=PAGE_SIZE, offset=max(0, offset),
                           name=name.strip() or None)
    unknowns = await api.get(f"{FACES}/events/{event_id}/unknowns", limit=1)
    return await page(request, api, "event.html", event=ev, people=people, unknown_total=unknowns.get("total", 0),
                      offset=max(0, offset), page_size=PAGE_SIZE, name=name)


@router.post("/events/{event_id}/settings")
async def update_event(request: Request, api: ApiDep, event_id: str) -> Response:
    form = await request.form()
    try:
        await api.patch(f"{FACES}/events/{event_id}", _settings(form, creating=False))
        flash(request, "Settings saved.")
    except ApiError as exc:
        flash(request, f"Settings not saved: {exc.message}", "error")
    return redirect(f"{PREFIX}/events/{event_id}")


@router.post("/events/{event_id}/delete")
async def delete_event(request: Request, api: ApiDep, event_id: str) -> Response:
    await api.delete(f"{FACES}/events/{event_id}")
    flash(request, "Event deleted with its people, photos and unknown faces.")
    return redirect(f"{PREFIX}/events")


@router.post("/events/{event_id}/reset")
async def reset_event(request: Request, api: ApiDep, event_id: str) -> Response:
    await api.post(f"{FACES}/events/{event_id}/reset")
    flash(request, "Every person of the event was removed; the settings stay.")
    return redirect(f"{PREFIX}/events/{event_id}")


def warning_text(w: dict[str, Any]) -> str:
    who = f" (looks like {w['person_name']})" if w.get("person_name") else ""
    where = f"{w['file']}: " if w.get("file") else ""
    return f"{where}{w.get('code', 'warning')}{who}"


@router.post("/events/{event_id}/people")
async def add_person(request: Request, api: ApiDep, event_id: str) -> Response:
    form = await request.form()
    files = await forms.uploads(form, "files")
    if not files:
        flash(request, "Choose at least one photo of the person.", "error")
        return redirect(f"{PREFIX}/events/{event_id}")
    data = {"name": forms.text(form, "name"), "largest": str(forms.checkbox(form, "largest")).lower()}
    try:
        person = await api.post(f"{FACES}/events/{event_id}/people", data=data, files=files)
    except ApiError as exc:
        flash(request, f"Not enrolled: {exc.message}", "error")
        return redirect(f"{PREFIX}/events/{event_id}")
    warnings = "; ".join(warning_text(w) for w in person.get("warnings") or [])
    added = len(person.get("added") or [])
    flash(request, f"{person['name']} enrolled with {added} photo{'s' if added != 1 else ''}."
                   + (f" Warnings: {warnings}" if warnings else ""), "warn" if warnings else "ok")
    return redirect(f"{PREFIX}/events/{event_id}/people/{person['id']}")
