"""The unknown-faces queue of an event: crops as thumbnails; confirm as a new or an existing person,
or discard, one or many at a time."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from bio_gateway.console import forms
from bio_gateway.console.client import Api, ApiError
from bio_gateway.console.pages.events import FACES
from bio_gateway.console.render import page
from bio_gateway.console.session import PREFIX, ApiDep, ConsoleRoute, flash, redirect

router = APIRouter(prefix=f"{PREFIX}/events/{{event_id}}/unknowns", route_class=ConsoleRoute,
                   include_in_schema=False)
PAGE_SIZE = 60
MAX_PEOPLE = 500  # the "existing person" list; larger events type a name filter on the event page


@router.get("")
async def queue(request: Request, api: ApiDep, event_id: str, offset: int = 0) -> Response:
    ev = await api.get(f"{FACES}/events/{event_id}")
    unknowns = await api.get(f"{FACES}/events/{event_id}/unknowns", limit=PAGE_SIZE, offset=max(0, offset))
    people = await api.get(f"{FACES}/events/{event_id}/people", limit=MAX_PEOPLE)
    return await page(request, api, "unknowns.html", event=ev, unknowns=unknowns, people=people.get("items", []),
                      offset=max(0, offset), page_size=PAGE_SIZE)


async def _confirm(api: Api, event_id: str, ids: list[str], name: str, person_id: str) -> tuple[int, list[str]]:
    """Confirm each selected face; a new person is created by the first and gets the others."""
    done, errors = 0, []
    for unknown_id in ids:
        body = {"person_id": person_id} if person_id else {"name": name}
        try:
            person = await api.post(f"{FACES}/events/{event_id}/unknowns/{unknown_id}/confirm", json=body)
        except ApiError as exc:
            errors.append(exc.message)
            continue
        person_id = person["id"]
        done += 1
    return done, errors


@router.post("")
async def bulk(request: Request, api: ApiDep, event_id: str) -> Response:
    form = await request.form()
    ids = [v for v in form.getlist("ids") if isinstance(v, str) and v][:PAGE_SIZE]
    action = forms.text(form, "action")
    back = f"{PREFIX}/events/{event_id}/unknowns"
    if not ids:
        flash(request, "Select at least one face.", "error")
        return redirect(back)
    if action == "discard":
        errors = []
        for unknown_id in ids:
            try:
                await api.delete(f"{FACES}/events/{event_id}/unknowns/{unknown_id}")
            except ApiError as exc:
                errors.append(exc.message)
        done = len(ids) - len(errors)
        verb = "discarded"
    elif action in ("new", "existing"):
        name, person_id = forms.text(form, "name"), forms.text(form, "person_id")
        if action == "new" and not name:
            flash(request, "Type the new person's name.", "error")
            return redirect(back)
        if action == "existing" and not person_id:
            flash(request, "Choose the person these faces belong to.", "error")
            return redirect(back)
        done, errors = await _confirm(api, event_id, ids, name if action == "new" else "",
                                      person_id if action == "existing" else "")
        verb = "confirmed"
    else:
        flash(request, "Unknown action.", "error")
        return redirect(back)
    message = f"{done} face{'s' if done != 1 else ''} {verb}."
    if errors:
        message += " Not done: " + "; ".join(sorted(set(errors)))
    flash(request, message, "warn" if errors else "ok")
    return redirect(back)
