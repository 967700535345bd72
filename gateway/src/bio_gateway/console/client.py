"""The console's only way to the platform: the public API, called in-process through the gateway app.

Each console request gets an ``Api`` bound to the browser user's tokens. Requests go through the whole
gateway stack (authentication, rate limits, identity signing, proxy), exactly as an API client's would.
An expired access token is refreshed once with the refresh token; the new pair is kept on the ``Api``
so the console route can hand it back to the browser in its cookies.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request

BASE_URL = "http://gateway.console"
TIMEOUT_S = 180.0  # above the gateway's own upstream read timeout: the gateway answers 504 first


@dataclass
class Tokens:
    access: str
    refresh: str


# A page and its images arrive together; when the access token has expired they would each present
# the same refresh token, and the API treats a spent refresh token as theft (it revokes the login).
# So one refresh per token runs at a time in this process, and its new pair is shared for a while.
SHARED_REFRESH_S = 60.0
_refresh_locks: dict[str, asyncio.Lock] = {}
_refreshed: dict[str, tuple[float, Tokens]] = {}


def _forget_old_refreshes(now: float) -> None:
    for key in [k for k, (at, _) in _refreshed.items() if now - at > SHARED_REFRESH_S]:
        _refreshed.pop(key, None)
        lock = _refresh_locks.get(key)
        if lock is not None and not lock.locked():
            _refresh_locks.pop(key, None)


class ApiError(Exception):
    """A non-2xx answer of the public API, with the platform's error body."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    @classmethod
    def from_response(cls, r: httpx.Response) -> ApiError:
        try:
            err = r.json().get("error") or {}
        except (ValueError, AttributeError):
            err = {}
        message = err.get("message") or r.reason_phrase or f"HTTP {r.status_code}"
        return cls(r.status_code, str(err.get("code") or f"http_{r.status_code}"), str(message), err.get("details"))


class NotLoggedIn(Exception):
    """No usable tokens: the browser is sent to the login page."""


class Api:
    def __init__(self, request: Request, tokens: Tokens | None) -> None:
        self.tokens = tokens
        self.refreshed: Tokens | None = None  # set when a refresh rotated the pair
        self.logged_out = False
        client_host = request.client.host if request.client else "127.0.0.1"
        client_port = request.client.port if request.client else 0
        # The browser's address, so per-IP login limits apply to the person, not to the console.
        transport = httpx.ASGITransport(app=request.app, client=(client_host, client_port))
        forwarded = {k: v for k, v in request.headers.items() if k in ("x-forwarded-for", "x-request-id")}
        self._client = httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=TIMEOUT_S,
                                         headers=forwarded)

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- raw calls -------------------------------------------------------------------------------

    async def send(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> httpx.Response:
        if not auth:
            return await self._client.request(method, path, **kwargs)
        if self.tokens is None:
            raise NotLoggedIn()
        r = await self._client.request(method, path, headers=self._bearer(), **kwargs)
        if r.status_code == 401 and await self._refresh():
            r = await self._client.request(method, path, headers=self._bearer(), **kwargs)
        if r.status_code == 401:
            raise NotLoggedIn()
        return r

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON answer of a call; ApiError on any non-2xx status."""
        r = await self.send(method, path, **kwargs)
        if r.status_code >= 400:
            raise ApiError.from_response(r)
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    async def get(self, path: str, **params: Any) -> Any:
        return await self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    async def post(self, path: str, **kwargs: Any) -> Any:
        return await self.call("POST", path, **kwargs)

    async def patch(self, path: str, body: dict[str, Any]) -> Any:
        return await self.call("PATCH", path, json=body)

    async def delete(self, path: str) -> Any:
        return await self.call("DELETE", path)

    # --- tokens ----------------------------------------------------------------------------------

    def _bearer(self) -> dict[str, str]:
        assert self.tokens is not None
        return {"Authorization": f"Bearer {self.tokens.access}"}

    async def _refresh(self) -> bool:
        assert self.tokens is not None
        key = hashlib.sha256(self.tokens.refresh.encode()).hexdigest()
        lock = _refresh_locks.setdefault(key, asyncio.Lock())
        async with lock:
            now = time.monotonic()
            done = _refreshed.get(key)
            if done is not None and now - done[0] <= SHARED_REFRESH_S:
                self.tokens = self.refreshed = done[1]
                return True
            r = await self._client.post("/api/v1/auth/refresh", json={"refresh_token": self.tokens.refresh})
            failed = r.status_code != 200
            if not failed:
                body = r.json()
                self.tokens = self.refreshed = Tokens(body["access_token"], body["refresh_token"])
                _refreshed[key] = (now, self.tokens)
        if failed:
            _refresh_locks.pop(key, None)
        _forget_old_refreshes(now)
        return not failed

    async def login(self, email: str, password: str) -> Tokens:
        r = await self._client.post("/api/v1/auth/login", data={"username": email, "password": password})
        if r.status_code != 200:
            raise ApiError.from_response(r)
        body = r.json()
        self.tokens = self.refreshed = Tokens(body["access_token"], body["refresh_token"])
        return self.tokens

    async def logout(self) -> None:
        if self.tokens is not None:
            await self._client.post("/api/v1/auth/logout", json={"refresh_token": self.tokens.refresh})
        self.tokens, self.logged_out = None, True
