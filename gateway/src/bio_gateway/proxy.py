"""Routing to the services: authenticate, rate-limit, sign the identity, forward the exchange.

One code path for both run modes up to the last step: the embedded mode hands the rewritten
request to the service's ASGI app in this process (no serialisation at all); the distributed mode
streams it over HTTP with aiohttp (measured cheaper per request than httpx on this proxy path). The
proxy is plain ASGI (no FastAPI dependency injection) because it sits on every API call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bio_gateway.audit.middleware import note_principal
from bio_gateway.exceptions import InvalidToken, NotAuthenticated
from bio_gateway.ratelimit import RateLimiter
from bio_gateway.service import Accounts, Principal
from bio_gateway.settings import GatewaySettings
from bio_shared.app import MULTIPART_OVERHEAD, BodyLimitMiddleware
from bio_shared.errors import BioError, NotFound, PayloadTooLarge, error_body
from bio_shared.identity import IDENTITY_HEADER, Identity, sign_identity
from bio_shared.logging import request_id_var
from bio_shared.metrics import UPSTREAM_ERRORS

log = logging.getLogger(__name__)

# Never forwarded upstream: hop-by-hop headers, the caller's credentials (services trust only the
# signed identity), and any identity header a client tries to smuggle in.
_DROP_REQUEST = {b"host", b"connection", b"keep-alive", b"proxy-authorization", b"te", b"trailer",
                 b"transfer-encoding", b"upgrade", b"authorization", b"x-api-key", b"cookie",
                 IDENTITY_HEADER.lower().encode(), b"x-request-id", b"x-forwarded-for"}
_DROP_RESPONSE = {b"connection", b"keep-alive", b"transfer-encoding", b"server", b"date", b"x-request-id"}
# Service routes for the gateway alone (it calls them directly, never through this proxy): the
# per-account purge. A public request for them is answered as if they did not exist.
INTERNAL_SUFFIXES = ("/admin/owners",)
_SLASHES = re.compile(r"/{2,}")


def is_internal_path(prefix: str, path: str) -> bool:
    """``path`` as the service will route it (percent-decoded, repeated slashes folded)."""
    rest = _SLASHES.sub("/", path)[len(prefix):].rstrip("/")
    return any(rest == s or rest.startswith(s + "/") for s in INTERNAL_SUFFIXES)


class UpstreamError(Exception):
    def __init__(self, kind: str, cause: BaseException) -> None:
        super().__init__(f"{kind}: {cause!r}")
        self.kind = kind


class Upstream:
    """Where a service lives. ``forward`` answers the client through ``send`` or raises UpstreamError
    before anything was sent."""

    name: str
    prefix: str

    async def forward(self, scope: Scope, headers: list[tuple[bytes, bytes]], receive: Receive, send: Send,
                      limit: int) -> None:
        raise NotImplementedError

    async def request_json(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class InProcessUpstream(Upstream):
    """Embedded mode: the service app runs in this process; the request is handed over as ASGI."""

    def __init__(self, name: str, prefix: str, app: ASGIApp, limit: int) -> None:
        self.name, self.prefix, self.service_app = name, prefix, app
        self.app = BodyLimitMiddleware(app, max_bytes=limit)  # the gateway's limit on the streamed body

    async def forward(self, scope: Scope, headers: list[tuple[bytes, bytes]], receive: Receive, send: Send,
                      limit: int) -> None:
        child = dict(scope)
        child["headers"] = headers
        child["root_path"] = ""
        child.pop("route", None)
        child.pop("endpoint", None)
        child["state"] = {}
        await self.app(child, receive, send)

    async def request_json(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        import httpx  # only on this rare administrative path

        transport = httpx.ASGITransport(app=self.service_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedded") as c:
            r = await c.request(method, path, headers=headers)
            return r.status_code, r.json()


class HttpUpstream(Upstream):
    """Distributed mode: a pooled aiohttp session to the service process, with timeouts."""

    def __init__(self, name: str, prefix: str, base_url: str, settings: GatewaySettings) -> None:
        self.name, self.prefix, self.base_url = name, prefix, base_url.rstrip("/")
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            s = self.settings
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=s.proxy_max_connections, ttl_dns_cache=60),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=s.proxy_connect_timeout_s,
                                              sock_read=s.proxy_read_timeout_s),
                auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def forward(self, scope: Scope, headers: list[tuple[bytes, bytes]], receive: Receive, send: Send,
                      limit: int) -> None:
        body = _Body(receive, limit) if _has_body(scope, headers) else None
        path = scope.get("raw_path") or scope["path"].encode()
        url = self.base_url + path.decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        hdrs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers if k != b"content-length"]
        try:
            response = await self.session.request(scope["method"], aiohttp.client.URL(url, encoded=True),
                                                  headers=hdrs, data=body.chunks() if body else None,
                                                  allow_redirects=False)
        except Exception as exc:
            if body is not None and body.too_large:
                raise _BodyTooLarge() from exc
            raise _classify(exc) from exc
        try:
            if body is not None and body.too_large:
                raise _BodyTooLarge()
            out = [(k.lower(), v) for k, v in response.raw_headers if k.lower() not in _DROP_RESPONSE]
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            try:
                async for chunk in response.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (TimeoutError, aiohttp.ClientError):
                UPSTREAM_ERRORS.labels(self.name, "stream").inc()
                log.exception("upstream %s broke off mid-response", self.name)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            response.release()

    async def request_json(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        try:
            async with self.session.request(method, self.base_url + path, headers=headers) as r:
                return r.status, await r.json(content_type=None)
        except Exception as exc:
            raise _classify(exc) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _classify(exc: BaseException) -> UpstreamError:
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError)) and \
            not isinstance(exc, aiohttp.ServerTimeoutError):
        return UpstreamError("unavailable", exc)
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return UpstreamError("timeout", exc)
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamError("protocol", exc)
    return UpstreamError("protocol", exc) if isinstance(exc, OSError) else UpstreamError("internal", exc)


_UPSTREAM_ERRORS = {
    "unavailable": (503, "service_unavailable", "the {} service is unavailable"),
    "timeout": (504, "upstream_timeout", "the {} service did not answer in time"),
    "protocol": (502, "bad_gateway", "the {} service sent an invalid response"),
    "internal": (502, "bad_gateway", "the {} service could not be reached"),
}


def _has_body(scope: Scope, headers: list[tuple[bytes, bytes]]) -> bool:
    if scope["method"] in ("POST", "PUT", "PATCH"):
        return True
    return any(k in (b"content-length", b"transfer-encoding") for k, _ in scope.get("headers", ()))


class _BodyTooLarge(Exception):
    pass


async def send_error(send: Send, exc: BioError) -> None:
    body = json.dumps(error_body(exc.code, exc.message, exc.details)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    for k, v in (exc.headers or {}).items():
        headers.append((k.lower().encode(), v.encode()))
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def client_ip(scope: Scope, trust_forwarded: bool) -> str:
    if trust_forwarded:
        for k, v in scope.get("headers", ()):
            if k == b"x-forwarded-for":
                return v.decode("latin-1").split(",")[0].strip()
    client = scope.get("client")
    return client[0] if client else "unknown"


class Authenticator:
    """Bearer JWT or X-API-Key -> Principal. Database lookups only on cache misses, off the loop."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    async def __call__(self, headers: dict[bytes, bytes]) -> Principal:
        auth = headers.get(b"authorization")
        if auth:
            scheme, _, token = auth.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise InvalidToken("Authorization must be 'Bearer <token>'")
            return await self._resolve(self.accounts.principal_from_token, token.strip())
        key = headers.get(b"x-api-key")
        if key:
            return await self._resolve(self.accounts.principal_from_api_key, key.decode("latin-1").strip())
        raise NotAuthenticated()

    @staticmethod
    async def _resolve(fn, credential: str) -> Principal:
        # A cache hit costs microseconds and runs inline; a miss needs the database and runs in a
        # thread so the event loop never blocks on it.
        try:
            return fn(credential, cached_only=True)
        except LookupError:
            return await run_in_threadpool(fn, credential)


