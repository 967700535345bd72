"""JSON logs that carry the request id from the gateway through services and jobs."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: jobs and workers import this module without a web framework
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# Which service handles the current request: in the embedded mode one process logs for all of them.
service_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("service", default=None)
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_log = logging.getLogger("bio.access")


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: str | None) -> str | None:
    """Accept a caller's request id only if it is short and harmless in logs and headers."""
    return value if value and _VALID_ID.fullmatch(value) else None


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": service_var.get() or self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            entry["request_id"] = rid
        for key in ("method", "path", "status", "duration_ms", "account", "job_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO", json_logs: bool = True) -> None:
    """Idempotent: the embedded mode calls it once per mounted service."""
    root = logging.getLogger()
    if getattr(root, "_bio_configured", False):
        return
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("uvicorn.access").disabled = True  # our access log carries the request id
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root._bio_configured = True  # type: ignore[attr-defined]


class RequestIdMiddleware:
    """Takes X-Request-ID from the caller (or makes one), exposes it to logs and echoes it back.

    Also writes one access-log line per request. Pure ASGI so it adds little to the proxy path.
    """

    def __init__(self, app: ASGIApp, *, service: str | None = None, trust_incoming: bool = True) -> None:
        self.app = app
        self.service = service
        self.trust_incoming = trust_incoming

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        if self.trust_incoming:
            for k, v in scope.get("headers", ()):
                if k == b"x-request-id":
                    incoming = clean_request_id(v.decode("latin-1"))
                    break
        rid = incoming or new_request_id()
        token = request_id_var.set(rid)
        service_token = service_var.set(self.service) if self.service else None
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info(
                "%s %s %s", scope.get("method"), scope.get("path"), status,
                extra={"method": scope.get("method"), "path": scope.get("path"), "status": status,
                       "duration_ms": round((time.perf_counter() - start) * 1000, 2)},
            )
            request_id_var.reset(token)
            if service_token is not None:
                service_var.reset(service_token)
