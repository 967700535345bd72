"""Token and key attacks, rate limits, headers, and isolation between accounts."""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
from jose import jwt
from PIL import Image

from bio_gateway.security.tokens import AUDIENCE, create_access_token
from bio_testing.gateway import PASSWORD, bearer, login, register, user

SERVICE_CALL = "/api/v1/fingerprint/jobs"


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.indices((64, 64)).sum(0) % 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _code(r) -> str:
    return r.json()["error"]["code"]


def test_expired_token_refused(gw):
    account = register(gw, "a@example.org")
    s = gw.app.state.settings
    token, _ = create_access_token(account["id"], "user", secret=s.jwt_secret, issuer=s.jwt_issuer, ttl_s=-10)
    r = gw.get(SERVICE_CALL, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and _code(r) == "token_expired"
    assert r.headers["www-authenticate"] == "Bearer"


def test_bad_signature_refused(gw):
    account = register(gw, "a@example.org")
    s = gw.app.state.settings
    token, _ = create_access_token(account["id"], "admin", secret="x" * 48, issuer=s.jwt_issuer, ttl_s=300)
    for path in (SERVICE_CALL, "/api/v1/auth/me"):
        r = gw.get(path, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and _code(r) == "invalid_token"


def test_alg_none_refused(gw):
    account = register(gw, "a@example.org")
    now = int(time.time())
    claims = {"sub": account["id"], "role": "admin", "typ": "access", "iss": gw.app.state.settings.jwt_issuer,
              "aud": AUDIENCE, "iat": now, "exp": now + 600}
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    r = gw.get(SERVICE_CALL, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and _code(r) == "invalid_token"


def test_token_of_another_type_or_audience_refused(gw):
    account = register(gw, "a@example.org")
    s = gw.app.state.settings
    now = int(time.time())
    base = {"sub": account["id"], "role": "user", "iss": s.jwt_issuer, "aud": AUDIENCE, "iat": now, "exp": now + 600}
    for claims in ({**base, "typ": "refresh"}, {**base, "typ": "access", "aud": "someone-else"}):
        token = jwt.encode(claims, s.jwt_secret, algorithm="HS256")
        assert gw.get(SERVICE_CALL, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_refresh_token_is_not_an_access_token(gw):
    register(gw, "a@example.org")
    tokens = login(gw, "a@example.org")
    r = gw.get(SERVICE_CALL, headers={"Authorization": f"Bearer {tokens['refresh_token']}"})
    assert r.status_code == 401 and _code(r) == "invalid_token"


def test_missing_and_malformed_credentials(gw):
    r = gw.get(SERVICE_CALL)
    assert r.status_code == 401 and _code(r) == "not_authenticated"
    r = gw.get(SERVICE_CALL, headers={"Authorization": "Basic YTpi"})
    assert r.status_code == 401


def test_api_keys_create_use_list_revoke(gw):
    h = user(gw, "a@example.org")
    r = gw.post("/api/v1/auth/api-keys", json={"name": "ci"}, headers=h)
    assert r.status_code == 201
    created = r.json()
    key = created["key"]
    assert key.startswith("bio_")
    assert gw.get(SERVICE_CALL, headers={"X-API-Key": key}).status_code == 200
    assert gw.get("/api/v1/auth/me", headers={"X-API-Key": key}).status_code == 200
    listing = gw.get("/api/v1/auth/api-keys", headers=h).json()["items"]
    assert [k["id"] for k in listing] == [created["id"]] and "key" not in listing[0]
    # stored hashed: the secret appears nowhere in the table
    from sqlalchemy import select

    from bio_gateway.models import ApiKey

    with gw.app.state.accounts.sessions() as db:
        row = db.scalar(select(ApiKey))
        assert key not in (row.key_hash, row.prefix) and len(row.key_hash) == 64
    assert gw.delete(f"/api/v1/auth/api-keys/{created['id']}", headers=h).status_code == 200
    r = gw.get(SERVICE_CALL, headers={"X-API-Key": key})
    assert r.status_code == 401 and _code(r) == "invalid_api_key"


def test_wrong_api_keys_refused(gw):
    h = user(gw, "a@example.org")
    key = gw.post("/api/v1/auth/api-keys", json={"name": "k"}, headers=h).json()["key"]
    tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    for bad in (tampered, "bio_000000000000_nope", "garbage", key + "x"):
        r = gw.get(SERVICE_CALL, headers={"X-API-Key": bad})
        assert r.status_code == 401 and _code(r) == "invalid_api_key", bad


def test_api_key_of_other_account_cannot_be_revoked(gw):
    a = user(gw, "a@example.org")
    b = user(gw, "b@example.org")
    key_id = gw.post("/api/v1/auth/api-keys", json={"name": "k"}, headers=a).json()["id"]
    assert gw.delete(f"/api/v1/auth/api-keys/{key_id}", headers=b).status_code == 404


def test_login_brute_force_hits_the_limit(gateway_factory):
    gw = gateway_factory(rate_limit_login="5/minute")
    register(gw, "victim@example.org")
    codes = [gw.post("/api/v1/auth/login", data={"username": "victim@example.org", "password": f"guess{i}"}).status_code
             for i in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    r = gw.post("/api/v1/auth/login", data={"username": "victim@example.org", "password": PASSWORD})
    assert r.status_code == 429 and _code(r) == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60


def test_register_is_rate_limited_per_ip(gateway_factory):
    gw = gateway_factory(rate_limit_register="3/minute")
    codes = [gw.post("/api/v1/auth/register", json={"email": f"u{i}@example.org", "password": PASSWORD}).status_code
             for i in range(4)]
    assert codes == [201, 201, 201, 429]


def test_api_calls_are_rate_limited_per_account(gateway_factory):
    gw = gateway_factory(rate_limit_api="3/minute")
    a = user(gw, "a@example.org")
    b = user(gw, "b@example.org")
    assert [gw.get(SERVICE_CALL, headers=a).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert gw.get(SERVICE_CALL, headers=b).status_code == 200  # another account has its own budget


def test_client_cannot_smuggle_an_identity(gw):
    from bio_shared.identity import Identity, sign_identity

    a = register(gw, "a@example.org")
    b_headers = user(gw, "b@example.org")
    job = gw.post("/api/v1/fingerprint/jobs/normalize", files={"file": ("p.png", _png())},
                  headers=bearer(login(gw, "a@example.org"))).json()
    # B forges an identity of A (even with a valid signature, the gateway replaces it)
    forged = sign_identity(Identity(a["id"], "admin"), gw.app.state.settings.internal_secret)
    r = gw.get(f"/api/v1/fingerprint/jobs/{job['id']}", headers={**b_headers, "X-Bio-Identity": forged})
    assert r.status_code == 404


def test_accounts_are_isolated(gw):
    a = user(gw, "a@example.org")
    b = user(gw, "b@example.org")
    r = gw.post("/api/v1/fingerprint/jobs/normalize", files={"file": ("p.png", _png())}, headers=a)
    assert r.status_code == 202
    job_id = r.json()["id"]
    for _ in range(50):
        if gw.get(f"/api/v1/fingerprint/jobs/{job_id}", headers=a).json()["status"] == "succeeded":
            break
        time.sleep(0.05)
    assert gw.get(f"/api/v1/fingerprint/jobs/{job_id}/output", headers=a).status_code == 200
    assert gw.get(f"/api/v1/fingerprint/jobs/{job_id}", headers=b).status_code == 404
    assert gw.get(f"/api/v1/fingerprint/jobs/{job_id}/output", headers=b).status_code == 404
    assert gw.get("/api/v1/fingerprint/jobs", headers=b).json()["items"] == []
    assert [j["id"] for j in gw.get("/api/v1/fingerprint/jobs", headers=a).json()["items"]] == [job_id]


def test_security_headers_and_request_id(gw):
    r = gw.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-request-id"] == "trace-42"
    bad = gw.get("/healthz", headers={"X-Request-ID": "x" * 300})
    assert bad.headers["x-request-id"] != "x" * 300 and len(bad.headers["x-request-id"]) == 32
    docs_csp = gw.get("/docs").headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline'" in docs_csp and "http" not in docs_csp  # nothing from a CDN


def test_cors_only_for_configured_origins(gateway_factory):
    gw = gateway_factory(cors_origins=["https://app.example.org"])
    ok = gw.options("/api/v1/auth/me", headers={"Origin": "https://app.example.org",
                                                 "Access-Control-Request-Method": "GET"})
    assert ok.headers.get("access-control-allow-origin") == "https://app.example.org"
    bad = gw.options("/api/v1/auth/me", headers={"Origin": "https://evil.example",
                                                  "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in bad.headers


def test_metrics_count_auth_failures_and_rejections(gateway_factory):
    gw = gateway_factory(rate_limit_login="1/minute")
    gw.get(SERVICE_CALL, headers={"X-API-Key": "bio_000000000000_nope"})
    gw.post("/api/v1/auth/login", data={"username": "x@example.org", "password": "whatever1"})
    gw.post("/api/v1/auth/login", data={"username": "x@example.org", "password": "whatever1"})
    text = gw.get("/metrics").text
    assert 'bio_auth_failures_total{reason="invalid_api_key"}' in text
    assert 'bio_rate_limit_rejections_total{scope="login"}' in text
    assert 'bio_http_requests_total{method="POST",route="/api/v1/auth/login",service="gateway",status="429"}' in text
