"""The service shell, continued: job outcomes, body limits, retries, pagination and start-up.

A throw-away service ("shared_apptest") is built with build_runtime/create_service_app on SQLite in the
in-process jobs mode, with the normalisation job every service offers, and driven through HTTP.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bio_shared.app import MULTIPART_OVERHEAD, jobs_router
from bio_shared.identity import Identity
from bio_shared.runtime import ServiceRuntime
from bio_testing.shell import NAME, PREFIX, blob_files, job_count, wait_done
from bio_testing.shell import png_of as png_bytes
from bio_testing.shell import shell_app as make_app

pytestmark = pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")


# -- outcomes, limits and retries ----------------------------------------------------------------------


def test_output_before_success_is_409(make_rt: Callable[..., ServiceRuntime], alice: dict[str, str]) -> None:
    gate = threading.Event()

    def slow(pixels: np.ndarray) -> np.ndarray:
        gate.wait(10)
        return pixels

    rt = make_rt(transform=slow)
    with TestClient(make_app(rt)) as c:
        r = c.post(f"{PREFIX}/jobs/normalize", headers=alice,
                   files={"file": ("a.png", png_bytes(np.zeros((20, 20), np.uint8)), "image/png")})
        url = r.json()["status_url"]
        out = c.get(f"{url}/output", headers=alice)
        assert out.status_code == 409
        assert out.json()["error"]["code"] == "job_not_finished"
        gate.set()
        assert wait_done(c, url, alice)["status"] == "succeeded"
        assert c.get(f"{url}/output", headers=alice).status_code == 200


def test_failed_job_reports_error(make_rt: Callable[..., ServiceRuntime], alice: dict[str, str]) -> None:
    def broken(pixels: np.ndarray) -> np.ndarray:
        raise RuntimeError("engine exploded")

    rt = make_rt(transform=broken)
    with TestClient(make_app(rt)) as c:
        r = c.post(f"{PREFIX}/jobs/normalize", headers=alice,
                   files={"file": ("a.png", png_bytes(np.zeros((20, 20), np.uint8)), "image/png")})
        done = wait_done(c, r.json()["status_url"], alice)
        assert done["status"] == "failed" and done["error"]["code"] == "internal_error"
        assert c.get(f"{r.json()['status_url']}/output", headers=alice).status_code == 409


def test_body_limit_by_content_length(client: TestClient, rt: ServiceRuntime, alice: dict[str, str]) -> None:
    limit = rt.settings.max_upload_bytes + MULTIPART_OVERHEAD
    big = b"\x00" * (limit + 1)
    r = client.post(f"{PREFIX}/jobs/normalize", headers={**alice, "content-type": "application/octet-stream"},
                    content=big)
    assert r.status_code == 413
    err = r.json()["error"]
    assert err["code"] == "payload_too_large" and err["details"] == {"limit_bytes": limit}
    assert r.headers["x-request-id"]  # still inside the request-id middleware
    assert job_count(rt) == 0 and blob_files(rt) == []


def test_body_limit_on_streamed_body(client: TestClient, rt: ServiceRuntime, alice: dict[str, str]) -> None:
    limit = rt.settings.max_upload_bytes + MULTIPART_OVERHEAD

    def chunks() -> Iterator[bytes]:  # no Content-Length: the middleware has to count
        sent = 0
        while sent <= limit:
            yield b"\x00" * 65536
            sent += 65536

    r = client.post(f"{PREFIX}/jobs/normalize", headers={**alice, "content-type": "multipart/form-data; boundary=x"},
                    content=chunks())
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert job_count(rt) == 0 and blob_files(rt) == []


def test_upload_just_over_file_limit_but_under_body_limit(client: TestClient, rt: ServiceRuntime,
                                                          alice: dict[str, str]) -> None:
    data = b"\x00" * (rt.settings.max_upload_bytes + 1)
    r = client.post(f"{PREFIX}/jobs/normalize", headers=alice, files={"file": ("x.png", data, "image/png")})
    assert r.status_code == 413 and r.json()["error"]["details"] == {"limit_bytes": rt.settings.max_upload_bytes}


def test_normalize_retry_reuses_output_of_a_dead_attempt(rt: ServiceRuntime) -> None:
    """The job is idempotent: an attempt that wrote its output and then died is not redone."""
    png = png_bytes(np.full((20, 20), 9, np.uint8))
    rt.jobs.dispatcher = type("Sink", (), {"dispatch": lambda self, *a, **k: None})()
    job = rt.jobs.submit(Identity("acct-alice", "user"), "normalize",
                         {"input_key": "acct-alice/uploads/gone.bin", "filename": "f.png"})
    rt.blobs.put(f"acct-alice/{NAME}-normalized/{job.id}.png", png)
    assert rt.jobs.execute(job.id).state == "ran"
    done = rt.jobs.get(job.id, Identity("acct-alice", "user"))
    assert done.status == "succeeded"
    assert done.result["sha256"] == hashlib.sha256(png).hexdigest()
    assert (done.result["width"], done.result["height"], done.result["channels"]) == (20, 20, 1)


def test_normalize_without_input_or_output_fails_410(rt: ServiceRuntime) -> None:
    rt.jobs.dispatcher = type("Sink", (), {"dispatch": lambda self, *a, **k: None})()
    job = rt.jobs.submit(Identity("acct-alice", "user"), "normalize", {"input_key": "acct-alice/uploads/gone.bin"})
    rt.jobs.execute(job.id)
    done = rt.jobs.get(job.id, Identity("acct-alice", "user"))
    assert done.status == "failed"
    assert done.error["code"] == "input_missing"


def test_normalize_of_undecodable_stored_input_fails_and_cleans(rt: ServiceRuntime) -> None:
    rt.jobs.dispatcher = type("Sink", (), {"dispatch": lambda self, *a, **k: None})()
    key = rt.blobs.put("acct-alice/uploads/bad.bin", b"not an image at all, sorry")
    job = rt.jobs.submit(Identity("acct-alice", "user"), "normalize", {"input_key": key})
    rt.jobs.execute(job.id)
    done = rt.jobs.get(job.id, Identity("acct-alice", "user"))
    assert done.status == "failed" and done.error["code"] == "not_an_image"
    assert not rt.blobs.exists(key)


def test_list_pagination_validation(client: TestClient, alice: dict[str, str]) -> None:
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "x"}, {"offset": 2**63}):
        r = client.get(f"{PREFIX}/jobs", headers=alice, params=params)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


def test_startup_runs_jobs_left_pending(make_rt: Callable[..., ServiceRuntime], alice: dict[str, str]) -> None:
    """A job accepted just before the process stopped is picked up when the embedded service starts again."""
    before = make_rt()

    class Lost:
        def dispatch(self, job_id: str, *, countdown: float = 0.0, request_id: str | None = None) -> None:
            pass  # accepted, then the process died before a thread ran it

    before.jobs.dispatcher = Lost()
    key = before.blobs.put(before.blobs.new_key("acct-alice", "uploads", "png"),
                           png_bytes(np.zeros((20, 20), np.uint8)))
    job = before.jobs.submit(Identity("acct-alice", "user"), "normalize", {"input_key": key})
    after = make_rt()  # the restarted process: same database and blobs, fresh runtime
    with TestClient(make_app(after)) as c:
        done = wait_done(c, f"{PREFIX}/jobs/{job.id}", alice)
    assert done["status"] == "succeeded"


def test_jobs_router_standalone(rt: ServiceRuntime, alice: dict[str, str]) -> None:
    app = FastAPI()
    app.include_router(jobs_router(rt))
    c = TestClient(app)
    assert c.get(f"{PREFIX}/jobs", headers=alice).json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
