"""`bio-platform run` (what `make run` starts): one process, SQLite, in-process jobs, real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def platform(tmp_path: Path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIO_")}
    env.update(BIO_VAR_DIR=str(tmp_path / "var"), BIO_GATEWAY_ADMIN_EMAIL="admin@example.org",
               BIO_GATEWAY_ADMIN_PASSWORD=PASSWORD)
    log = open(tmp_path / "platform.log", "wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "bio-platform"), "run", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"platform exited: {(tmp_path / 'platform.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("platform did not become ready in 60 s")
    yield base, tmp_path
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_embedded_platform_end_to_end(platform, data_dir):
    base, tmp_path = platform
    assert (tmp_path / "var" / "bio.db").is_file()  # SQLite under var/
    with httpx.Client(base_url=base, timeout=30) as c:
        docs = c.get("/docs")
        assert docs.status_code == 200
        paths = c.get("/openapi.json").json()["paths"]
        for prefix in ("/api/v1/fingerprint", "/api/v1/faces", "/api/v1/verify", "/api/v1/contours"):
            assert f"{prefix}/jobs/normalize" in paths
        # the admin from the environment exists
        tokens = c.post("/api/v1/auth/login", data={"username": "admin@example.org", "password": PASSWORD}).json()
        h = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert c.get("/api/v1/auth/me", headers=h).json()["role"] == "admin"
        tif = (data_dir / "fingerprints" / "fvc2002" / "DB1_B" / "101_1.tif").read_bytes()
        r = c.post("/api/v1/fingerprint/jobs/normalize", files={"file": ("101_1.tif", tif)}, headers=h)
        assert r.status_code == 202 and r.headers["location"] == r.json()["status_url"]
        for _ in range(100):
            job = c.get(r.json()["status_url"], headers=h).json()
            if job["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.1)
        assert job["status"] == "succeeded", job
        assert job["result"]["width"] == 388 and job["result"]["height"] == 374
        out = c.get(job["result"]["output_url"], headers=h)
        assert out.status_code == 200 and out.content[:8] == b"\x89PNG\r\n\x1a\n"
        metrics = c.get("/metrics").text
        assert 'bio_jobs_total{kind="normalize",outcome="succeeded",service="fingerprint"}' in metrics
