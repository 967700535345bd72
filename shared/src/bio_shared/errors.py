"""One error model for the whole platform: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class BioError(Exception):
    """Base of every error the platform reports to a caller. Subclasses fix status and code."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.details = details
        self.headers = headers

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class BadRequest(BioError):
    status_code, code = 400, "bad_request"


class Unauthorized(BioError):
    status_code, code = 401, "unauthorized"

    def __init__(self, message: str = "authentication required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class Forbidden(BioError):
    status_code, code = 403, "forbidden"


class NotFound(BioError):
    status_code, code = 404, "not_found"


class Conflict(BioError):
    status_code, code = 409, "conflict"


class PayloadTooLarge(BioError):
    status_code, code = 413, "payload_too_large"


class UnsupportedMedia(BioError):
    status_code, code = 415, "unsupported_media_type"


class Unprocessable(BioError):
    status_code, code = 422, "unprocessable"


class TooManyRequests(BioError):
    status_code, code = 429, "rate_limited"


class ServiceUnavailable(BioError):
    status_code, code = 503, "service_unavailable"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _http_code(status: int) -> str:
    return {
        400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
        405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
        415: "unsupported_media_type", 422: "unprocessable", 429: "rate_limited",
    }.get(status, "error" if status >= 500 else "bad_request")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BioError)
    async def _bio(_: Request, exc: BioError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status_code, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return JSONResponse(error_body(_http_code(exc.status_code), message), exc.status_code,
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
