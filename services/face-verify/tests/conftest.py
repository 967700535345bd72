"""Fixtures of the face-verify tests: the app on a throw-away SQLite database, identities, samples."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bio_face_verify.app import create_app
from bio_face_verify.settings import FaceVerifySettings
from bio_shared.db import migrate
from bio_shared.testing import identity_headers

FV_PACKAGE = "bio_face_verify"


@pytest.fixture
def fv_make_settings(tmp_path: Path) -> Callable[..., FaceVerifySettings]:
    """Settings for tests: SQLite under tmp_path and in-process jobs, whatever BIO_* variables are set."""

    def make(**overrides: Any) -> FaceVerifySettings:
        values: dict[str, Any] = dict(env="test", var_dir=tmp_path / "fv-var", database_url="", redis_url="",
                                      jobs_mode="inprocess")
        return FaceVerifySettings(**(values | overrides))

    return make


@pytest.fixture
def fv_start() -> Iterator[Callable[[FaceVerifySettings], TestClient]]:
    """Migrate and start an app (lifespan included) for the given settings; stopped after the test."""
    with ExitStack() as stack:

        def start(settings: FaceVerifySettings) -> TestClient:
            migrate(FV_PACKAGE, settings.database_url)
            return stack.enter_context(TestClient(create_app(settings)))

        yield start


@pytest.fixture
def fv_settings(fv_make_settings: Callable[..., FaceVerifySettings]) -> FaceVerifySettings:
    return fv_make_settings()


@pytest.fixture
def fv_client(fv_start: Callable[[FaceVerifySettings], TestClient], fv_settings: FaceVerifySettings) -> TestClient:
    return fv_start(fv_settings)


@pytest.fixture
def fv_auth(fv_settings: FaceVerifySettings) -> Callable[..., dict[str, str]]:
    """Identity headers as the gateway would send them: ``fv_auth("acct-b")``."""
    return lambda account_id="acct-a", role="user": identity_headers(fv_settings.internal_secret, account_id, role)


@pytest.fixture
def fv_wait() -> Callable[[TestClient, str, dict[str, str]], dict[str, Any]]:
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
def fv_faces(data_dir: Path) -> Path:
    return data_dir / "faces" / "face_recognition"
