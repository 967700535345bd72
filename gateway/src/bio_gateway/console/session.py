"""Browser session of the console: tokens in HttpOnly cookies, CSRF tokens, flash messages, and the
route class that applies them to every console response.

The access and refresh tokens come from the public login endpoint and live only in cookies that
scripts cannot read (HttpOnly), that other sites' requests never carry (SameSite=Strict) and that
travel only over https when the console is served over https. Form posts carry a CSRF token: an HMAC
of a random per-browser nonce (its own cookie) under a key derived from the gateway's JWT secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from bio_gateway.console.client import Api, ApiError, NotLoggedIn, Tokens

PREFIX = "/console"
ACCESS, REFRESH, CSRF, FLASH = "bio_console_access", "bio_console_refresh", "bio_console_csrf", "bio_console_flash"
FORM_OVERHEAD = 256 * 1024  # multipart boundaries and the other fields of an upload form
MAX_FILES = 20

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


class CsrfRejected(Exception):
    pass


class BodyTooLarge(Exception):
    pass


def _key(request: Request, purpose: bytes) -> bytes:
    secret = request.app.state.settings.jwt_secret.encode()
    return hmac.new(secret, b"bio-console:" + purpose, hashlib.sha256).digest()


def _sign(request: Request, purpose: bytes, value: str) -> str:
    return hmac.new(_key(request, purpose), value.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    return _sign(request, b"csrf", request.state.csrf_nonce)


async def _check_csrf(request: Request) -> None:
    form = await request.form(max_files=MAX_FILES, max_fields=200)
    sent = form.get("csrf") or request.headers.get("x-csrf-token") or ""
    nonce = request.cookies.get(CSRF, "")
    if not nonce or not isinstance(sent, str) or not hmac.compare_digest(sent, _sign(request, b"csrf", nonce)):
        raise CsrfRejected()


def _check_size(request: Request) -> None:
    limit = request.app.state.settings.max_upload_bytes * 2 + FORM_OVERHEAD  # verify: two photos
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > limit:
        raise BodyTooLarge(limit)


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A one-time message shown on the next page (after a post-redirect-get)."""
    request.state.flash_out = {"text": text, "kind": kind}


def read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH)
    if not raw or "." not in raw:
        return None
    request.state.flash_read = True
    body, sig = raw.rsplit(".", 1)
    if not hmac.compare_digest(sig, _sign(request, b"flash", body)):
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(body.encode()))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _tokens(request: Request) -> Tokens | None:
    access, refresh = request.cookies.get(ACCESS), request.cookies.get(REFRESH)
    return Tokens(access, refresh) if access and refresh else None


def get_api(request: Request) -> Api:
    api = Api(request, _tokens(request))
    request.state.console_api = api
    return api


ApiDep = Annotated[Api, Depends(get_api)]


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _secure(request: Request) -> bool:
    if request.url.scheme == "https":
        return True
    trusted = request.app.state.settings.trust_forwarded_for
    return trusted and request.headers.get("x-forwarded-proto", "").lower() == "https"


def _set(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PREFIX, httponly=True, samesite="strict",
                        secure=_secure(request))


def _apply_cookies(request: Request, response: Response) -> None:
    settings = request.app.state.settings
    api: Api | None = getattr(request.state, "console_api", None)
    if api is not None and api.refreshed is not None:
        for name, value in ((ACCESS, api.refreshed.access), (REFRESH, api.refreshed.refresh)):
            _set(response, request, name, value, settings.refresh_token_ttl_s)
    if api is not None and api.logged_out:
        for name in (ACCESS, REFRESH):
            response.delete_cookie(name, path=PREFIX)
    if request.cookies.get(CSRF) != request.state.csrf_nonce:
        _set(response, request, CSRF, request.state.csrf_nonce, None)
    out = getattr(request.state, "flash_out", None)
    if out is not None:
        body = base64.urlsafe_b64encode(json.dumps(out).encode()).decode()
        _set(response, request, FLASH, f"{body}.{_sign(request, b'flash', body)}", 300)
    elif getattr(request.state, "flash_read", False):
        response.delete_cookie(FLASH, path=PREFIX)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path if request.method == "GET" else PREFIX
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return redirect(f"{PREFIX}/login?next={quote(target, safe='')}")


async def _error_page(request: Request, status: int, title: str, message: str, **extra: Any) -> Response:
    from bio_gateway.console.render import error_page  # render imports this module

    return await error_page(request, status, title, message, **extra)


class ConsoleRoute(APIRoute):
    """Every console route: size and CSRF checks before a post is parsed, cookies and the page CSP
    after; a lost login sends the browser to the login page, an API error renders an error page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            request.state.csrf_nonce = request.cookies.get(CSRF) or secrets.token_urlsafe(24)
            try:
                if request.method == "POST":
                    _check_size(request)
                    await _check_csrf(request)
                response = await handler(request)
            except NotLoggedIn:
                response = login_redirect(request)
                for name in (ACCESS, REFRESH):
                    response.delete_cookie(name, path=PREFIX)
            except CsrfRejected:
                response = await _error_page(request, 403, "Form expired",
                                             "The form was not sent by this console session. Reload the page "
                                             "and try again.")
            except BodyTooLarge as exc:
                response = await _error_page(request, 413, "Upload too large",
                                             f"The upload is larger than {exc.args[0] // (1024 * 1024)} MiB.")
            except ApiError as exc:
                response = await _error_page(request, exc.status, "The platform refused the request",
                                             exc.message, code=exc.code)
            finally:
                api: Api | None = getattr(request.state, "console_api", None)
                if api is not None:
                    await api.aclose()
            _apply_cookies(request, response)
            response.headers.setdefault("content-security-policy", PAGE_CSP)
            return response

        return console_handler
