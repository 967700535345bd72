"""Fixtures of the fingerprint tests: the app on a throw-away SQLite database, identities, samples."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bio_fingerprint.app import create_app
from bio_fingerprint.settings import FingerprintSettings
from bio_shared.db import migrate
from bio_shared.testing import identity_headers

FP_PACKAGE = "bio_fingerprint"


@pytest.fixture
def fp_make_settings(tmp_path: Path) -> Callable[..., FingerprintSettings]:
    """Settings for tests: SQLite under tmp_path and in-process jobs, whatever BIO_* variables are set."""

    def make(**overrides: Any) -> FingerprintSettings:
        values: dict[str, Any] = dict(env="test", var_dir=tmp_path / "fp-var", database_url="", redis_url="",
                                      jobs_mode="inprocess")
        return FingerprintSettings(**(values | overrides))

    return make


@pytest.fixture
def fp_start() -> Iterator[Callable[[FingerprintSettings], TestClient]]:
    """Migrate and start an app (lifespan included) for the given settings; stopped after the test."""
    with ExitStack() as stack:

        def start(settings: FingerprintSettings) -> TestClient:
            migrate(FP_PACKAGE, settings.database_url)
            return stack.enter_context(TestClient(create_app(settings)))

        yield start


@pytest.fixture
def fp_settings(fp_make_settings: Callable[..., FingerprintSettings]) -> FingerprintSettings:
    return fp_make_settings()


@pytest.fixture
def fp_client(fp_start: Callable[[FingerprintSettings], TestClient], fp_settings: FingerprintSettings) -> TestClient:
    return fp_start(fp_settings)


@pytest.fixture
def fp_auth(fp_settings: FingerprintSettings) -> Callable[..., dict[str, str]]:
    """Identity headers as the gateway would send them: ``fp_auth("acct-b")``."""
    return lambda account_id="acct-a", role="user": identity_headers(fp_settings.internal_secret, account_id, role)


@pytest.fixture
def fp_wait() -> Callable[[TestClient, str, dict[str, str]], dict[str, Any]]:
    """Poll a job's status URL until it is final; fails the test after 30 s."""

    def wait(client: TestClient, status_url: str, headers: dict[str, str]) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            resp = client.get(status_url, headers=headers)
            assert resp.status_code == 200, resp.text
            job = resp.json()
            if job["status"] in ("succeeded", "failed"):
                return job
            assert time.monotonic() < deadline, f"job still {job['status']} after 30 s"
            time.sleep(0.05)

    return wait


@pytest.fixture
def fp_prints(data_dir: Path) -> Path:
    """FVC2002 B sets: DB1_B 388x374 and DB2_B 296x560 8-bit TIFF prints at 500 dpi."""
    return data_dir / "fingerprints" / "fvc2002"
