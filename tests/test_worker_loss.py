"""A job whose Celery worker is killed mid-way is finished by another worker, or marked failed with the
reason once its attempts are used up; never left `running` for ever.

The fingerprint API runs in this process (PostgreSQL + Redis, Celery dispatch, its 1 s reaper); the
workers are real `bio-fingerprint worker` processes, each in its own process group. The first one
sleeps 5 s once it has claimed a job (BIO_JOB_DEBUG_DELAY_S), long enough to SIGKILL it mid-job.
"""

from __future__ import annotations

import os
import signal
import time
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from bio_fingerprint.app import PREFIX, create_app
from bio_fingerprint.settings import FingerprintSettings
from bio_shared.db import migrate
from bio_testing.shared import SHORT_LEASES, identity_headers, worker_env

pytestmark = pytest.mark.integration

SECRET = "worker-loss-internal-secret-" + "x" * 32
LEASE = SHORT_LEASES


def kill_group(launch: ModuleType, pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while launch.group_members(pid):
        assert time.monotonic() < deadline, "killed worker group did not go away"
        time.sleep(0.05)


@pytest.mark.parametrize("max_attempts", [3, 1], ids=["retried_by_another_worker", "out_of_attempts"])
def test_job_of_a_killed_worker_is_not_left_running(launch, pg_url, redis_url, var_dir_stack, data_dir,
                                                    max_attempts):
    var_dir = var_dir_stack
    migrate("bio_fingerprint", pg_url)
    settings = FingerprintSettings(env="test", var_dir=var_dir, database_url=pg_url, redis_url=redis_url,
                                   internal_secret=SECRET, job_max_attempts=max_attempts, **LEASE)
    auth = identity_headers(SECRET, "acct-loss")
    worker = launch.console_script("bio-fingerprint")
    sample = data_dir / "fingerprints" / "fvc2002" / "DB1_B" / "101_1.tif"

    with TestClient(create_app(settings)) as api:
        first = launch.start_process(var_dir, "worker-1", [worker, "worker"], kind="worker",
                                     env=worker_env(database_url=pg_url, redis_url=redis_url, var_dir=var_dir,
                                                    secret=SECRET, max_attempts=max_attempts, delay_s=5))
        r = api.post(f"{PREFIX}/jobs/normalize", headers=auth,
                     files={"file": (sample.name, sample.read_bytes(), "image/tiff")})
        assert r.status_code == 202, r.text
        status_url = r.json()["status_url"]

        deadline = time.monotonic() + 45  # the worker starts, then claims the job
        while True:
            job = api.get(status_url, headers=auth).json()
            if job["status"] == "running":
                break
            assert job["status"] == "pending", job
            assert launch.pid_alive(first.pid), f"worker died on its own:\n{launch.tail(first.log)}"
            assert time.monotonic() < deadline, f"no worker claimed the job:\n{launch.tail(first.log)}"
            time.sleep(0.1)
        assert job["attempts"] == 1

        kill_group(launch, first.pid)  # parent and pool child together, mid-job
        killed_at = time.monotonic()
        launch.start_process(var_dir, "worker-2", [worker, "worker"], kind="worker",
                             env=worker_env(database_url=pg_url, redis_url=redis_url, var_dir=var_dir,
                                            secret=SECRET, max_attempts=max_attempts))

        while True:  # each GET also reaps the job once its lease has expired
            job = api.get(status_url, headers=auth).json()
            if job["status"] in ("succeeded", "failed"):
                break
            assert time.monotonic() - killed_at < 60, f"job left {job['status']} 60 s after its worker died: {job}"
            time.sleep(0.2)

    if max_attempts > 1:
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2, job
        assert job["result"]["width"] == 388 and job["result"]["height"] == 374
    else:
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "worker_lost", job
        assert "lost" in job["error"]["message"]
        assert job["attempts"] == 1
