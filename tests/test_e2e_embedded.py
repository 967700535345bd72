"""End to end through the embedded gateway: every installed service mounted in one process, SQLite
under a throw-away var dir, jobs on in-process threads (what `make run` starts)."""

from __future__ import annotations

import hashlib
import importlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from bio_gateway.app import create_app
from bio_gateway.cli import migrate_all
from bio_gateway.proxy import is_internal_path
from bio_gateway.routes import ROUTES
from bio_gateway.security.passwords import set_rounds_for_tests
from bio_gateway.settings import GatewaySettings
from bio_shared.db import get_engine, migrate
from bio_shared.services import discover_services

PASSWORD = "correct horse battery staple"
REQUEST_ID = "e2e-123"


@pytest.fixture(autouse=True)
def _fast_bcrypt() -> None:
    set_rounds_for_tests(4)  # bcrypt cost 4 in this process: the suite stays fast


def service_settings(var_dir: Path) -> dict[str, Any]:
    # Explicit empty URLs: SQLite under var_dir and in-process jobs, whatever the environment says.
    return {"env": "test", "var_dir": var_dir, "log_json": False, "database_url": "", "redis_url": "",
            "jobs_mode": "inprocess"}


@pytest.fixture
def embedded(var_dir: Path) -> Iterator[tuple[TestClient, GatewaySettings]]:
    settings = GatewaySettings(env="test", var_dir=var_dir, log_json=False, database_url="", redis_url="",
                               services={})
    overrides = service_settings(var_dir)
    # migrate_all migrates services with their default settings (the cwd's var/): do those here.
    assert migrate_all(settings, with_services=False) == ["gateway"]
    for spec in discover_services().values():
        migrate(spec.package, spec.settings(**overrides).database_url)
    with TestClient(create_app(settings, service_overrides=overrides)) as client:
        yield client, settings


def account(client: TestClient, email: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def wait_final(client: TestClient, status_url: str, headers: dict[str, str], timeout_s: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        r = client.get(status_url, headers=headers)
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout_s} s: {job}"
        time.sleep(0.05)


def job_row(database_url: str, service: str, job_id: str) -> dict[str, Any]:
    table = importlib.import_module(f"{discover_services()[service].package}.models").Job.__tablename__
    with get_engine(database_url).connect() as conn:
        row = conn.execute(text(f"SELECT owner_id, request_id, status FROM {table} WHERE id = :id"),
                           {"id": job_id}).mappings().one()
    return dict(row)


def test_installed_services_are_the_routed_ones():
    assert {name: spec.prefix for name, spec in discover_services().items()} == ROUTES


def test_normalize_on_every_service_with_isolation_and_request_id(embedded, samples):
    client, settings = embedded
    alice, bob = account(client, "alice@example.org"), account(client, "bob@example.org")
    me = client.get("/api/v1/auth/me", headers=alice)
    assert me.status_code == 200
    alice_id = me.json()["id"]

    for service, prefix in ROUTES.items():
        sample = samples[service]
        data = sample.read_bytes()
        r = client.post(f"{prefix}/jobs/normalize", files={"file": (sample.name, data, "application/octet-stream")},
                        headers={**alice, "X-Request-ID": REQUEST_ID})
        assert r.status_code == 202, (service, r.text)
        assert r.headers["x-request-id"] == REQUEST_ID
        submitted = r.json()
        assert r.headers["location"] == submitted["status_url"] == f"{prefix}/jobs/{submitted['id']}"

        job = wait_final(client, submitted["status_url"], alice)
        assert job["status"] == "succeeded", (service, job)
        assert job["attempts"] == 1
        result = job["result"]

        out = client.get(f"{submitted['status_url']}/output", headers=alice)
        assert out.status_code == 200, out.text
        assert out.headers["content-type"] == "image/png"
        assert hashlib.sha256(out.content).hexdigest() == result["sha256"]
        png = Image.open(io.BytesIO(out.content))
        source = Image.open(sample)
        assert png.format == "PNG"
        assert png.size == source.size == (result["width"], result["height"])  # samples are below max_side
        assert png.mode == ("L" if service == "fingerprint" else "RGB")
        assert result["channels"] == (1 if service == "fingerprint" else 3)
        assert result["filename"] == sample.name

        # the row carries its owner and the caller's request id, through gateway and service
        row = job_row(settings.database_url, service, submitted["id"])
        assert row == {"owner_id": alice_id, "request_id": REQUEST_ID, "status": "succeeded"}

        # another account sees nothing of it
        for path in (submitted["status_url"], f"{submitted['status_url']}/output"):
            r = client.get(path, headers=bob)
            assert r.status_code == 404, (service, path, r.text)
            assert r.json()["error"]["code"] == "job_not_found"
        listed = client.get(f"{prefix}/jobs", headers=bob)
        assert listed.status_code == 200 and listed.json()["items"] == []
        mine = client.get(f"{prefix}/jobs", headers=alice).json()["items"]
        assert [j["id"] for j in mine] == [submitted["id"]]


def test_request_id_is_made_when_missing_and_refused_when_unsafe(embedded):
    client, _ = embedded
    alice = account(client, "carol@example.org")
    made = client.get("/api/v1/fingerprint/jobs", headers=alice).headers["x-request-id"]
    assert made and made != REQUEST_ID
    unsafe = client.get("/api/v1/fingerprint/jobs", headers={**alice, "X-Request-ID": "bad id\twith spaces"})
    assert unsafe.status_code == 200
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"


def test_service_calls_need_credentials(embedded):
    client, _ = embedded
    for prefix in ROUTES.values():
        r = client.get(f"{prefix}/jobs")
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "not_authenticated"


def test_docs_and_openapi_list_every_service(embedded, var_dir):
    client, _ = embedded
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    spec = schema.json()
    assert "x-unavailable-services" not in spec
    paths = set(spec["paths"])
    assert {"/api/v1/auth/register", "/api/v1/auth/login"} <= paths
    for name, service in discover_services().items():
        # every path the service documents itself is in the gateway's one schema
        own = set(service.create_app(service.settings(**service_settings(var_dir))).openapi()["paths"])
        assert own, name
        # the per-account purge is for the gateway alone: not reachable through it, not in its schema
        internal = {p for p in own if is_internal_path(ROUTES[name], p)}
        assert internal == {f"{ROUTES[name]}/admin/owners/{{owner_id}}"}, internal
        assert own - internal <= paths, (name, sorted(own - internal - paths))
        assert not internal & paths
        prefix = ROUTES[name]
        assert {f"{prefix}/jobs", f"{prefix}/jobs/normalize", f"{prefix}/jobs/{{job_id}}",
                f"{prefix}/jobs/{{job_id}}/output"} <= paths
        assert spec["paths"][f"{prefix}/jobs/normalize"]["post"].get("security"), name
