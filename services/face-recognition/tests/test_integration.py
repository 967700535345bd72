"""Through the gateway with PostgreSQL, Redis and a real Celery worker process of this service:
accounts, an event, enrollment, a bulk zip job run by the worker, identification and the unknown flow."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from bio_face_recognition.app import SERVICE
from bio_shared.db import migrate

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"
P = "/api/v1/faces/events"


@pytest.fixture
def stack(pg_url: str, redis_url: str, var_dir: Path, monkeypatch: pytest.MonkeyPatch):
    from bio_gateway.app import create_app
    from bio_gateway.cli import migrate_all
    from bio_gateway.security.passwords import set_rounds_for_tests
    from bio_gateway.settings import GatewaySettings

    set_rounds_for_tests(4)
    for key in list(os.environ):
        if key.upper().startswith("BIO_") and not key.upper().startswith("BIO_TEST_"):
            monkeypatch.delenv(key, raising=False)
    secret = "integration-secret-" + "x" * 32
    settings = GatewaySettings(env="test", var_dir=var_dir, log_json=False, database_url=pg_url, redis_url=redis_url,
                               services={}, internal_secret=secret)
    migrate_all(settings, with_services=False)
    migrate(SERVICE.package, pg_url)
    env = os.environ | {"BIO_ENV": "test", "BIO_DATABASE_URL": pg_url, "BIO_REDIS_URL": redis_url,
                        "BIO_VAR_DIR": str(var_dir), "BIO_INTERNAL_SECRET": secret, "BIO_LOG_JSON": "false"}
    worker = subprocess.Popen([sys.executable, "-m", "bio_face_recognition.cli", "worker", "--pool", "solo"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        overrides = {"env": "test", "var_dir": var_dir, "log_json": False, "database_url": pg_url,
                     "redis_url": redis_url, "jobs_mode": "celery"}
        with TestClient(create_app(settings, services={SERVICE.name: SERVICE}, service_overrides=overrides)) as c:
            yield c
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()


def account(client: TestClient, email: str) -> dict[str, str]:
    assert client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
    r = client.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_gallery_flow_through_the_gateway_with_postgres_and_a_celery_worker(stack, data_dir, pg_url):
    faces = data_dir / "faces"
    alice, bob = account(stack, "alice@example.org"), account(stack, "bob@example.org")
    r = stack.post(P, json={"name": "office", "keep_images": True}, headers=alice)
    assert r.status_code == 201, r.text
    eid = r.json()["id"]

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(faces / "face_recognition/examples/obama_small.jpg", "obama/1.jpg")
        zf.write(faces / "davidsandberg-facenet/Anthony_Hopkins_0001.jpg", "hopkins/1.jpg")
        zf.writestr("hopkins/broken.jpg", b"\xff\xd8\xff\xe0 broken")
    r = stack.post(f"{P}/{eid}/enroll-zip", files={"file": ("team.zip", buf.getvalue(), "application/zip")},
                   headers=alice)
    assert r.status_code == 202, r.text
    status_url = r.json()["status_url"]
    deadline = time.monotonic() + 120
    while (job := stack.get(status_url, headers=alice).json())["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "succeeded", job
    assert (job["result"]["enrolled"], job["result"]["failed"]) == (2, 1)
    with psycopg.connect(pg_url) as conn:
        worker = conn.execute("SELECT worker FROM face_recognition_jobs WHERE id = %s", (job["id"],)).fetchone()[0]
        owners = {row[0] for row in conn.execute("SELECT owner_id FROM face_embeddings")}
    assert worker and worker.startswith("face_recognition@")  # claimed by a worker of this service
    assert len(owners) == 1

    probe = (faces / "face_recognition/examples/obama-240p.jpg").read_bytes()
    r = stack.post(f"{P}/{eid}/identify", files={"file": ("p.jpg", probe, "image/jpeg")}, headers=alice)
    assert r.status_code == 200, r.text
    (face,) = r.json()["faces"]
    assert face["passed"] and face["match"]["person_name"] == "obama"

    stranger = (faces / "openface/clapton-2.jpg").read_bytes()
    (face,) = stack.post(f"{P}/{eid}/identify", files={"file": ("p.jpg", stranger, "image/jpeg")},
                         headers=alice).json()["faces"]
    assert not face["passed"] and face["unknown_id"]
    r = stack.post(f"{P}/{eid}/unknowns/{face['unknown_id']}/confirm", json={"name": "clapton"}, headers=alice)
    assert r.status_code == 201, r.text
    again = (faces / "openface/clapton-1.jpg").read_bytes()
    (face,) = stack.post(f"{P}/{eid}/identify", files={"file": ("p.jpg", again, "image/jpeg")},
                         headers=alice).json()["faces"]
    assert face["passed"] and face["match"]["person_name"] == "clapton"

    assert stack.get(f"{P}/{eid}", headers=bob).status_code == 404
    assert stack.get(P, headers=bob).json()["total"] == 0
    assert stack.delete(f"{P}/{eid}", headers=alice).status_code == 200
    with psycopg.connect(pg_url) as conn:
        for table in ("face_events", "face_people", "face_embeddings", "face_unknowns"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
