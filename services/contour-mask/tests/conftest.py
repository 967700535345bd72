"""Fixtures of the contour-mask tests: the app on a throw-away SQLite database, identities, samples."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bio_contour_mask.app import create_app
from bio_contour_mask.settings import ContourMaskSettings
from bio_shared.db import migrate
from bio_shared.testing import identity_headers

CM_PACKAGE = "bio_contour_mask"


@pytest.fixture
def cm_make_settings(tmp_path: Path) -> Callable[..., ContourMaskSettings]:
    """Settings for tests: SQLite under tmp_path and in-process jobs, whatever BIO_* variables are set."""

    def make(**overrides: Any) -> ContourMaskSettings:
        values: dict[str, Any] = dict(env="test", var_dir=tmp_path / "cm-var", database_url="", redis_url="",
                                      jobs_mode="inprocess")
        return ContourMaskSettings(**(values | overrides))

    return make


@pytest.fixture
def cm_start() -> Iterator[Callable[[ContourMaskSettings], TestClient]]:
    """Migrate and start an app (lifespan included) for the given settings; stopped after the test."""
    with ExitStack() as stack:

        def start(settings: ContourMaskSettings) -> TestClient:
            migrate(CM_PACKAGE, settings.database_url)
            return stack.enter_context(TestClient(create_app(settings)))

        yield start


@pytest.fixture
def cm_settings(cm_make_settings: Callable[..., ContourMaskSettings]) -> ContourMaskSettings:
    return cm_make_settings()


@pytest.fixture
def cm_client(cm_start: Callable[[ContourMaskSettings], TestClient], cm_settings: ContourMaskSettings) -> TestClient:
    return cm_start(cm_settings)


@pytest.fixture
def cm_auth(cm_settings: ContourMaskSettings) -> Callable[..., dict[str, str]]:
    """Identity headers as the gateway would send them: ``cm_auth("acct-b")``."""
    return lambda account_id="acct-a", role="user": identity_headers(cm_settings.internal_secret, account_id, role)


@pytest.fixture
def cm_wait() -> Callable[[TestClient, str, dict[str, str]], dict[str, Any]]:
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
def cm_faces(data_dir: Path) -> Path:
    return data_dir / "faces" / "face_recognition"


@pytest.fixture
def cm_parsing(data_dir: Path) -> Path:
    """CelebAMask-HQ samples: 1024 px face images with 512 px 19-class label maps."""
    return data_dir / "face_parsing" / "celebamask-hq"
