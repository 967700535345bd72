"""Issue 12 at the gateway: tokens must carry every claim, API keys cannot mint keys, disabling an
account ends every credential it had, logins are limited per account, files are private."""

from __future__ import annotations

import io
import os
import stat
import time

import pytest
from jose import jwt
from PIL import Image

from bio_gateway.security.tokens import AUDIENCE
from bio_testing.gateway import PASSWORD, bearer, login, make_admin, register, user

SERVICE_CALL = "/api/v1/fingerprint/jobs"


def _claims(gw, account_id: str) -> dict:
    now = int(time.time())
    return {"sub": account_id, "role": "user", "typ": "access", "iss": gw.app.state.settings.jwt_issuer,
            "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 600, "gen": 0}


@pytest.mark.parametrize("missing", ["exp", "aud", "iss", "sub", "iat"])
def test_access_token_without_a_required_claim_is_refused(gw, missing):
    account = register(gw, "a@example.org")
    claims = _claims(gw, account["id"])
    complete = jwt.encode(claims, gw.app.state.settings.jwt_secret, algorithm="HS256")
    assert gw.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {complete}"}).status_code == 200
    del claims[missing]
    token = jwt.encode(claims, gw.app.state.settings.jwt_secret, algorithm="HS256")
    for path in ("/api/v1/auth/me", SERVICE_CALL, "/api/v1/auth/api-keys"):
        r = gw.get(path, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (missing, path, r.text)
        assert set(r.json()) == {"error"} and r.json()["error"]["code"] == "invalid_token"


@pytest.mark.parametrize("bad", [{"exp": "soon"}, {"iat": "x"}, {"sub": 12}, {"gen": "0"}, {"exp": 2**70}])
def test_access_token_with_mistyped_claims_is_refused_not_500(gw, bad):
    account = register(gw, "a@example.org")
    claims = {**_claims(gw, account["id"]), **bad}
    token = jwt.encode(claims, gw.app.state.settings.jwt_secret, algorithm="HS256")
    r = gw.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (200, 401), r.text  # exp=2**70 is merely far away
    if "exp" not in bad:
        assert r.status_code == 401


def test_an_api_key_cannot_create_api_keys(gw):
    h = user(gw, "a@example.org")
    key = gw.post("/api/v1/auth/api-keys", json={"name": "ci"}, headers=h).json()["key"]
    r = gw.post("/api/v1/auth/api-keys", json={"name": "minted"}, headers={"X-API-Key": key})
    assert r.status_code == 403 and r.json()["error"]["code"] == "password_login_required"
    assert [k["name"] for k in gw.get("/api/v1/auth/api-keys", headers=h).json()["items"]] == ["ci"]
    assert gw.get("/api/v1/auth/api-keys", headers={"X-API-Key": key}).status_code == 200  # reading is fine


def test_enabling_a_disabled_account_brings_back_no_old_credential(gw):
    admin = make_admin(gw)
    alice = register(gw, "alice@example.org")
    tokens = login(gw, "alice@example.org")
    key = gw.post("/api/v1/auth/api-keys", json={"name": "k"}, headers=bearer(tokens)).json()["key"]
    assert gw.get(SERVICE_CALL, headers={"X-API-Key": key}).status_code == 200

    assert gw.patch(f"/api/v1/admin/accounts/{alice['id']}", json={"is_active": False}, headers=admin).status_code == 200
    assert gw.patch(f"/api/v1/admin/accounts/{alice['id']}", json={"is_active": True}, headers=admin).status_code == 200

    for path in (SERVICE_CALL, "/api/v1/auth/me"):
        r = gw.get(path, headers=bearer(tokens))
        assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked", r.text
        r = gw.get(path, headers={"X-API-Key": key})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", r.text
    r = gw.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401
    listed = gw.get("/api/v1/auth/api-keys", headers=bearer(login(gw, "alice@example.org"))).json()["items"]
    assert listed[0]["revoked_at"] is not None
    # a new login works as before
    assert gw.get(SERVICE_CALL, headers=bearer(login(gw, "alice@example.org"))).status_code == 200


def test_login_attempts_are_limited_per_account_across_ips(gateway_factory):
    gw = gateway_factory(rate_limit_login="100/minute", rate_limit_login_account="3/minute",
                         trust_forwarded_for=True)
    register(gw, "victim@example.org")
    register(gw, "other@example.org")
    codes = [gw.post("/api/v1/auth/login", data={"username": "Victim@Example.org ", "password": f"guess{i}"},
                     headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    r = gw.post("/api/v1/auth/login", data={"username": "victim@example.org", "password": PASSWORD},
                headers={"X-Forwarded-For": "10.9.9.9"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    ok = gw.post("/api/v1/auth/login", data={"username": "other@example.org", "password": PASSWORD})
    assert ok.status_code == 200  # another account keeps its own budget


def test_database_and_blobs_are_private_whatever_the_umask(gateway_factory):
    old = os.umask(0o000)  # the loosest umask: nothing may depend on it
    try:
        gw = gateway_factory()
        h = user(gw, "a@example.org")
        buf = io.BytesIO()
        Image.new("L", (64, 64), 128).save(buf, format="PNG")
        job = gw.post("/api/v1/fingerprint/jobs/normalize", files={"file": ("a.png", buf.getvalue())}, headers=h)
        assert job.status_code == 202, job.text
        for _ in range(100):
            if gw.get(job.json()["status_url"], headers=h).json()["status"] == "succeeded":
                break
            time.sleep(0.05)
    finally:
        os.umask(old)
    settings = gw.app.state.settings
    db_file = settings.var_dir / "bio.db"
    assert stat.S_IMODE(db_file.stat().st_mode) == 0o600
    for suffix in ("-wal", "-shm"):
        side = db_file.with_name(db_file.name + suffix)
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0, side
    blobs = settings.var_dir / "blobs"
    files = [p for p in blobs.rglob("*") if p.is_file()]
    assert files, "the job stored no blob"
    for folder in (blobs, *[p for p in blobs.rglob("*") if p.is_dir()]):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


@pytest.mark.parametrize("name", ["a\x00b", "\u202eevil", "   ", "tab\there"])
def test_api_key_names_with_control_or_bidi_characters_are_refused(gw, name):
    h = user(gw, "a@example.org")
    r = gw.post("/api/v1/auth/api-keys", json={"name": name}, headers=h)
    assert r.status_code == 422, r.text
    assert gw.get("/api/v1/auth/api-keys", headers=h).json()["items"] == []


def test_every_gateway_operation_documents_its_errors_with_the_one_schema(gw):
    spec = gw.get("/openapi.json").json()
    ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            assert "429" in responses, (method, path)
            for status, entry in responses.items():
                if status.startswith(("4", "5")):
                    assert entry["content"]["application/json"]["schema"] == ref, (method, path, status)
            if op.get("requestBody"):
                assert {"400", "413", "422"} <= set(responses), (method, path)
            if "/admin/" in path:
                assert "403" in responses, (method, path)
            if path.startswith(("/api/v1/fingerprint", "/api/v1/faces", "/api/v1/verify", "/api/v1/contours")):
                assert {"401", "502", "503", "504"} <= set(responses), (method, path)
    assert "409" in spec["paths"]["/api/v1/auth/register"]["post"]["responses"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
