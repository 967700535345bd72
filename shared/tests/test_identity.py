"""bio_shared.identity: the signed, short-lived identity the gateway forwards to services."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from jose import jwt

from bio_shared.errors import Forbidden, Unauthorized
from bio_shared.identity import (
    IDENTITY_HEADER,
    Identity,
    identity_dependency,
    require_admin,
    sign_identity,
    verify_identity,
)
from bio_shared.web.errors import install_error_handlers
from bio_testing.shared import identity_headers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(claims: dict, secret: str, header: dict | None = None) -> str:
    """A JWT made by hand, so tests do not depend on the library under test to forge odd tokens."""
    head = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def good_claims(**over) -> dict:
    now = int(time.time())
    claims = {"sub": "acct-1", "role": "user", "rid": "req-1", "aud": "bio-services", "iss": "bio-gateway",
              "iat": now, "exp": now + 60, "jti": "j1"}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def assert_invalid(token: str, secret: str) -> None:
    with pytest.raises(Unauthorized) as info:
        verify_identity(token, secret)
    assert info.value.status_code == 401
    assert info.value.code == "invalid_identity"
    assert info.value.headers == {"WWW-Authenticate": "Bearer"}


def test_round_trip(secret: str) -> None:
    token = sign_identity(Identity("acct-1", "admin", "rid-9"), secret, ttl_s=30)
    ident = verify_identity(token, secret)
    assert ident == Identity(account_id="acct-1", role="admin", request_id="rid-9")
    assert ident.is_admin
    claims = jwt.get_unverified_claims(token)
    assert claims["aud"] == "bio-services" and claims["iss"] == "bio-gateway"
    assert claims["exp"] - claims["iat"] == 30
    assert len(claims["jti"]) == 32
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_tokens_are_unique(secret: str) -> None:
    ident = Identity("a", "user")
    assert sign_identity(ident, secret) != sign_identity(ident, secret)  # jti differs


def test_hand_made_token_accepted(secret: str) -> None:
    assert verify_identity(hs256_token(good_claims(), secret), secret) == Identity("acct-1", "user", "req-1")


def test_user_is_not_admin(secret: str) -> None:
    ident = verify_identity(sign_identity(Identity("a", "user"), secret), secret)
    assert not ident.is_admin
    with pytest.raises(Forbidden) as info:
        require_admin(ident)
    assert info.value.status_code == 403
    admin = Identity("b", "admin")
    assert require_admin(admin) is admin


def test_expired_token(secret: str) -> None:
    assert_invalid(sign_identity(Identity("a", "user"), secret, ttl_s=-5), secret)
    assert_invalid(hs256_token(good_claims(exp=int(time.time()) - 1), secret), secret)


def test_wrong_secret(secret: str) -> None:
    assert_invalid(sign_identity(Identity("a", "user"), "another-secret-" + "y" * 32), secret)


def test_tampered_payload(secret: str) -> None:
    token = sign_identity(Identity("a", "user"), secret)
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["role"] = "admin"
    forged = f"{head}.{b64url(json.dumps(claims).encode())}.{sig}"
    assert_invalid(forged, secret)


def test_alg_none(secret: str) -> None:
    head = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = b64url(json.dumps(good_claims(role="admin")).encode())
    for token in (f"{head}.{body}.", f"{head}.{body}"):
        assert_invalid(token, secret)


def test_other_algorithm_refused(secret: str) -> None:
    token = jwt.encode(good_claims(), secret, algorithm="HS512")
    assert_invalid(token, secret)


def test_wrong_audience(secret: str) -> None:
    assert_invalid(hs256_token(good_claims(aud="bio-gateway-users"), secret), secret)
    assert_invalid(hs256_token(good_claims(aud=["somebody-else"]), secret), secret)


def test_wrong_issuer(secret: str) -> None:
    assert_invalid(hs256_token(good_claims(iss="evil"), secret), secret)
    claims = good_claims()
    del claims["iss"]
    assert_invalid(hs256_token(claims, secret), secret)


@pytest.mark.parametrize("role", ["superuser", "", "ADMIN", None, 1, ["admin"]])
def test_bad_roles(secret: str, role) -> None:
    claims = good_claims()
    claims["role"] = role
    assert_invalid(hs256_token(claims, secret), secret)


def test_missing_subject(secret: str) -> None:
    claims = good_claims()
    del claims["sub"]
    assert_invalid(hs256_token(claims, secret), secret)
    assert_invalid(hs256_token(good_claims(sub=""), secret), secret)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "....", "e30.e30.", "Bearer x.y.z"])
def test_garbage_tokens(secret: str, token: str) -> None:
    assert_invalid(token, secret)
def test_token_without_expiry_refused(secret: str) -> None:
    claims = good_claims()
    del claims["exp"]
    assert_invalid(hs256_token(claims, secret), secret)
def test_token_without_audience_refused(secret: str) -> None:
    claims = good_claims()
    del claims["aud"]
    assert_invalid(hs256_token(claims, secret), secret)


# -- the FastAPI dependency ----------------------------------------------------------------------------------


@pytest.fixture
def client(secret: str) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    require_identity = identity_dependency(lambda: secret)

    @app.get("/me")
    def me(request: Request, ident: Identity = Depends(require_identity)) -> dict:
        assert request.state.identity == ident
        return {"account": ident.account_id, "role": ident.role, "rid": ident.request_id}

    @app.get("/admin")
    def admin(ident: Identity = Depends(require_identity)) -> dict:
        require_admin(ident)
        return {"ok": True}

    return TestClient(app)


def test_dependency_missing_identity(client: TestClient) -> None:
    r = client.get("/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_identity"
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.get("/me", headers={IDENTITY_HEADER: ""})
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_identity"


def test_dependency_invalid_identity(client: TestClient, secret: str) -> None:
    for token in ("nonsense", sign_identity(Identity("a", "user"), "wrong-" + secret),
                  sign_identity(Identity("a", "user"), secret, ttl_s=-1)):
        r = client.get("/me", headers={IDENTITY_HEADER: token})
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_identity"


def test_dependency_accepts_and_exposes_identity(client: TestClient, secret: str) -> None:
    r = client.get("/me", headers=identity_headers(secret, "acct-7", "user"))
    assert r.status_code == 200
    assert r.json() == {"account": "acct-7", "role": "user", "rid": None}
    token = sign_identity(Identity("acct-8", "admin", "r-1"), secret)
    r = client.get("/me", headers={IDENTITY_HEADER.lower(): token})  # header names are case-insensitive
    assert r.json() == {"account": "acct-8", "role": "admin", "rid": "r-1"}


def test_dependency_admin_route(client: TestClient, secret: str) -> None:
    assert client.get("/admin", headers=identity_headers(secret, role="user")).status_code == 403
    assert client.get("/admin", headers=identity_headers(secret, role="admin")).status_code == 200


def test_secret_read_at_request_time() -> None:
    current = {"secret": "first-secret-" + "a" * 32}
    app = FastAPI()
    install_error_handlers(app)
    dep = identity_dependency(lambda: current["secret"])

    @app.get("/me")
    def me(ident: Identity = Depends(dep)) -> dict:
        return {"a": ident.account_id}

    c = TestClient(app)
    token = sign_identity(Identity("a", "user"), current["secret"])
    assert c.get("/me", headers={IDENTITY_HEADER: token}).status_code == 200
    current["secret"] = "rotated-secret-" + "b" * 32
    assert c.get("/me", headers={IDENTITY_HEADER: token}).status_code == 401


def test_testing_identity_headers(secret: str) -> None:
    headers = identity_headers(secret, "acct-z", "admin", ttl_s=5)
    assert list(headers) == [IDENTITY_HEADER]
    assert verify_identity(headers[IDENTITY_HEADER], secret) == Identity("acct-z", "admin")
