"""Verification jobs in the distributed mode: real PostgreSQL, Redis and Celery worker processes.

* Through the gateway: deploy/local/launch.py's ``up`` starts the gateway, the face-verify API and its
  Celery worker as separate processes (services=["face_verify"]).
* Worker loss: the API runs in this process, workers are real ``bio-face-verify worker`` processes; the
  first one sleeps once it has claimed the job (BIO_JOB_DEBUG_DELAY_S) and is SIGKILLed mid-job.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from bio_face_verify.app import PREFIX, create_app
from bio_face_verify.settings import FaceVerifySettings
from bio_shared.db import migrate
from bio_testing.shared import SHORT_LEASES, identity_headers, worker_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "correct horse battery staple"
VERIFY = f"{PREFIX}/jobs/verify"


def pair(data_dir: Path, a: str, b: str) -> dict:
    return {"image_a": (Path(a).name, (data_dir / "faces" / a).read_bytes(), "image/jpeg"),
            "image_b": (Path(b).name, (data_dir / "faces" / b).read_bytes(), "image/jpeg")}


def job_rows(pg_url: str) -> list[tuple]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute("SELECT id, kind, status, attempts FROM face_verify_jobs ORDER BY created_at").fetchall()


def test_verification_job_through_the_gateway_with_a_celery_worker(launch, pg_url, redis_url, tmp_path, data_dir,
                                                                    monkeypatch):
    for key in list(os.environ):
        if key.upper().startswith("BIO_") and not key.upper().startswith("BIO_TEST_"):
            monkeypatch.delenv(key)
    var_dir = tmp_path / "var"
    base = launch.free_port_base(10)
    env = {"BIO_DATABASE_URL": pg_url, "BIO_REDIS_URL": redis_url, "BIO_ENV": "development"}
    try:
        stack = launch.up(env, var_dir=var_dir, port_base=base, metrics_port_base=base + 5, timeout_s=120,
                          services=["face_verify"], quiet=True)
        with httpx.Client(base_url=stack["gateway_url"], timeout=60) as http:
            assert http.post("/api/v1/auth/register", json={"email": "v@example.org", "password": PASSWORD}
                             ).status_code == 201
            token = http.post("/api/v1/auth/login", data={"username": "v@example.org", "password": PASSWORD}
                              ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}

            r = http.post(VERIFY, headers=auth, files=pair(data_dir, "openface/lennon-1.jpg", "openface/lennon-2.jpg"))
            assert r.status_code == 202, r.text
            job = r.json()
            assert job["status"] in ("pending", "running", "succeeded") and r.headers["location"] == job["status_url"]
            deadline = time.monotonic() + 90
            while job["status"] not in ("succeeded", "failed"):
                assert time.monotonic() < deadline, job
                time.sleep(0.2)
                job = http.get(job["status_url"], headers=auth).json()
            assert job["status"] == "succeeded", job
            assert job["result"]["verified"] is True and job["attempts"] == 1

            # the synchronous variant through the gateway, a different pair
            r = http.post(VERIFY, headers=auth, params={"wait": 30},
                          files=pair(data_dir, "openface/lennon-1.jpg", "openface/clapton-1.jpg"))
            assert r.status_code == 200, r.text
            assert r.json()["result"]["verified"] is False

            # bad input: 4xx naming the image, and no job row
            before = job_rows(pg_url)
            files = pair(data_dir, "openface/lennon-1.jpg", "openface/lennon-2.jpg")
            files["image_b"] = ("notes.txt", b"not an image\n" * 50, "text/plain")
            r = http.post(VERIFY, headers=auth, files=files)
            assert r.status_code == 415 and r.json()["error"]["details"]["image"] == "image_b", r.text
            assert job_rows(pg_url) == before
            assert [(k, s) for _, k, s, _ in before] == [("verify", "succeeded")] * 2

            # the jobs ran in the worker process, not in the API
            metrics = httpx.get(stack["processes"]["face_verify-worker"]["url"], timeout=5).text
            ran = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                      if line.startswith("bio_jobs_total{") and 'kind="verify"' in line and 'outcome="succeeded"' in line)
            assert ran == 2
    finally:
        launch.down(var_dir, quiet=True)


SECRET = "face-verify-worker-loss-secret-" + "x" * 32
LEASE = SHORT_LEASES


@pytest.mark.parametrize("max_attempts", [2, 1], ids=["retried_by_another_worker", "out_of_attempts"])
def test_verification_of_a_killed_worker_is_not_left_running(launch, pg_url, redis_url, var_dir_stack, data_dir,
                                                               max_attempts):
    var_dir = var_dir_stack
    migrate("bio_face_verify", pg_url)
    settings = FaceVerifySettings(env="test", var_dir=var_dir, database_url=pg_url, redis_url=redis_url,
                                  internal_secret=SECRET, job_max_attempts=max_attempts, **LEASE)
    auth = identity_headers(SECRET, "acct-loss")
    worker = launch.console_script("bio-face-verify")
    with TestClient(create_app(settings)) as api:
        first = launch.start_process(var_dir, "worker-1", [worker, "worker"], kind="worker",
                                     env=worker_env(database_url=pg_url, redis_url=redis_url, var_dir=var_dir, secret=SECRET,
                                                    max_attempts=max_attempts, delay_s=6,
                                                    service_env_prefix="BIO_FACE_VERIFY_"))
        r = api.post(VERIFY, headers=auth, files=pair(data_dir, "openface/clapton-1.jpg", "openface/clapton-2.jpg"))
        assert r.status_code == 202, r.text
        status_url = r.json()["status_url"]
        deadline = time.monotonic() + 60
        while (job := api.get(status_url, headers=auth).json())["status"] != "running":
            assert job["status"] == "pending", job
            assert launch.pid_alive(first.pid), launch.tail(first.log)
            assert time.monotonic() < deadline, launch.tail(first.log)
            time.sleep(0.1)
        os.killpg(first.pid, signal.SIGKILL)  # parent and pool child together, mid-job
        while launch.group_members(first.pid):
            time.sleep(0.05)
        killed_at = time.monotonic()
        launch.start_process(var_dir, "worker-2", [worker, "worker"], kind="worker",
                             env=worker_env(database_url=pg_url, redis_url=redis_url, var_dir=var_dir, secret=SECRET,
                                            max_attempts=max_attempts, service_env_prefix="BIO_FACE_VERIFY_"))
        while (job := api.get(status_url, headers=auth).json())["status"] not in ("succeeded", "failed"):
            assert time.monotonic() - killed_at < 60, f"job left {job['status']} 60 s after its worker died: {job}"
            time.sleep(0.2)
    if max_attempts > 1:
        assert job["status"] == "succeeded" and job["attempts"] == 2, job
        assert job["result"]["verified"] is True
    else:
        assert job["status"] == "failed" and job["error"]["code"] == "worker_lost", job
        assert job["attempts"] == 1
