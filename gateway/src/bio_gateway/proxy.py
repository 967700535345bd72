"""Routing to the services: authenticate, rate-limit, sign the identity, stream the exchange.

One code path for both run modes: the upstream is an httpx client whose transport is either the
network (distributed mode) or the service's ASGI app in this process (embedded mode). The proxy is
plain ASGI (no FastAPI dependency injection) because it sits on every API call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from bio_shared.app import MULTIPART_OVERHEAD
from bio_shared.errors import BioError, PayloadTooLarge, Unauthorized, error_body
from bio_shared.identity import IDENTITY_HEADER, Identity, sign_identity
from bio_shared.logging import request_id_var
from bio_shared.metrics import UPSTREAM_ERRORS

from bio_gateway.ratelimit import RateLimiter
from bio_gateway.service import Accounts, Principal
from bio_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

# Never forwarded upstream: hop-by-hop headers, the caller's credentials (services trust only the
# signed identity), and any identity header a client tries to smuggle in.
_DROP_REQUEST = {b"host", b"connection", b"keep-alive", b"proxy-authorization", b"te", b"trailer",
                 b"transfer-encoding", b"upgrade", b"authorization", b"x-api-key", b"cookie",
                 IDENTITY_HEADER.lower().encode(), b"x-request-id", b"x-forwarded-for", b"content-length"}
_DROP_RESPONSE = {b"connection", b"keep-alive", b"transfer-encoding", b"server", b"date", b"x-request-id"}


@dataclass
class Upstream:
    name: str
    prefix: str
    client: httpx.AsyncClient
    embedded: bool


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
                raise Unauthorized("Authorization must be 'Bearer <token>'", code="invalid_token")
            return await self._resolve(self.accounts.principal_from_token, token.strip())
        key = headers.get(b"x-api-key")
        if key:
            return await self._resolve(self.accounts.principal_from_api_key, key.decode("latin-1").strip())
        raise Unauthorized("send a Bearer access token or an X-API-Key header", code="not_authenticated")

    @staticmethod
    async def _resolve(fn, credential: str) -> Principal:  # noqa: ANN001
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope.get("headers", ()))
        try:
            principal = await self.authenticate(headers)
            self.limiter.hit("api", principal.account_id, self.settings.rate_limit_api)
            length = headers.get(b"content-length")
            limit = self.settings.max_upload_bytes + MULTIPART_OVERHEAD
            if length is not None and length.isdigit() and int(length) > limit:
                raise PayloadTooLarge(f"request body exceeds {limit} bytes", details={"limit_bytes": limit})
        except BioError as exc:
            await send_error(send, exc)
            return
        await self._forward(scope, receive, send, principal, headers, limit)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, principal: Principal,
                       headers: dict[bytes, bytes], limit: int) -> None:
        rid = request_id_var.get()
        identity = sign_identity(Identity(principal.account_id, principal.role, rid), self.settings.internal_secret,
                                 self.settings.identity_ttl_s)
        out_headers = [(k, v) for k, v in scope.get("headers", ()) if k not in _DROP_REQUEST]
        out_headers += [(IDENTITY_HEADER.encode(), identity.encode()), (b"x-request-id", (rid or "").encode()),
                        (b"x-forwarded-for", client_ip(scope, self.settings.trust_forwarded_for).encode())]
        method = scope["method"]
        has_body = method not in ("GET", "HEAD", "OPTIONS", "DELETE") or b"content-length" in headers
        url = httpx.URL(path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
                        query=scope.get("query_string", b""))
        body = _Body(receive, limit) if has_body else None
        request = self.upstream.client.build_request(method, url, headers=out_headers, content=body)
        try:
            response = await self.upstream.client.send(request, stream=True)
        except Exception as exc:
            if body is not None and body.too_large:
                await self._too_large(send, limit)
                return
            if isinstance(exc, httpx.HTTPError):
                await self._transport_error(send, exc)
                return
            raise
        if body is not None and body.too_large:
            # The upstream may have answered anyway (an in-process app can swallow the error
            # raised mid-stream); the caller gets the 413 it caused, never a misleading answer.
            await response.aclose()
            await self._too_large(send, limit)
            return
        try:
            resp_headers = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in _DROP_RESPONSE]
            await send({"type": "http.response.start", "status": response.status_code, "headers": resp_headers})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.HTTPError:
            UPSTREAM_ERRORS.labels(self.upstream.name, "stream").inc()
            log.exception("upstream %s broke off mid-response", self.upstream.name)
        finally:
            await response.aclose()

    @staticmethod
    async def _too_large(send: Send, limit: int) -> None:
        await send_error(send, PayloadTooLarge(f"request body exceeds {limit} bytes", details={"limit_bytes": limit}))

    async def _transport_error(self, send: Send, exc: httpx.HTTPError) -> None:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
            await self._upstream_error(send, "unavailable", 503, "service_unavailable",
                                       f"the {self.upstream.name} service is unavailable", exc)
        elif isinstance(exc, httpx.TimeoutException):
            await self._upstream_error(send, "timeout", 504, "upstream_timeout",
                                       f"the {self.upstream.name} service did not answer in time", exc)
        else:
            await self._upstream_error(send, "protocol", 502, "bad_gateway",
                                       f"the {self.upstream.name} service sent an invalid response", exc)

    async def _upstream_error(self, send: Send, kind: str, status: int, code: str, message: str,
                              exc: Exception) -> None:
        UPSTREAM_ERRORS.labels(self.upstream.name, kind).inc()
        log.warning("upstream %s: %s (%s)", self.upstream.name, kind, exc)
        await send_error(send, BioError(message, code=code, status_code=status,
                                        details={"service": self.upstream.name}))


class _Body:
    """The request body as an async stream, cut off (and flagged) past the size limit."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.too_large = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = 0
        while True:
            message = await self.receive()
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
                  app=None) -> Upstream:  # noqa: ANN001
    timeout = httpx.Timeout(connect=settings.proxy_connect_timeout_s, read=settings.proxy_read_timeout_s,
                            write=30.0, pool=settings.proxy_connect_timeout_s)
    if app is not None:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://embedded",
                                   timeout=timeout)
    else:
        limits = httpx.Limits(max_connections=settings.proxy_max_connections,
                              max_keepalive_connections=settings.proxy_max_connections)
        client = httpx.AsyncClient(base_url=base_url or "", timeout=timeout, limits=limits, http1=True)
    return Upstream(name=name, prefix=prefix, client=client, embedded=app is not None)
