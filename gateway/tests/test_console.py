"""The operator console's session and security, against the gateway alone (no browser; the browser
journeys are tests/test_console_browser.py): cookies, CSRF, redirects, token refresh, the media
allowlist, roles, and templates that a strict CSP can serve."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from bio_gateway.app import create_app
from bio_gateway.console.render import HERE
from bio_gateway.security.passwords import set_rounds_for_tests
from bio_gateway.settings import GatewaySettings
from bio_shared.db import migrate

ADMIN, PASSWORD = "admin@example.org", "correct horse battery"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    set_rounds_for_tests(4)
    settings = GatewaySettings(env="test", var_dir=tmp_path, log_json=False, database_url="", redis_url="",
                               services={}, admin_email=ADMIN, admin_password=PASSWORD,
                               rate_limit_login="1000/minute", max_upload_bytes=1024 * 1024)
    migrate("bio_gateway", settings.database_url)
    with TestClient(create_app(settings, services={}), base_url="http://testserver") as c:
        yield c


def csrf_of(html: str) -> str:
    return found(r'name="csrf" value="([^"]+)"', html)


def login(c: TestClient, email: str = ADMIN, password: str = PASSWORD, next_: str = "") -> httpx.Response:
    token = csrf_of(c.get("/console/login").text)
    return c.post("/console/login", data={"csrf": token, "email": email, "password": password, "next": next_},
                  follow_redirects=False)


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, pattern
    return match.group(1)


def cookie_headers(response: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def test_login_sets_httponly_strict_cookies_and_goes_back(client):
    r = client.get("/console/keys", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login?next=%2Fconsole%2Fkeys"
    r = login(client, next_="/console/keys")
    assert r.status_code == 303 and r.headers["location"] == "/console/keys"
    cookies = cookie_headers(r)
    for name in ("bio_console_access", "bio_console_refresh"):
        flags = cookies[name].lower()
        assert "httponly" in flags and "samesite=strict" in flags and "path=/console" in flags
        assert "secure" not in flags  # plain http here; see the https test
    page = client.get("/console/keys")
    assert page.status_code == 200 and ADMIN in page.text


def test_cookies_are_secure_over_https(tmp_path):
    set_rounds_for_tests(4)
    settings = GatewaySettings(env="test", var_dir=tmp_path, log_json=False, database_url="", redis_url="",
                               services={}, admin_email=ADMIN, admin_password=PASSWORD)
    migrate("bio_gateway", settings.database_url)
    with TestClient(create_app(settings, services={}), base_url="https://console.example") as c:
        r = login(c)
        assert r.status_code == 303
        assert all("secure" in v.lower() for v in cookie_headers(r).values())


def test_wrong_password_and_posts_without_csrf_are_refused(client):
    r = login(client, password="not the password")
    assert r.status_code == 401 and "Wrong e-mail or password" in r.text
    assert "bio_console_access" not in cookie_headers(r)
    r = client.post("/console/login", data={"email": ADMIN, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403 and "bio_console_access" not in cookie_headers(r)
    assert login(client).status_code == 303
    for forged in ({"name": "forged"}, {"name": "forged", "csrf": "0" * 64}):
        r = client.post("/console/keys", data=forged, follow_redirects=False)
        assert r.status_code == 403
    keys = client.get("/api/v1/auth/api-keys",
                      headers={"Authorization": f"Bearer {client.cookies['bio_console_access']}"}).json()
    assert keys["items"] == []  # nothing was created


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/console@evil.example",
                                    "/elsewhere", "/console/\\evil.example"])
def test_login_never_redirects_out_of_the_console(client, target):
    r = login(client, next_=target)
    assert r.status_code == 303 and r.headers["location"] == "/console/events"


def test_an_expired_access_token_is_refreshed_with_the_refresh_token(client):
    login(client)
    old_refresh = client.cookies["bio_console_refresh"]
    client.cookies.set("bio_console_access", "expired.or.forged", path="/console")
    r = client.get("/console/keys")
    assert r.status_code == 200 and ADMIN in r.text
    new = cookie_headers(r)
    assert "bio_console_access" in new and "bio_console_refresh" in new
    assert client.cookies["bio_console_refresh"] != old_refresh  # rotated by the API
    # a lost refresh token ends the session: back to the login page, cookies cleared
    client.cookies.set("bio_console_access", "expired.or.forged", path="/console")
    client.cookies.set("bio_console_refresh", "rt_spent", path="/console")
    r = client.get("/console/keys", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


def test_api_key_shown_once_works_and_is_revoked(client):
    login(client)
    token = csrf_of(client.get("/console/keys").text)
    r = client.post("/console/keys", data={"csrf": token, "name": "door scanner"})
    key = found(r'id="new-key"[^>]*value="([^"]+)"', r.text)
    assert client.get("/api/v1/auth/me", headers={"X-API-Key": key}).status_code == 200
    page = client.get("/console/keys").text
    assert key not in page
    key_id = found(r'action="/console/keys/([^/]+)/revoke"', page)
    r = client.post(f"/console/keys/{key_id}/revoke", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    assert "Key revoked" in client.get("/console/keys").text  # the flash, once
    assert "Key revoked" not in client.get("/console/keys").text
    assert client.get("/api/v1/auth/me", headers={"X-API-Key": key}).status_code == 401


def test_admin_pages_follow_the_api_roles_and_audit_link_follows_the_route(client):
    assert client.post("/api/v1/auth/register", json={"email": "op@example.org", "password": PASSWORD}).status_code == 201
    login(client, "op@example.org")
    page = client.get("/console/keys").text
    assert "/console/admin/accounts" not in page
    r = client.get("/console/admin/accounts")
    assert r.status_code == 403 and "admin role required" in r.text
    client.cookies.clear()
    login(client)
    page = client.get("/console/admin/accounts")
    assert page.status_code == 200 and "op@example.org" in page.text
    has_audit = "/api/v1/audit" in client.get("/openapi.json").json()["paths"]
    assert ('href="/console/admin/audit"' in page.text) == has_audit
    audit = client.get("/console/admin/audit")
    assert audit.status_code == (200 if has_audit else 404)
    if has_audit:
        assert "<tbody><tr>" in audit.text  # the logins above are in the trail


def test_media_passes_only_listed_image_routes(client):
    login(client)
    for path in ("api/v1/auth/me", "api/v1/admin/accounts", "api/v1/auth/api-keys", "api/v1/faces/events",
                 "api/v1/faces/events/e1/unknowns/../../../auth/me"):
        r = client.get(f"/console/media/{path}")
        assert r.status_code == 404 and ADMIN not in r.text, path


def test_uploads_over_the_limit_are_refused_before_parsing(client):
    login(client)
    token = csrf_of(client.get("/console/keys").text)
    big = b"\0" * (3 * 1024 * 1024)  # the limit here is 2 x 1 MiB + form overhead
    r = client.post("/console/keys", data={"csrf": token}, files={"file": ("x.bin", big)})
    assert r.status_code == 413


def test_pages_set_a_strict_csp_and_templates_need_no_inline_code(client):
    r = client.get("/console/login")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp
    for path in ("htmx.min.js", "console.js", "console.css", "htmx.LICENSE.txt"):
        assert client.get(f"/console/static/{path}").status_code == 200
    for template in (HERE / "templates").glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name  # no inline script
        assert not re.search(r"\son[a-z]+=", text), template.name  # no inline event handler
        assert not re.search(r"\sstyle=", text), template.name  # no inline style (style-src 'self')


def test_concurrent_requests_with_an_expired_token_refresh_once(client):
    """A page and its images arrive together: they must not each spend the refresh token (the API
    would take the second use for theft and revoke the login)."""
    login(client)
    client.cookies.set("bio_console_access", "expired.or.forged", path="/console")
    cookies = {"bio_console_access": "expired.or.forged", "bio_console_refresh": client.cookies["bio_console_refresh"]}

    async def together() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", cookies=cookies) as c:
            return list(await asyncio.gather(*(c.get("/console/keys") for _ in range(4))))

    answers = asyncio.run(together())
    assert [r.status_code for r in answers] == [200] * 4
    new_pairs = {r.cookies.get("bio_console_refresh") for r in answers}
    assert len(new_pairs) == 1 and None not in new_pairs  # one rotation, shared
    # the login is still valid: the rotated refresh token works
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": new_pairs.pop()})
    assert r.status_code == 200
