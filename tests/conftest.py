"""Fixtures of the end-to-end tests (the repository-wide ones, pg_url, redis_url, data_dir, launch,
var_dir_stack, live in the root conftest.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bio_shared.services import ServiceSpec, discover_services
from bio_testing.shared import ServiceClient, ServiceStarter, sample_jpeg

ROOT = Path(__file__).resolve().parents[1]

# One real sample per service: a print for the fingerprint service, a different face photo (JPEG,
# PNG with alpha) for each face service. Paths are relative to the data_dir fixture.
SAMPLES: dict[str, str] = {
    "fingerprint": "fingerprints/fvc2002/DB1_B/101_1.tif",
    "face_recognition": "faces/face_recognition/examples/obama-240p.jpg",
    "face_verify": "faces/davidsandberg-facenet/Anthony_Hopkins_0001.jpg",
    "contour_mask": "faces/face_recognition/examples/alex-lacamoire.png",
}


@pytest.fixture(autouse=True)
def _isolated_bio_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the developer's or CI's BIO_* variables out of these tests (and out of the processes they
    start); BIO_TEST_* (the fixtures' PostgreSQL/Redis addresses) are read at import time."""
    for key in list(os.environ):
        upper = key.upper()
        if upper.startswith("BIO_") and not upper.startswith("BIO_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    yield


@pytest.fixture
def samples(data_dir: Path) -> dict[str, Path]:
    found = {name: data_dir / rel for name, rel in SAMPLES.items()}
    missing = [str(p) for p in found.values() if not p.is_file()]
    if missing:
        pytest.skip(f"sample files missing: {missing}")
    return found


class RedisServer:
    """A throw-away redis-server on a loopback port, without persistence: a restart loses its data."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server not installed")
        self.proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = RedisServer(port, tmp_path)
    server.start()
    yield server
    server.stop()


# -- the services of the contract tests (test_service_contract*.py), one parameter per installed service --
SPECS = discover_services()


@pytest.fixture(params=list(SPECS.values()), ids=list(SPECS))
def spec(request: pytest.FixtureRequest) -> ServiceSpec:
    return request.param


@pytest.fixture
def start(spec: ServiceSpec, var_dir: Path) -> Iterator[ServiceStarter]:
    with ServiceStarter(spec, var_dir) as starter:
        yield starter


@pytest.fixture
def svc(start: ServiceStarter) -> ServiceClient:
    return start()


@pytest.fixture(scope="module")
def photo() -> bytes:
    """A synthetic 320 x 240 RGB JPEG: every service accepts it (the fingerprint one as gray)."""
    return sample_jpeg(320, 240)
