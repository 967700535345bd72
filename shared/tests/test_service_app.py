"""The service shell: bio_shared.runtime + app + uploads (+ services, cli) working together.

A throw-away service ("shared_apptest") is built with build_runtime/create_service_app on SQLite in the
in-process jobs mode, with the normalisation job every service offers, and driven through HTTP.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from bio_shared.app import probe_dependencies
from bio_shared.db import dispose_engines
from bio_shared.identity import IDENTITY_HEADER
from bio_shared.jobs import CeleryDispatcher, ThreadDispatcher
from bio_shared.runtime import ServiceRuntime
from bio_shared.settings import CommonSettings
from bio_testing.shared import identity_headers
from bio_testing.shell import NAME, PREFIX, blob_files, job_count, wait_done
from bio_testing.shell import ShellJob as Job
from bio_testing.shell import png_of as png_bytes
from bio_testing.shell import shell_app as make_app

pytestmark = pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")



# -- probes and shell --------------------------------------------------------------------------------------


def test_healthz_readyz_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "service": NAME}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "checks": {"database": "ok"}}
    client.get(f"{PREFIX}/jobs/abc", headers={})
    text = client.get("/metrics").text
    assert f'route="{PREFIX}/jobs/{{job_id}}"' in text
    assert f'service="{NAME}"' in text


def test_readyz_reports_unreachable_redis(make_rt: Callable[..., ServiceRuntime]) -> None:
    rt = make_rt(redis_url="redis://127.0.0.1:1/0")
    with TestClient(make_app(rt)) as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"].startswith("error")


def test_probe_dependencies(make_rt: Callable[..., ServiceRuntime], var_dir: Path, secret: str) -> None:
    assert probe_dependencies(make_rt().settings) == {"database": "ok"}
    bad = CommonSettings(var_dir=var_dir, internal_secret=secret, database_url="postgresql://nobody@127.0.0.1:1/none")
    try:
        checks = probe_dependencies(bad)
    finally:
        dispose_engines()
    assert checks["database"].startswith("error: ")
    assert "nobody" not in checks["database"]  # the class name only, no connection details


def test_request_id_and_openapi(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "probe-1"})
    assert r.headers["x-request-id"] == "probe-1"
    spec = client.get(f"{PREFIX}/openapi.json").json()
    assert f"{PREFIX}/jobs/normalize" in spec["paths"]
    assert client.get(f"{PREFIX}/docs").status_code == 200
    operations = {op["operationId"]: op["tags"] for path in spec["paths"].values() for op in path.values()}
    assert operations == {f"{NAME}_list_jobs": [f"{NAME}: jobs"], f"{NAME}_get_job": [f"{NAME}: jobs"],
                          f"{NAME}_purge_owner": [f"{NAME}: admin"],
                          f"{NAME}_submit_normalize_job": [f"{NAME}: jobs"],
                          f"{NAME}_get_normalized_output": [f"{NAME}: jobs"]}
    get_job = spec["paths"][f"{PREFIX}/jobs/{{job_id}}"]["get"]["responses"]
    assert "`job_not_found`" in get_job["404"]["description"]
    assert {"missing_identity", "invalid_identity"} <= set(get_job["401"]["content"]["application/json"]["examples"])
    submit = spec["paths"][f"{PREFIX}/jobs/normalize"]["post"]["responses"]
    assert {"not_an_image", "unsupported_format"} <= set(submit["415"]["content"]["application/json"]["examples"])
    assert "`too_many_pixels`" in submit["413"]["description"] and "`corrupt_image`" in submit["422"]["description"]


def test_in_process_mode_uses_threads(client: TestClient, rt: ServiceRuntime) -> None:
    assert isinstance(rt.jobs.dispatcher, ThreadDispatcher)


def test_build_runtime_dispatcher_by_mode(make_rt: Callable[..., ServiceRuntime]) -> None:
    rt = make_rt(jobs_mode="celery", redis_url="redis://127.0.0.1:6379/0")
    assert isinstance(rt.jobs.dispatcher, CeleryDispatcher)
    assert rt.jobs.dispatcher.queue_name == NAME
    rt = make_rt(jobs_mode="auto", redis_url="")
    assert isinstance(rt.jobs.dispatcher, ThreadDispatcher)
    with pytest.raises(ValueError, match="REDIS"):
        make_rt(jobs_mode="celery", redis_url="")


def test_build_runtime_wiring(rt: ServiceRuntime, var_dir: Path) -> None:
    assert rt.name == NAME and rt.prefix == PREFIX and rt.package == "bio_fingerprint"
    assert rt.jobs.status_url("x") == f"{PREFIX}/jobs/x"
    assert Path(rt.blobs.root) == (var_dir / "blobs" / rt.name).resolve()
    assert rt.celery.conf.task_default_queue == NAME
    assert rt.run_job.name == f"bio_{NAME}.run_job"
    assert "normalize" in rt.jobs.handlers
    assert rt.normalize_mode == "gray"


# -- identity on every job route ---------------------------------------------------------------------------


def test_job_routes_require_identity(client: TestClient, secret: str) -> None:
    for method, path in (("get", f"{PREFIX}/jobs"), ("get", f"{PREFIX}/jobs/abc"),
                         ("get", f"{PREFIX}/jobs/abc/output"), ("post", f"{PREFIX}/jobs/normalize")):
        r = getattr(client, method)(path)
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "missing_identity"
        r = getattr(client, method)(path, headers={IDENTITY_HEADER: "forged"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_identity"
        r = getattr(client, method)(path, headers=identity_headers("not-the-secret-" + "z" * 30))
        assert r.status_code == 401


# -- the normalisation job, end to end ---------------------------------------------------------------------


def test_normalize_round_trip(client: TestClient, rt: ServiceRuntime, alice: dict[str, str]) -> None:
    arr = np.random.default_rng(3).integers(0, 256, (40, 50), dtype=np.uint8)
    r = client.post(f"{PREFIX}/jobs/normalize", headers={**alice, "X-Request-ID": "up-1"},
                    files={"file": ("print.png", png_bytes(arr), "image/png")})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] in ("pending", "running", "succeeded")
    assert body["kind"] == "normalize"
    assert r.headers["location"] == body["status_url"] == f"{PREFIX}/jobs/{body['id']}"
    done = wait_done(client, body["status_url"], alice)
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["width"] == 50 and result["height"] == 40 and result["channels"] == 1
    assert result["source_format"] == "PNG" and result["source_mode"] == "L"
    assert result["filename"] == "print.png"
    assert result["output_url"] == f"{body['status_url']}/output"
    assert "output_key" not in result and "input_key" not in result  # storage layout stays private
    out = client.get(result["output_url"], headers=alice)
    assert out.status_code == 200 and out.headers["content-type"] == "image/png"
    assert hashlib.sha256(out.content).hexdigest() == result["sha256"]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(out.content))), 255 - arr)
    # The upload is gone, only the output remains, under the caller's account.
    files = blob_files(rt)
    assert [p.relative_to(rt.blobs.root).as_posix() for p in files] == [
        f"acct-alice/{NAME}-normalized/{body['id']}.png"]
    with rt.sessions() as s:
        assert s.get(Job, body["id"]).request_id == "up-1"
    page = client.get(f"{PREFIX}/jobs", headers=alice).json()
    assert [j["id"] for j in page["items"]] == [body["id"]] and page["total"] == 1


def test_other_account_sees_nothing(client: TestClient, alice: dict[str, str], bob: dict[str, str]) -> None:
    r = client.post(f"{PREFIX}/jobs/normalize", headers=alice,
                    files={"file": ("a.png", png_bytes(np.zeros((20, 20), np.uint8)), "image/png")})
    url = r.json()["status_url"]
    wait_done(client, url, alice)
    r = client.get(url, headers=bob)
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
    assert client.get(f"{url}/output", headers=bob).status_code == 404
    assert client.get(f"{PREFIX}/jobs", headers=bob).json() == {"items": [], "total": 0, "limit": 50, "offset": 0}


@pytest.mark.parametrize("payload,status,code", [
    (b"definitely not an image at all" * 3, 415, "not_an_image"),
    (b"", 422, "empty_file"),
    (b"\x00" * 300_001, 413, "payload_too_large"),
    (None, 422, "image_too_small"),
    ("pdf", 415, "not_an_image"),
])
def test_bad_uploads_rejected_before_anything_is_stored(client: TestClient, rt: ServiceRuntime,
                                                        alice: dict[str, str], payload, status: int,
                                                        code: str) -> None:
    if payload is None:
        payload = png_bytes(np.zeros((8, 100), np.uint8))
    elif payload == "pdf":
        buf = io.BytesIO()
        Image.new("RGB", (64, 64)).save(buf, format="PDF")
        payload = buf.getvalue()
    r = client.post(f"{PREFIX}/jobs/normalize", headers=alice, files={"file": ("x", payload, "image/png")})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert job_count(rt) == 0
    assert blob_files(rt) == []


def test_truncated_upload_rejected(client: TestClient, rt: ServiceRuntime, alice: dict[str, str]) -> None:
    data = png_bytes(np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8))
    r = client.post(f"{PREFIX}/jobs/normalize", headers=alice,
                    files={"file": ("x.png", data[: len(data) // 2], "image/png")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "corrupt_image"
    assert job_count(rt) == 0 and blob_files(rt) == []


def test_missing_file_field(client: TestClient, alice: dict[str, str]) -> None:
    r = client.post(f"{PREFIX}/jobs/normalize", headers=alice, data={"other": "x"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


def test_queue_down_keeps_the_job_and_its_upload(client: TestClient, rt: ServiceRuntime,
                                                 alice: dict[str, str]) -> None:
    class Down:
        def dispatch(self, job_id: str, *, countdown: float = 0.0, request_id: str | None = None) -> None:
            raise ConnectionError("redis down")

    rt.jobs.dispatcher = Down()
    r = client.post(f"{PREFIX}/jobs/normalize", headers=alice,
                    files={"file": ("a.png", png_bytes(np.zeros((20, 20), np.uint8)), "image/png")})
    assert r.status_code == 202  # stored durably; the reaper dispatches it once the broker is back
    assert len(blob_files(rt)) == 1  # the upload is kept for that run
    items = client.get(f"{PREFIX}/jobs", headers=alice).json()["items"]
    assert len(items) == 1 and items[0]["status"] == "pending"
