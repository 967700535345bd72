"""Fixtures of the bio_shared tests (the repository-wide ones live in the root conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bio_shared.db import dispose_engines, get_engine, session_factory
from bio_shared.jobs import JobContext, JobQueue
from bio_shared.runtime import ServiceRuntime
from bio_testing import jobs as jobs_table
from bio_testing.shared import identity_headers
from bio_testing.shell import invert, shell_app, shell_runtime


@pytest.fixture(autouse=True)
def _isolated_bio_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings read the environment: keep the developer's or CI's BIO_* variables out of these tests.

    BIO_TEST_* (the fixtures' own PostgreSQL/Redis addresses) are read at import time and left alone.
    """
    for key in list(os.environ):
        upper = key.upper()
        if (upper.startswith("BIO_") and not upper.startswith("BIO_TEST_")) or upper == "BIOMETRICS_DATA_DIR":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    yield


@pytest.fixture
def secret() -> str:
    return "test-internal-secret-" + "x" * 32


# -- the throw-away service of the shell tests (bio_testing.shell) -----------------------------------------
@pytest.fixture
def make_rt(var_dir: Path, secret: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ServiceRuntime]]:
    import bio_shared.app as app_module

    # create_service_app configures the root logger once per process; keep pytest's logging intact.
    monkeypatch.setattr(app_module, "configure_logging", lambda *a, **k: None)
    made: list[ServiceRuntime] = []

    def make(transform: Callable[[np.ndarray], np.ndarray] = invert, **over: Any) -> ServiceRuntime:
        rt = shell_runtime(var_dir, secret, transform, **over)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.stop()
    dispose_engines()


@pytest.fixture
def rt(make_rt: Callable[..., ServiceRuntime]) -> ServiceRuntime:
    return make_rt()


@pytest.fixture
def client(rt: ServiceRuntime) -> Iterator[TestClient]:
    with TestClient(shell_app(rt)) as c:
        yield c


@pytest.fixture
def alice(secret: str) -> dict[str, str]:
    return identity_headers(secret, "acct-alice")


@pytest.fixture
def bob(secret: str) -> dict[str, str]:
    return identity_headers(secret, "acct-bob")


# -- the throw-away jobs table of the bio_shared.jobs tests (bio_testing.jobs), on both backends ---------
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'jobs.db').as_posix()}"
        dispose_engines()
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def make_queue(db_url: str, var_dir: Path) -> Callable[..., JobQueue]:
    jobs_table.Base.metadata.create_all(get_engine(db_url))

    def make(**settings_over: Any) -> JobQueue:
        q = JobQueue("testsvc", jobs_table.Job, session_factory(db_url),
                     jobs_table.make_settings(var_dir, db_url, **settings_over), status_path="/api/v1/testsvc/jobs/")
        q.dispatcher = jobs_table.RecordingDispatcher()
        return q

    return make


@pytest.fixture
def queue(make_queue: Callable[..., JobQueue]) -> JobQueue:
    q = make_queue()

    @q.handler("echo")
    def echo(ctx: JobContext) -> dict[str, Any]:
        return {"echo": ctx.params, "attempt": ctx.attempt, "owner": ctx.owner_id}

    return q
