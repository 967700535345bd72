"""Images and downloads of the API shown in console pages (the browser's cookie is the console's, so
the console fetches them with the user's token). Only the image and download routes listed here pass:
the console is not a general cookie-authenticated proxy of the API."""

from __future__ import annotations

import re

from fastapi import APIRouter
from starlette.responses import Response

from bio_gateway.console.session import PREFIX, ApiDep, ConsoleRoute

router = APIRouter(prefix=f"{PREFIX}/media", route_class=ConsoleRoute, include_in_schema=False)
_ID = r"[A-Za-z0-9_-]{1,64}"
ALLOWED = [re.compile(p) for p in (
    rf"/api/v1/faces/events/{_ID}/unknowns/{_ID}/crop",
    rf"/api/v1/faces/events/{_ID}/people/{_ID}/images/{_ID}",
    rf"/api/v1/fingerprint/outputs/{_ID}/(image|template)",
    rf"/api/v1/fingerprint/templates/{_ID}/export",
    rf"/api/v1/contours/jobs/{_ID}/(svg|png|json|aligned|masks/{_ID})",
    rf"/api/v1/(fingerprint|faces|verify|contours)/jobs/{_ID}/output",
)]
# An SVG opened on its own must not run anything; its own inline styles are allowed.
MEDIA_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
EXTENSIONS = {"image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpg", "application/json": "json",
              "application/octet-stream": "bin"}


@router.get("/{path:path}")
async def media(api: ApiDep, path: str, download: int = 0, format: str | None = None) -> Response:
    target = "/" + path
    if not any(p.fullmatch(target) for p in ALLOWED):
        return Response("not found", status_code=404, media_type="text/plain")
    params = {"format": format} if format in ("iso", "json") else {}
    r = await api.send("GET", target, params=params)
    content_type = r.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
    if r.status_code >= 400:
        return Response(f"HTTP {r.status_code}", status_code=r.status_code, media_type="text/plain")
    headers = {"content-security-policy": MEDIA_CSP, "cache-control": "private, max-age=300"}
    if download:
        name = "-".join(target.strip("/").split("/")[-2:])
        headers["content-disposition"] = f'attachment; filename="{name}.{EXTENSIONS.get(content_type, "bin")}"'
    return Response(r.content, media_type=content_type, headers=headers)
