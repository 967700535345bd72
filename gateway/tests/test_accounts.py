"""Registration, login, refresh rotation, logout, me, admin."""

from __future__ import annotations

from bio_testing.gateway import PASSWORD, bearer, login, make_admin, register, user


def test_register_login_me(gw):
    account = register(gw, "Alice@Example.org")
    assert account["email"] == "alice@example.org" and account["role"] == "user"
    tokens = login(gw, "alice@example.org")
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0
    me = gw.get("/api/v1/auth/me", headers=bearer(tokens))
    assert me.status_code == 200 and me.json()["id"] == account["id"]


def test_register_rejects_duplicates_weak_and_bad_input(gw):
    register(gw, "bob@example.org")
    r = gw.post("/api/v1/auth/register", json={"email": "BOB@example.org", "password": PASSWORD})
    assert r.status_code == 409 and r.json()["error"]["code"] == "email_taken"
    r = gw.post("/api/v1/auth/register", json={"email": "c@example.org", "password": "short"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "weak_password"
    r = gw.post("/api/v1/auth/register", json={"email": "not-an-email", "password": PASSWORD})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = gw.post("/api/v1/auth/register", content=b'{"email": "x@y.org", "password":',
                headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json"


def test_registration_can_be_disabled(gateway_factory):
    gw = gateway_factory(allow_registration=False)
    r = gw.post("/api/v1/auth/register", json={"email": "a@example.org", "password": PASSWORD})
    assert r.status_code == 403 and r.json()["error"]["code"] == "registration_disabled"


def test_long_passwords_are_not_truncated(gw):
    base = "p" * 80  # longer than bcrypt's 72-byte input
    register(gw, "long@example.org", base + "A")
    assert gw.post("/api/v1/auth/login", data={"username": "long@example.org", "password": base + "B"}).status_code == 401
    assert gw.post("/api/v1/auth/login", data={"username": "long@example.org", "password": base + "A"}).status_code == 200
    r = gw.post("/api/v1/auth/register", json={"email": "huge@example.org", "password": "x" * 2000})
    assert r.status_code == 422 and r.json()["error"]["code"] == "password_too_long"


def test_wrong_password_and_unknown_user_look_the_same(gw):
    register(gw, "carol@example.org")
    a = gw.post("/api/v1/auth/login", data={"username": "carol@example.org", "password": "wrong-password"})
    b = gw.post("/api/v1/auth/login", data={"username": "nobody@example.org", "password": "wrong-password"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()


def test_refresh_rotates_and_reuse_revokes_the_family(gw):
    register(gw, "dave@example.org")
    first = login(gw, "dave@example.org")
    r = gw.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert gw.get("/api/v1/auth/me", headers=bearer(second)).status_code == 200
    # the spent token is presented again: theft assumed, the whole login is revoked
    r = gw.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "refresh_token_reused"
    r = gw.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 401
    # another login of the same account is a different family and keeps working
    other = login(gw, "dave@example.org")
    assert gw.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code == 200


def test_logout_revokes_refresh_token(gw):
    register(gw, "erin@example.org")
    tokens = login(gw, "erin@example.org")
    assert gw.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}).status_code == 204
    r = gw.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_refresh_token"


def test_admin_lists_disables_and_deletes(gw):
    admin = make_admin(gw)
    alice = register(gw, "alice@example.org")
    alice_tokens = login(gw, "alice@example.org")
    alice_h = bearer(alice_tokens)
    assert gw.get("/api/v1/admin/accounts", headers=alice_h).status_code == 403
    listing = gw.get("/api/v1/admin/accounts", headers=admin).json()
    assert listing["total"] == 2 and {a["email"] for a in listing["items"]} == {"admin@example.org", "alice@example.org"}

    r = gw.patch(f"/api/v1/admin/accounts/{alice['id']}", json={"is_active": False}, headers=admin)
    assert r.status_code == 200 and r.json()["is_active"] is False
    # disabled: the existing access token, a new login and the refresh token all fail
    r = gw.get("/api/v1/auth/me", headers=alice_h)
    assert r.status_code == 401 and r.json()["error"]["code"] == "account_disabled"
    r = gw.get("/api/v1/fingerprint/jobs", headers=alice_h)
    assert r.status_code == 401 and r.json()["error"]["code"] == "account_disabled"
    r = gw.post("/api/v1/auth/login", data={"username": "alice@example.org", "password": PASSWORD})
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_disabled"
    assert gw.post("/api/v1/auth/refresh", json={"refresh_token": alice_tokens["refresh_token"]}).status_code == 401

    admin_id = gw.get("/api/v1/auth/me", headers=admin).json()["id"]
    r = gw.patch(f"/api/v1/admin/accounts/{admin_id}", json={"is_active": False}, headers=admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == "self_lockout"

    assert gw.delete(f"/api/v1/admin/accounts/{alice['id']}", headers=admin).status_code == 204
    assert gw.delete(f"/api/v1/admin/accounts/{alice['id']}", headers=admin).status_code == 404
    assert gw.get("/api/v1/admin/accounts", headers=admin).json()["total"] == 1


def test_admin_role_change_applies_to_live_tokens(gw):
    admin = make_admin(gw)
    bob = register(gw, "bob@example.org")
    bob_h = bearer(login(gw, "bob@example.org"))
    assert gw.get("/api/v1/admin/accounts", headers=bob_h).status_code == 403
    gw.patch(f"/api/v1/admin/accounts/{bob['id']}", json={"role": "admin"}, headers=admin)
    assert gw.get("/api/v1/admin/accounts", headers=bob_h).status_code == 200


def test_create_admin_cli(tmp_path, monkeypatch, capsys):
    from bio_gateway.cli import main

    monkeypatch.setenv("BIO_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BIO_ENV", "test")
    monkeypatch.setenv("BIO_ADMIN_PASSWORD", PASSWORD)
    main(["create-admin", "--email", "root@example.org"])
    assert "created" in capsys.readouterr().out
    main(["create-admin", "--email", "root@example.org"])
    assert "promoted" in capsys.readouterr().out


def test_admin_from_environment_at_startup(gateway_factory):
    gw = gateway_factory(admin_email="boss@example.org", admin_password=PASSWORD)
    tokens = login(gw, "boss@example.org")
    assert gw.get("/api/v1/auth/me", headers=bearer(tokens)).json()["role"] == "admin"


def test_user_helper_sanity(gw):
    assert gw.get("/api/v1/auth/me", headers=user(gw, "z@example.org")).status_code == 200


def test_deleting_an_account_deletes_its_data_in_every_service(gw):
    import io
    import time

    from PIL import Image

    admin = make_admin(gw)
    alice = register(gw, "alice@example.org")
    h = bearer(login(gw, "alice@example.org"))
    buf = io.BytesIO()
    Image.new("L", (64, 64), 128).save(buf, format="PNG")
    job = gw.post("/api/v1/fingerprint/jobs/normalize", files={"file": ("a.png", buf.getvalue())}, headers=h).json()
    for _ in range(50):
        if gw.get(job["status_url"], headers=h).json()["status"] == "succeeded":
            break
        time.sleep(0.05)
    blob_dir = gw.app.state.settings.var_dir / "blobs" / "fingerprint" / alice["id"]
    assert any(blob_dir.rglob("*.png"))

    assert gw.delete(f"/api/v1/admin/accounts/{alice['id']}", headers=admin).status_code == 204
    assert not blob_dir.exists()
    from sqlalchemy import text

    from bio_shared.db import get_engine

    with get_engine(gw.app.state.settings.database_url).connect() as conn:
        for table in ("fingerprint_jobs", "face_recognition_jobs", "face_verify_jobs", "contour_mask_jobs"):
            assert conn.execute(text(f"SELECT count(*) FROM {table} WHERE owner_id = :o"),
                                {"o": alice["id"]}).scalar() == 0


def test_account_deletion_waits_for_every_service(gateway_factory):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw = gateway_factory(services={"fingerprint": f"http://127.0.0.1:{port}"})
    admin = make_admin(gw)
    bob = register(gw, "bob@example.org")
    r = gw.delete(f"/api/v1/admin/accounts/{bob['id']}", headers=admin)
    assert r.status_code == 503 and r.json()["error"]["code"] == "purge_incomplete"
    assert r.json()["error"]["details"] == {"fingerprint": "unavailable"}
    listing = {a["email"]: a for a in gw.get("/api/v1/admin/accounts", headers=admin).json()["items"]}
    assert listing["bob@example.org"]["is_active"] is False  # kept, disabled, deletable again later
    assert gw.post("/api/v1/auth/login", data={"username": "bob@example.org", "password": PASSWORD}).status_code == 403


def test_purge_routes_are_not_reachable_through_the_gateway(gw):
    from bio_testing.shared import identity_headers

    victim = register(gw, "victim@example.org")
    for headers in (user(gw, "mallory@example.org"), make_admin(gw)):
        for path in ("/api/v1/fingerprint/admin/owners/{}", "/api/v1/faces//admin/owners/{}",
                     "/api/v1/verify/admin/owners/{}/", "/api/v1/contours/%61dmin/owners/{}"):
            r = gw.delete(path.format(victim["id"]), headers=headers)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (path, r.text)
    # the service itself still refuses a non-admin identity (the gateway's own purge call is admin)
    upstream = gw.app.state.upstreams["fingerprint"]
    secret = gw.app.state.settings.internal_secret
    from fastapi.testclient import TestClient

    direct = TestClient(upstream.service_app)  # its lifespan already ran inside the gateway's
    r = direct.delete("/api/v1/fingerprint/admin/owners/x", headers=identity_headers(secret, "m", "user"))
    assert r.status_code == 403
    paths = gw.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if "/admin/owners" in p]
