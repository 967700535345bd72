"""Server-side rendering: the Jinja2 environment, the page frame (navigation, account, CSRF token,
flash message) and small view helpers shared by the pages."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from bio_gateway.console.client import Api, ApiError, NotLoggedIn
from bio_gateway.console.session import csrf_token, read_flash
from bio_shared.errors import BioError
from bio_shared.images import decode_image, resize_max_side

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
PREVIEW_SIDE = 1024


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100.0 * float(value):.1f} %"


def _when(value: str | None) -> str:
    return "" if not value else str(value).replace("T", " ")[:19]


templates.env.filters["pct"] = _pct
templates.env.filters["when"] = _when


async def me(request: Request, api: Api) -> dict[str, Any] | None:
    cached = getattr(request.state, "console_me", None)
    if cached is None and api.tokens is not None:
        cached = request.state.console_me = await api.get("/api/v1/auth/me")
    return cached


async def audit_available(request: Request, api: Api) -> bool:
    """The audit link is shown only when the platform has an audit route (probed once per process)."""
    state = request.app.state
    if getattr(state, "console_audit", None) is None:
        r = await api.send("GET", "/api/v1/audit", params={"limit": 1})
        state.console_audit = r.status_code != 404
    return bool(state.console_audit)


async def page(request: Request, api: Api, template: str, /, *, status: int = 200, **ctx: Any) -> Response:
    account = await me(request, api)
    is_admin = bool(account and account.get("role") == "admin")
    audit = is_admin and await audit_available(request, api)
    context = {"me": account, "is_admin": is_admin, "audit": audit, "csrf": csrf_token(request),
               "flash": read_flash(request), "path": request.url.path, **ctx}
    return templates.TemplateResponse(request, template, context, status_code=status)


async def error_page(request: Request, status: int, title: str, message: str, **extra: Any) -> Response:
    api: Api | None = getattr(request.state, "console_api", None)
    account = None
    if api is not None and api.tokens is not None:
        try:
            account = await me(request, api)
        except (ApiError, NotLoggedIn):
            account = None
    context = {"me": account, "is_admin": bool(account and account.get("role") == "admin"), "audit": False,
               "csrf": csrf_token(request), "flash": None, "path": request.url.path, "title": title,
               "message": message, **extra}
    return templates.TemplateResponse(request, "error.html", context, status_code=status)


# --- view helpers ------------------------------------------------------------------------------

def rect(box: Any) -> dict[str, int] | None:
    """A face box in any of the platform's shapes -> {x, y, width, height}."""
    if isinstance(box, dict):
        if "x1" in box:
            x, y = round(float(box["x1"])), round(float(box["y1"]))
            return {"x": x, "y": y, "width": round(float(box["x2"])) - x, "height": round(float(box["y2"])) - y}
        if "x" in box:
            return {k: round(float(box[k])) for k in ("x", "y", "width", "height")}
        if "left" in box:
            left, top = int(box["left"]), int(box["top"])
            width = int(box.get("width", int(box.get("right", left)) - left))
            height = int(box.get("height", int(box.get("bottom", top)) - top))
            return {"x": left, "y": top, "width": width, "height": height}
    if isinstance(box, list | tuple) and len(box) == 4:
        left, top, right, bottom = (round(float(v)) for v in box)
        return {"x": left, "y": top, "width": right - left, "height": bottom - top}
    return None


def minutia_marks(minutiae: list[dict[str, Any]], length: float = 12.0) -> list[dict[str, Any]]:
    """Minutiae as SVG marks: position, the end of a direction stroke, and the type."""
    marks = []
    for m in minutiae:
        try:
            x, y, theta = float(m["x"]), float(m["y"]), float(m.get("direction", 0.0))
        except (KeyError, TypeError, ValueError):
            continue
        marks.append({"x": round(x, 1), "y": round(y, 1), "x2": round(x + length * math.cos(theta), 1),
                      "y2": round(y - length * math.sin(theta), 1), "type": str(m.get("type", "other"))})
    return marks


def _preview(data: bytes, max_bytes: int, max_pixels: int) -> dict[str, Any]:
    img = decode_image(data, mode="rgb", max_bytes=max_bytes, max_pixels=max_pixels)
    small = resize_max_side(img.pixels, PREVIEW_SIDE)
    buf = io.BytesIO()
    Image.fromarray(small).save(buf, format="JPEG", quality=85)
    return {"src": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode(),
            "width": img.width, "height": img.height}


async def preview(request: Request, data: bytes) -> dict[str, Any] | None:
    """An uploaded photo as a data URL for the page that shows the API's answer about it (in the
    coordinates the services use: EXIF orientation applied, original size); None if undecodable."""
    settings = request.app.state.settings
    try:
        return await run_in_threadpool(_preview, data, settings.max_upload_bytes, settings.max_image_pixels)
    except BioError:
        return None
