"""Fixtures shared by every test folder: throw-away PostgreSQL databases, Redis, sample data."""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

PG_ADMIN_URL = os.environ.get("BIO_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("BIO_TEST_REDIS_URL", "redis://127.0.0.1:6379")
DATA_DIR = Path(os.environ.get("BIOMETRICS_DATA_DIR", Path(__file__).parent.parent / "shared" / "data"))
IN_CI = os.environ.get("CI") == "true"
LAUNCH_PATH = Path(__file__).resolve().parent / "deploy" / "local" / "launch.py"


def _unavailable(what: str, exc: Exception) -> None:
    # In CI the services are started by .ci/run: a missing one is a failure, not a skip.
    if IN_CI:
        pytest.fail(f"{what} is not reachable in CI: {exc}")
    pytest.skip(f"{what} not reachable ({exc}); start it to run integration tests")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        if IN_CI:
            pytest.fail(f"sample data folder {DATA_DIR} is missing in CI")
        pytest.skip(f"sample data folder {DATA_DIR} is absent (set BIOMETRICS_DATA_DIR)")
    return DATA_DIR


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"bio_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _unavailable("PostgreSQL", exc)
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    from bio_shared.db import dispose_engines

    dispose_engines()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database index to itself (flushed before and after)."""
    import redis

    db = int(uuid.uuid4().int % 14) + 1
    url = f"{REDIS_TEST_URL}/{db}"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.flushdb()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    d = tmp_path / "var"
    d.mkdir()
    return d


def load_launch() -> ModuleType:
    """deploy/local/launch.py is a script, not a package: load it once under a private name (its
    registry of started children must be one object for every test)."""
    name = "bio_local_launch"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, LAUNCH_PATH)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def launch() -> ModuleType:
    """The local launcher (make up/down): starts real API and worker processes."""
    return load_launch()


@pytest.fixture
def var_dir_stack(launch: ModuleType, pg_url: str, tmp_path: Path) -> Iterator[Path]:
    """The var dir of a test's launched processes; stops them before the database is dropped."""
    var_dir = tmp_path / "var"
    try:
        yield var_dir
    finally:
        launch.down(var_dir, timeout_s=5, quiet=True)  # every process the test started, whatever happened
