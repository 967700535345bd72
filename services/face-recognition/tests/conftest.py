"""Fixtures of the face-recognition tests: the app on a throw-away SQLite database, identities, samples."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bio_face_recognition.app import create_app
from bio_face_recognition.settings import FaceRecognitionSettings
from bio_shared.db import migrate
from bio_shared.testing import identity_headers

FR_PACKAGE = "bio_face_recognition"


@pytest.fixture
def fr_make_settings(tmp_path: Path) -> Callable[..., FaceRecognitionSettings]:
    """Settings for tests: SQLite under tmp_path and in-process jobs, whatever BIO_* variables are set."""

    def make(**overrides: Any) -> FaceRecognitionSettings:
        values: dict[str, Any] = dict(env="test", var_dir=tmp_path / "fr-var", database_url="", redis_url="",
                                      jobs_mode="inprocess")
        return FaceRecognitionSettings(**(values | overrides))

    return make


@pytest.fixture
def fr_start() -> Iterator[Callable[[FaceRecognitionSettings], TestClient]]:
    """Migrate and start an app (lifespan included) for the given settings; stopped after the test."""
    with ExitStack() as stack:

        def start(settings: FaceRecognitionSettings) -> TestClient:
            migrate(FR_PACKAGE, settings.database_url)
            return stack.enter_context(TestClient(create_app(settings)))

        yield start


@pytest.fixture
def fr_settings(fr_make_settings: Callable[..., FaceRecognitionSettings]) -> FaceRecognitionSettings:
    return fr_make_settings()


@pytest.fixture
def fr_client(fr_start: Callable[[FaceRecognitionSettings], TestClient],
              fr_settings: FaceRecognitionSettings) -> TestClient:
    return fr_start(fr_settings)


@pytest.fixture
def fr_auth(fr_settings: FaceRecognitionSettings) -> Callable[..., dict[str, str]]:
    """Identity headers as the gateway would send them: ``fr_auth("acct-b")``."""
    return lambda account_id="acct-a", role="user": identity_headers(fr_settings.internal_secret, account_id, role)


@pytest.fixture
def fr_wait() -> Callable[[TestClient, str, dict[str, str]], dict[str, Any]]:
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
def fr_faces(data_dir: Path) -> Path:
    return data_dir / "faces" / "face_recognition"