class ServiceProxy:
    """ASGI app mounted at a service prefix; forwards the full path unchanged."""

    def __init__(self, upstream: Upstream, accounts: Accounts, limiter: RateLimiter, settings: GatewaySettings) -> None:
        self.upstream = upstream
        self.authenticate = Authenticator(accounts)
        self.limiter = limiter
        self.settings = settings
        self.limit = settings.max_upload_bytes + MULTIPART_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope.get("headers", ()))
        try:
            if is_internal_path(self.upstream.prefix, scope["path"]):
                raise NotFound("not found", code="not_found")
            principal = await self.authenticate(headers)
            note_principal(scope, principal, headers)
            await self.limiter.hit("api", principal.account_id, self.settings.rate_limit_api)
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.limit:
                raise PayloadTooLarge(f"request body exceeds {self.limit} bytes", details={"limit_bytes": self.limit})
        except BioError as exc:
            await send_error(send, exc)
            return
        rid = request_id_var.get()
        identity = sign_identity(Identity(principal.account_id, principal.role, rid), self.settings.internal_secret,
                                 self.settings.identity_ttl_s)
        out = [(k, v) for k, v in scope.get("headers", ()) if k not in _DROP_REQUEST]
        out += [(IDENTITY_HEADER.lower().encode(), identity.encode()), (b"x-request-id", (rid or "").encode()),
                (b"x-forwarded-for", client_ip(scope, self.settings.trust_forwarded_for).encode())]
        try:
            await self.upstream.forward(scope, out, receive, send, self.limit)
        except _BodyTooLarge:
            await send_error(send, PayloadTooLarge(f"request body exceeds {self.limit} bytes",
                                                   details={"limit_bytes": self.limit}))
        except UpstreamError as exc:
            status, code, message = _UPSTREAM_ERRORS[exc.kind]
            UPSTREAM_ERRORS.labels(self.upstream.name, exc.kind).inc()
            log.warning("upstream %s: %s", self.upstream.name, exc)
            await send_error(send, BioError(message.format(self.upstream.name), code=code, status_code=status,
                                            details={"service": self.upstream.name}))


class _Body:
    """The request body as an async stream, cut off (and flagged) past the size limit."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.too_large = False

    async def chunks(self) -> AsyncIterator[bytes]:
        total = 0
        while True:
            message: Message = await self.receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.limit:
                self.too_large = True
                raise _BodyTooLarge()
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return


def make_upstream(name: str, prefix: str, settings: GatewaySettings, *, base_url: str | None = None,
                  app: ASGIApp | None = None) -> Upstream:
    if app is not None:
        return InProcessUpstream(name, prefix, app, settings.max_upload_bytes + MULTIPART_OVERHEAD)
    if not base_url:
        raise ValueError(f"no URL for service {name}")
    return HttpUpstream(name, prefix, base_url, settings)
