"""Fixtures of the bio_shared tests (the repository-wide ones live in the root conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


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
