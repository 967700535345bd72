"""One error model for the whole platform: ``{"error": {"code", "message", "details"}}``.

Pure Python on purpose: engines raise these, and importing them must not load a web framework.
The FastAPI handlers and the OpenAPI ``responses=`` builder live in :mod:`bio_shared.web.errors`.

A service declares its domain errors once, as subclasses with a class-level ``code`` (and a default
``message``)::

    class QualityTooLow(Unprocessable):
        code = "quality_too_low"
        message = "the print quality is too low to be used"

Every concrete ``code`` is registered (:func:`error_class`), so an error stored as JSON (a job's
``error``) comes back as the class it was.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_BY_CODE: dict[str, type[BioError]] = {}


class BioError(Exception):
    """Base of every error the platform reports to a caller. Subclasses fix status and code."""

    status_code: int = 400
    code: str = "bad_request"
    message: str = "the request cannot be processed"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:  # the first class declaring a code owns it
            _BY_CODE.setdefault(cls.code, cls)

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        text = message if message is not None else type(self).message
        super().__init__(text)
        self.message = text
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.details = details
        self.headers = headers

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class BadRequest(BioError):
    status_code, code, message = 400, "bad_request", "the request is malformed"


class Unauthorized(BioError):
    status_code, code, message = 401, "unauthorized", "authentication required"

    def __init__(self, message: str = "authentication required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class Forbidden(BioError):
    status_code, code, message = 403, "forbidden", "not allowed"


class NotFound(BioError):
    status_code, code, message = 404, "not_found", "not found"


class Conflict(BioError):
    status_code, code, message = 409, "conflict", "the request conflicts with the current state"


class PayloadTooLarge(BioError):
    status_code, code, message = 413, "payload_too_large", "the request is too large"


class UnsupportedMedia(BioError):
    status_code, code, message = 415, "unsupported_media_type", "the media type is not supported"


class Unprocessable(BioError):
    status_code, code, message = 422, "unprocessable", "the request cannot be processed"


class TooManyRequests(BioError):
    status_code, code, message = 429, "rate_limited", "too many requests"


class InternalError(BioError):
    status_code, code, message = 500, "internal_error", "internal server error"


class ServiceUnavailable(BioError):
    status_code, code, message = 503, "service_unavailable", "the service is unavailable"


class InvalidJson(BadRequest):
    """A JSON value the platform will not parse (syntax, nesting, NaN, out-of-range integers). 422 like
    a malformed JSON body (FastAPI's ``json_invalid``), so one code has one status everywhere."""

    status_code, code, message = 422, "invalid_json", "the value is not acceptable JSON"


class InvalidName(Unprocessable):
    code, message = "invalid_name", "the name is empty or contains characters that are not allowed"


class TimeBudgetExceeded(ServiceUnavailable):
    """A synchronous call ran out of its time budget; its job goes on (``details``: job_id, status_url)."""

    code = "time_budget_exceeded"
    message = "the request did not finish within its time budget; poll the job's status URL"


class WorkerLost(ServiceUnavailable):
    code, message = "worker_lost", "the worker running the job was lost"


class TransientFailure(ServiceUnavailable):
    code, message = "transient_failure", "a dependency was briefly unavailable"


def error_class(code: str, default: type[BioError] = InternalError) -> type[BioError]:
    """The registered class of an error code (``default`` for codes raised ad hoc)."""
    return _BY_CODE.get(code, default)


def error_from_dict(stored: dict[str, Any] | None) -> BioError:
    """Rebuild a stored ``{"code", "message", "details"}`` error as the BioError it was."""
    stored = stored or {}
    code = str(stored.get("code") or InternalError.code)
    cls = error_class(code)
    exc = cls.__new__(cls)
    BioError.__init__(exc, str(stored.get("message") or cls.message), code=code, details=stored.get("details"),
                      status_code=stored.get("status") if isinstance(stored.get("status"), int) else None)
    return exc


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def http_code(status: int) -> str:
    """The error code of a bare HTTP status (framework errors that carry no code of their own)."""
    return {
        400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
        405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
        415: "unsupported_media_type", 422: "unprocessable", 429: "rate_limited",
    }.get(status, "error" if status >= 500 else "bad_request")
