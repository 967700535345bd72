"""FastAPI handlers that turn every failure into the platform's error body, and the OpenAPI
``responses=`` mapping that declares the codes a route can return."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bio_shared.errors import BioError, error_body, http_code
from bio_shared.schemas import ErrorResponse

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BioError)
    async def _bio(_: Request, exc: BioError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status_code, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return JSONResponse(error_body(http_code(exc.status_code), message), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()
        ]
        json_error = any(d["type"] == "json_invalid" for d in details)
        message = "request body is not valid JSON" if json_error else "request validation failed"
        return JSONResponse(error_body("invalid_json" if json_error else "validation_error", message, details), 422)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "internal server error"), 500)


def error_responses(*exc_classes: type[BioError]) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` mapping of a route from the error classes it can raise: one entry per status,
    the shared error model, the codes listed in the description and one example per code::

        @router.post("/enroll", responses=error_responses(QualityTooLow, NotAPrint))
    """
    by_status: dict[int, list[type[BioError]]] = defaultdict(list)
    for cls in exc_classes:
        if not (isinstance(cls, type) and issubclass(cls, BioError)):
            raise TypeError(f"error_responses takes BioError subclasses, not {cls!r}")
        if cls not in by_status[cls.status_code]:
            by_status[cls.status_code].append(cls)
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(by_status):
        classes = by_status[status]
        codes = ", ".join(f"`{c.code}`" for c in classes)
        examples = {c.code: {"summary": c.message, "value": error_body(c.code, c.message)} for c in classes}
        out[status] = {
            "model": ErrorResponse,
            "description": f"Error codes: {codes}",
            "content": {"application/json": {"examples": examples}},
        }
    return out
