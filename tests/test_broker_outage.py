"""Redis (the broker) down while a job is submitted: the job is stored, answered 202, and runs once
Redis is back: no job is lost and none fails because of the outage.

A private redis-server on a free loopback port (the private_redis fixture of tests/conftest.py) is
stopped and started again on the same port; the
fingerprint API runs in this process (Celery dispatch, 1 s reaper) and one real worker process
consumes the queue.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bio_fingerprint.app import PREFIX, create_app
from bio_fingerprint.settings import FingerprintSettings
from bio_shared.db import migrate
from bio_testing.shared import identity_headers

pytestmark = pytest.mark.integration

SECRET = "broker-outage-internal-secret-" + "x" * 32


def test_job_submitted_while_redis_is_down_runs_when_it_returns(launch, pg_url, private_redis, tmp_path, data_dir):
    var_dir = tmp_path / "var"
    redis_url = f"redis://127.0.0.1:{private_redis.port}/0"
    migrate("bio_fingerprint", pg_url)
    timing: dict[str, Any] = {"job_dispatch_retry_s": 1, "job_reap_interval_s": 1}
    settings = FingerprintSettings(env="test", var_dir=var_dir, database_url=pg_url, redis_url=redis_url,
                                   internal_secret=SECRET, **timing)
    auth = identity_headers(SECRET, "acct-outage")
    sample = data_dir / "fingerprints" / "fvc2002" / "DB1_B" / "101_1.tif"
    env = {"BIO_ENV": "test", "BIO_DATABASE_URL": pg_url, "BIO_REDIS_URL": redis_url, "BIO_VAR_DIR": str(var_dir),
           "BIO_INTERNAL_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    env = {**{k: v for k, v in os.environ.items() if not k.upper().startswith("BIO_")}, **env}
    try:
        with TestClient(create_app(settings)) as api:
            private_redis.stop()  # the broker goes away
            r = api.post(f"{PREFIX}/jobs/normalize", headers=auth,
                         files={"file": (sample.name, sample.read_bytes(), "image/tiff")})
            assert r.status_code == 202, r.text  # accepted: the job is in the database
            status_url = r.json()["status_url"]
            assert api.get(status_url, headers=auth).json()["status"] == "pending"

            private_redis.start()  # the broker is back (empty: the message never reached it)
            worker = launch.start_process(var_dir, "worker", [launch.console_script("bio-fingerprint"), "worker"],
                                          kind="worker", env=env)
            deadline = time.monotonic() + 60
            while True:
                job = api.get(status_url, headers=auth).json()
                if job["status"] in ("succeeded", "failed"):
                    break
                assert time.monotonic() < deadline, f"job still {job['status']}:\n{launch.tail(worker.log)}"
                time.sleep(0.2)
            assert job["status"] == "succeeded", job
            assert job["attempts"] == 1 and job["result"]["width"] == 388
    finally:
        launch.down(var_dir, timeout_s=5, quiet=True)
