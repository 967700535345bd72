"""The operator console: server-rendered pages at /console, a client of the public API only.

``install_console(app)`` adds the console's routes and static files to the gateway app. Every page
handler calls /api/v1/... through the gateway app itself (in-process, with the user's token), so what
the console shows is exactly what an API client gets. See gateway/CONSOLE.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from bio_gateway.console.pages import (
    account,
    auth,
    contours,
    events,
    fingerprints,
    jobs,
    media,
    people,
    recognition,
    unknowns,
)
from bio_gateway.console.render import HERE
from bio_gateway.console.session import PREFIX


class _Static(StaticFiles):
    """Vendored scripts and styles: cacheable, and no page CSP needed (they are not documents)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["cache-control"] = "public, max-age=3600"
        return response


def install_console(app: FastAPI) -> None:
    app.mount(f"{PREFIX}/static", _Static(directory=str(HERE / "static")), name="console-static")
    for module in (auth, events, people, unknowns, recognition, fingerprints, contours, jobs, account, media):
        app.include_router(module.router)
