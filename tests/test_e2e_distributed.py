"""End to end in the distributed mode: gateway, four service APIs and four real Celery workers as
separate processes (deploy/local/launch.py), a fresh PostgreSQL database and a Redis database of
their own, everything over real HTTP on loopback."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import psycopg
import pytest
from PIL import Image

from bio_gateway.routes import ROUTES

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
UPLOAD_LIMIT = 300_000  # BIO_MAX_UPLOAD_BYTES of this stack: every sample fits, "oversized" does not
TABLES = {name: f"{name}_jobs" for name in ROUTES}


@pytest.fixture
def stack(launch: ModuleType, pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    var_dir = tmp_path / "var"
    base = launch.free_port_base(12)  # metrics ports up to base + 11 (the fingerprint shard workers)
    env = {"BIO_DATABASE_URL": pg_url, "BIO_REDIS_URL": redis_url, "BIO_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
           "BIO_ENV": "development", "BIO_LOG_LEVEL": "INFO"}
    try:
        info = launch.up(env, var_dir=var_dir, port_base=base, metrics_port_base=base + 5, timeout_s=90,
                         quiet=True)
        yield info
    finally:
        launch.down(var_dir, quiet=True)  # always, even when up() or the test failed
        for proc in launch.status(var_dir).values():
            assert not proc["alive"], proc


def job_counts(pg_url: str) -> dict[str, int]:
    with psycopg.connect(pg_url) as conn:
        rows = {name: conn.execute(f"SELECT count(*) FROM {table}").fetchone() for name, table in TABLES.items()}
    return {name: row[0] if row else 0 for name, row in rows.items()}


def job_row(pg_url: str, service: str, job_id: str) -> dict[str, Any]:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            f"SELECT owner_id, request_id, status, attempts FROM {TABLES[service]} WHERE id = %s", (job_id,)).fetchone()
    assert row is not None, f"no {service} job {job_id}"
    owner, rid, status, attempts = row
    return {"owner_id": owner, "request_id": rid, "status": status, "attempts": attempts}


def account(http: httpx.Client, email: str) -> tuple[str, dict[str, str]]:
    r = http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = http.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return http.get("/api/v1/auth/me", headers=headers).json()["id"], headers


def wait_final(http: httpx.Client, status_url: str, headers: dict[str, str], timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        r = http.get(status_url, headers=headers)
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout_s} s: {job}"
        time.sleep(0.1)


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid PNG header claiming 900 megapixels, with almost no data behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def announce_upload(base_url: str, path: str, headers: dict[str, str], length: int) -> tuple[int, dict]:
    """Send only the headers of a multipart upload of ``length`` bytes and read the answer."""
    url = httpx.URL(base_url)
    conn = http.client.HTTPConnection(url.host, url.port, timeout=10)
    try:
        conn.putrequest("POST", path)
        for key, value in {**headers, "Content-Type": "multipart/form-data; boundary=x",
                           "Content-Length": str(length)}.items():
            conn.putheader(key, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def worker_succeeded(metrics_url: str, service: str) -> float:
    """bio_jobs_total{outcome="succeeded"} as the service's worker process reports it."""
    total = 0.0
    for line in httpx.get(metrics_url, timeout=5).text.splitlines():
        if (line.startswith("bio_jobs_total{") and 'outcome="succeeded"' in line
                and f'service="{service}"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_distributed_stack_end_to_end(stack, launch, pg_url, samples):
    gw = stack["gateway_url"]
    with httpx.Client(base_url=gw, timeout=30) as http:
        # -- probes and docs ---------------------------------------------------------------------------
        assert http.get("/readyz").json()["checks"] == {"database": "ok", "redis": "ok"}
        spec = http.get("/openapi.json").json()
        assert "x-unavailable-services" not in spec
        for prefix in ROUTES.values():
            assert f"{prefix}/jobs/normalize" in spec["paths"]

        alice_id, alice = account(http, "alice@example.org")
        _, bob = account(http, "bob@example.org")

        # -- a normalize job on every service, run by that service's Celery worker --------------------
        submitted = {}
        for service, prefix in ROUTES.items():
            sample = samples[service]
            r = http.post(f"{prefix}/jobs/normalize", headers={**alice, "X-Request-ID": f"e2e-dist-{service}"},
                          files={"file": (sample.name, sample.read_bytes(), "application/octet-stream")})
            assert r.status_code == 202, (service, r.text)
            assert r.headers["x-request-id"] == f"e2e-dist-{service}"
            submitted[service] = r.json()
        for service, job in submitted.items():
            final = wait_final(http, job["status_url"], alice)
            assert final["status"] == "succeeded", (service, final)
            out = http.get(f"{job['status_url']}/output", headers=alice)
            assert out.status_code == 200 and out.headers["content-type"] == "image/png", out.text
            assert hashlib.sha256(out.content).hexdigest() == final["result"]["sha256"]
            assert Image.open(io.BytesIO(out.content)).size == Image.open(samples[service]).size
            assert job_row(pg_url, service, job["id"]) == {"owner_id": alice_id, "request_id": f"e2e-dist-{service}",
                                                           "status": "succeeded", "attempts": 1}
            worker = stack["processes"][f"{service}-worker"]
            assert worker_succeeded(worker["url"], service) >= 1, f"{service} job did not run in its worker"
            # isolation across processes too
            assert http.get(job["status_url"], headers=bob).status_code == 404
            assert http.get(f"{ROUTES[service]}/jobs", headers=bob).json()["items"] == []

        # -- bad input: the right 4xx, and no job row -------------------------------------------------
        before = job_counts(pg_url)
        good = samples["face_verify"].read_bytes()
        bad_inputs = {
            "non_image": (b"this is a text file, not an image\n" * 20, 415, "not_an_image"),
            "zero_byte": (b"", 422, "empty_file"),
            "truncated": (good[: len(good) // 2], 422, "corrupt_image"),
            "bomb": (png_bomb(), 413, "too_many_pixels"),
            "oversized": (good * (UPLOAD_LIMIT // len(good) + 2), 413, "payload_too_large"),  # refused by the service
        }
        for service, prefix in ROUTES.items():
            for what, (data, status, code) in bad_inputs.items():
                r = http.post(f"{prefix}/jobs/normalize", headers=alice,
                              files={"file": (f"{what}.jpg", data, "image/jpeg")})
                assert r.status_code == status, (service, what, r.status_code, r.text)
                assert r.json()["error"]["code"] == code, (service, what, r.text)
            # far over the limit: the gateway answers from Content-Length alone, without reading a byte
            status, body = announce_upload(gw, f"{prefix}/jobs/normalize", alice, UPLOAD_LIMIT + 8 * 1024 * 1024)
            assert status == 413 and body["error"]["code"] == "payload_too_large", (service, status, body)
        assert job_counts(pg_url) == before

        r = http.post("/api/v1/auth/register", content=b'{"email": "eve@example.org", "password": ',
                      headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_json"

        # -- a service port without the gateway identity ------------------------------------------------
        for service, prefix in ROUTES.items():
            url = stack["services"][service]
            direct = httpx.get(f"{url}{prefix}/jobs", timeout=10)
            assert direct.status_code == 401, direct.text
            assert direct.json()["error"]["code"] == "missing_identity"
            smuggled = httpx.post(f"{url}{prefix}/jobs/normalize", timeout=10, headers=alice,
                                  files={"file": ("x.jpg", good, "image/jpeg")})
            assert smuggled.status_code == 401, smuggled.text
        assert job_counts(pg_url) == before

        # -- one service down: 503 at once, the others unaffected ---------------------------------------
        assert launch.stop(stack["var_dir"], "contour_mask")
        start = time.monotonic()
        r = http.get("/api/v1/contours/jobs", headers=alice)
        elapsed = time.monotonic() - start
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "service_unavailable"
        assert elapsed < 5, f"the gateway took {elapsed:.1f} s to report a stopped service"
        assert http.get("/api/v1/fingerprint/jobs", headers=alice).status_code == 200
        status = launch.status(stack["var_dir"])
        assert "contour_mask" not in status or not status["contour_mask"]["alive"]
        assert status["gateway"]["alive"] and status["fingerprint"]["alive"]


def test_webhook_delivered_by_the_webhooks_worker(stack, samples):
    """Distributed mode: a finished job's event leaves through the gateway's Celery worker, signed."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from bio_gateway.webhooks.signing import HEADER, verify

    got: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    assert "webhooks-worker" in stack["processes"]
    try:
        with httpx.Client(base_url=stack["gateway_url"], timeout=30) as http:
            _, auth = account(http, "hooks@example.org")
            hook = http.post("/api/v1/webhooks", headers=auth, json={
                "url": f"http://127.0.0.1:{server.server_address[1]}/in", "events": ["job.succeeded"]})
            assert hook.status_code == 201, hook.text
            sample = samples["face_recognition"]
            r = http.post("/api/v1/faces/jobs/normalize", headers=auth,
                          files={"file": (sample.name, sample.read_bytes(), "application/octet-stream")})
            assert r.status_code == 202, r.text
            assert wait_final(http, r.json()["status_url"], auth)["status"] == "succeeded"
            deadline = time.monotonic() + 30
            while not got and time.monotonic() < deadline:
                time.sleep(0.1)
            assert got, "no webhook delivery within 30 s"
            headers, body = got[0]
            assert json.loads(body)["data"]["job_id"] == r.json()["id"]
            assert verify(hook.json()["secret"].encode(), body, headers[HEADER])
            # the worker records the outcome just after the receiver answered: poll for it
            deadline = time.monotonic() + 15
            while True:
                item = http.get(f"/api/v1/webhooks/{hook.json()['id']}/deliveries", headers=auth).json()["items"][0]
                if item["status"] != "pending" or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert item["status"] == "succeeded" and item["attempt_log"][0]["status_code"] == 204
    finally:
        server.shutdown()


def test_trust_features_in_the_distributed_mode(stack, pg_url, data_dir):
    """Separate processes on PostgreSQL: templates sealed in the database and on disk, the audit trail
    written by the gateway, and a subject exported and erased across the services."""
    import zipfile

    from bio_shared.crypto import MAGIC

    db1 = data_dir / "fingerprints" / "fvc2002" / "DB1_B"
    with httpx.Client(base_url=stack["gateway_url"], timeout=60) as http:
        _, auth = account(http, "trust@example.org")
        files = [("files", (f"101_{i}.tif", (db1 / f"101_{i}.tif").read_bytes(), "image/tiff")) for i in (1, 2)]
        r = http.post("/api/v1/fingerprint/enroll", headers=auth, data={"subject": "dora", "finger": "2"},
                      files=files)
        assert r.status_code == 201, r.text
        with psycopg.connect(pg_url) as conn:
            raw = [bytes(v) for (v,) in conn.execute("SELECT minutiae FROM fingerprint_templates").fetchall()]
        assert len(raw) == 2 and all(v.startswith(MAGIC) for v in raw)
        blobs = [p for p in (Path(stack["var_dir"]) / "blobs" / "fingerprint").rglob("*") if p.is_file()]
        assert blobs and all(p.read_bytes().startswith(MAGIC) for p in blobs)

        export = http.get("/api/v1/subjects/dora/export", headers=auth)
        assert export.status_code == 200, export.text
        names = zipfile.ZipFile(io.BytesIO(export.content)).namelist()
        assert sum(n.endswith(".iso") for n in names) == 2 and "audit.jsonl" in names
        erased = http.delete("/api/v1/subjects/dora", headers=auth)
        assert erased.status_code == 200 and erased.json()["deleted"]["fingerprint"]["templates"] == 2
        actions = [e["action"] for e in http.get("/api/v1/audit", headers=auth).json()["items"]]
        assert actions[:3] == ["subject.erase", "subject.export", "fingerprint.enroll"]
