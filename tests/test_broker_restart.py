"""Redis (the broker) restarts and loses its queue while jobs wait in it: the jobs must run within
seconds of the broker's return, not after ``job_redispatch_after_s`` (300 s) when the reaper would
send them again.

A private redis-server is killed while one worker is busy and three more jobs wait in its queue,
and started again empty on the same port. The worker reconnects (retrying every 0.5-2 s) and re-sends
the pending jobs; the atomic claim keeps any job from running twice. The API process runs with the
default reaper timings, so nothing else can rescue the jobs in time. The measured recovery time is
printed (``-s``) and bounded by the assertion.
"""

from __future__ import annotations

import os
import time

import pytest
from fastapi.testclient import TestClient

from bio_fingerprint.app import PREFIX, create_app
from bio_fingerprint.settings import FingerprintSettings
from bio_shared.db import migrate
from bio_testing.shared import identity_headers

pytestmark = pytest.mark.integration

SECRET = "broker-restart-internal-secret-" + "x" * 32
JOB_DELAY_S = 1.0  # each job sleeps this long once claimed, so jobs queue up behind the busy worker
RECOVERY_BOUND_S = 20.0


def _wait(predicate, timeout_s: float, what: str, tail=lambda: "") -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout_s, f"{what} after {timeout_s} s\n{tail()}"
        time.sleep(0.1)
    return time.monotonic() - start


def test_jobs_lost_with_the_broker_queue_run_seconds_after_it_returns(launch, pg_url, private_redis, tmp_path,
                                                                      data_dir):
    var_dir = tmp_path / "var"
    redis_url = f"redis://127.0.0.1:{private_redis.port}/0"
    migrate("bio_fingerprint", pg_url)
    # default reaper timings: the reaper would send a lost job again only after 300 s
    settings = FingerprintSettings(env="test", var_dir=var_dir, database_url=pg_url, redis_url=redis_url,
                                   internal_secret=SECRET)
    assert settings.job_redispatch_after_s == 300
    auth = identity_headers(SECRET, "acct-restart")
    sample = data_dir / "fingerprints" / "fvc2002" / "DB1_B" / "101_1.tif"
    env = {**{k: v for k, v in os.environ.items() if not k.upper().startswith("BIO_")},
           "BIO_ENV": "test", "BIO_DATABASE_URL": pg_url, "BIO_REDIS_URL": redis_url, "BIO_VAR_DIR": str(var_dir),
           "BIO_INTERNAL_SECRET": SECRET, "BIO_JOB_DEBUG_DELAY_S": str(JOB_DELAY_S), "PYTHONUNBUFFERED": "1"}
    try:
        with TestClient(create_app(settings)) as api:
            worker = launch.start_process(var_dir, "worker", [launch.console_script("bio-fingerprint"), "worker"],
                                          kind="worker", env=env)

            def submit() -> str:
                r = api.post(f"{PREFIX}/jobs/normalize", headers=auth,
                             files={"file": (sample.name, sample.read_bytes(), "image/tiff")})
                assert r.status_code == 202, r.text
                return r.json()["status_url"]

            def status(url: str) -> dict:
                return api.get(url, headers=auth).json()

            first = submit()  # the worker is up and consuming once this one succeeds
            _wait(lambda: status(first)["status"] == "succeeded", 90, "first job not done",
                  lambda: launch.tail(worker.log))
            urls = [submit() for _ in range(4)]  # one runs, the others wait in the broker's queue
            _wait(lambda: status(urls[0])["status"] == "running", 20, "worker did not take a job")
            waiting = [u for u in urls if status(u)["status"] == "pending"]
            assert len(waiting) >= 2, [status(u)["status"] for u in urls]

            private_redis.stop()  # killed: the queued messages are gone
            time.sleep(1.0)
            private_redis.start()  # back, empty
            back = time.monotonic()
            started = _wait(lambda: all(status(u)["status"] != "pending" for u in waiting), RECOVERY_BOUND_S,
                            "lost jobs were not sent again", lambda: launch.tail(worker.log))
            _wait(lambda: all(status(u)["status"] in ("succeeded", "failed") for u in urls),
                  RECOVERY_BOUND_S + len(urls) * (JOB_DELAY_S + 2), "jobs did not finish",
                  lambda: launch.tail(worker.log))
            finished = time.monotonic() - back
            jobs = [status(u) for u in urls]
            assert [j["status"] for j in jobs] == ["succeeded"] * len(urls), jobs
            assert all(j["attempts"] == 1 for j in jobs), jobs  # each ran once, none was claimed twice
            print(f"\nbroker restart: {len(waiting)} lost job(s) claimed {started:.1f} s after the broker "
                  f"returned; all {len(urls)} jobs done after {finished:.1f} s (each job sleeps {JOB_DELAY_S} s)")
    finally:
        launch.down(var_dir, timeout_s=5, quiet=True)
