"""One person of an event: photos (add, delete), rename, delete."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from bio_gateway.console import forms
from bio_gateway.console.client import ApiError
from bio_gateway.console.pages.events import FACES, warning_text
from bio_gateway.console.render import page, rect
from bio_gateway.console.session import PREFIX, ApiDep, ConsoleRoute, flash, redirect

router = APIRouter(prefix=f"{PREFIX}/events/{{event_id}}/people/{{person_id}}", route_class=ConsoleRoute,
                   include_in_schema=False)


def _here(event_id: str, person_id: str) -> str:
    return f"{PREFIX}/events/{event_id}/people/{person_id}"


@router.get("")
async def person(request: Request, api: ApiDep, event_id: str, person_id: str) -> Response:
    ev = await api.get(f"{FACES}/events/{event_id}")
    p = await api.get(f"{FACES}/events/{event_id}/people/{person_id}")
    images = [{**img, "rect": rect(img.get("box"))} for img in p.get("images") or []]
    return await page(request, api, "person.html", event=ev, person=p, images=images)


@router.post("/rename")
async def rename(request: Request, api: ApiDep, event_id: str, person_id: str) -> Response:
    form = await request.form()
    try:
        p = await api.patch(f"{FACES}/events/{event_id}/people/{person_id}", {"name": forms.text(form, "name")})
        flash(request, f"Renamed to {p['name']}.")
    except ApiError as exc:
        flash(request, f"Not renamed: {exc.message}", "error")
    return redirect(_here(event_id, person_id))


@router.post("/images")
async def add_images(request: Request, api: ApiDep, event_id: str, person_id: str) -> Response:
    form = await request.form()
    files = await forms.uploads(form, "files")
    if not files:
        flash(request, "Choose at least one photo.", "error")
        return redirect(_here(event_id, person_id))
    try:
        out = await api.post(f"{FACES}/events/{event_id}/people/{person_id}/images", files=files,
                             data={"largest": str(forms.checkbox(form, "largest")).lower()})
    except ApiError as exc:
        flash(request, f"No photo added: {exc.message}", "error")
        return redirect(_here(event_id, person_id))
    warnings = "; ".join(warning_text(w) for w in out.get("warnings") or [])
    flash(request, f"{len(out.get('added') or [])} photo(s) added." + (f" Warnings: {warnings}" if warnings else ""),
          "warn" if warnings else "ok")
    return redirect(_here(event_id, person_id))


@router.post("/images/{image_id}/delete")
async def delete_image(request: Request, api: ApiDep, event_id: str, person_id: str, image_id: str) -> Response:
    await api.delete(f"{FACES}/events/{event_id}/people/{person_id}/images/{image_id}")
    flash(request, "Photo deleted.")
    return redirect(_here(event_id, person_id))


@router.post("/delete")
async def delete_person(request: Request, api: ApiDep, event_id: str, person_id: str) -> Response:
    await api.delete(f"{FACES}/events/{event_id}/people/{person_id}")
    flash(request, "Person deleted with their photos.")
    return redirect(f"{PREFIX}/events/{event_id}")
