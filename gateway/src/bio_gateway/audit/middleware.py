"""ASGI middleware that writes one audit entry per audited request, after its answer.

The acting principal is set by whoever authenticates the request (the proxy for service calls, the
gateway's own dependencies for its routes) on the Record this middleware puts in the scope. Only ids
are taken from the answer: never images, templates or embeddings.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bio_gateway.audit.classify import classify
from bio_gateway.audit.store import AuditLog, Record
from bio_shared.logging import request_id_var

log = logging.getLogger(__name__)

SCOPE_KEY = "bio.audit"
_MAX_SNIFF = 64 * 1024  # answers larger than this are not parsed for ids (they are files, not JSON)
_MAX_IDS = 50
AUDIT_ENTRIES = Counter("bio_audit_entries_total", "Audit entries by action and result (written, failed)",
                        ["action", "result"])


def note_principal(scope: Scope, principal: Any, headers: dict[bytes, bytes]) -> None:
    """Called where a request is authenticated: who acted, with which credential."""
    rec = scope.get(SCOPE_KEY)
    if rec is None:
        return
    rec.account_id = principal.account_id
    rec.credential = credential_ref(headers)


def credential_ref(headers: dict[bytes, bytes]) -> str:
    auth = headers.get(b"authorization")
    if auth:
        token = auth.decode("latin-1").partition(" ")[2].strip()
        return "jwt:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
    # API keys are bio_<prefix>_<secret>: the prefix is public and names the key row.
    parts = key.split("_")
    return f"api_key:{parts[1]}" if len(parts) >= 3 else "api_key:invalid"


def collect_ids(body: Any, out: dict[str, Any], depth: int = 0) -> None:
    """Every string value of a key named id or *_id in the JSON answer, a few levels deep."""
    if depth > 4 or sum(len(v) for v in out.values()) >= _MAX_IDS:
        return
    if isinstance(body, dict):
        for k, v in body.items():
            if (k == "id" or k.endswith("_id")) and isinstance(v, str | int) and not isinstance(v, bool):
                bucket = out.setdefault("answer." + k, [])
                if str(v) not in bucket and len(bucket) < _MAX_IDS:
                    bucket.append(str(v))
            elif isinstance(v, dict | list):
                collect_ids(v, out, depth + 1)
    elif isinstance(body, list):
        for v in body[:_MAX_IDS]:
            collect_ids(v, out, depth + 1)


class AuditMiddleware:
    def __init__(self, app: ASGIApp, *, audit: AuditLog,
                 observers: list[Callable[[Record, Any], None]] | None = None) -> None:
        self.app = app
        self.audit = audit
        self.observers = observers or []  # e.g. webhooks: called with the entry and the parsed answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = classify(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        action, ids = found
        rec = Record(action=action, method=scope["method"], path=scope["path"], resources=dict(ids))
        scope[SCOPE_KEY] = rec
        sniff: list[bytes] = []
        is_json = False
        held: list[Message] = []

        async def watch(message: Message) -> None:
            nonlocal is_json
            if message["type"] == "http.response.start":
                rec.status = message["status"]
                ctype = dict(message.get("headers", ())).get(b"content-type", b"")
                is_json = ctype.startswith(b"application/json")
            elif message["type"] == "http.response.body":
                if is_json and sum(map(len, sniff)) < _MAX_SNIFF:
                    sniff.append(message.get("body", b""))
                if not message.get("more_body", False):
                    held.append(message)  # the answer completes only once its entry is written
                    return
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if rec.account_id and rec.status:
                await self._write(rec, b"".join(sniff) if is_json else b"")
            for message in held:
                await send(message)

    async def _write(self, rec: Record, body: bytes) -> None:
        rec.request_id = request_id_var.get() or ""
        parsed: Any = None
        if body and len(body) < _MAX_SNIFF:
            try:
                parsed = json.loads(body)
                collect_ids(parsed, rec.resources)
            except ValueError:
                pass
        try:
            await run_in_threadpool(self.audit.append, rec)
            AUDIT_ENTRIES.labels(rec.action, "written").inc()
        except Exception:  # the answer is already sent; losing an entry is logged loudly and counted
            AUDIT_ENTRIES.labels(rec.action, "failed").inc()
            log.exception("audit entry for %s %s could not be written", rec.method, rec.path)
        for observe in self.observers:
            try:
                await run_in_threadpool(observe, rec, parsed)
            except Exception:
                log.exception("audit observer %r failed for %s %s", observe, rec.method, rec.path)
