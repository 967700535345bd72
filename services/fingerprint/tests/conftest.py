"""Fixtures of the fingerprint tests; the API contract all services share is tests/test_service_contract.py."""

from pathlib import Path

import pytest

from bio_fingerprint.app import SERVICE
from bio_shared.testing import starter_fixture

start = pytest.fixture(starter_fixture(SERVICE), name="start")  # start(**settings) -> a migrated, running app


@pytest.fixture
def prints(data_dir: Path) -> Path:
    """FVC2002 B sets: DB1_B 388x374 and DB2_B 296x560 8-bit TIFF prints at 500 dpi."""
    return data_dir / "fingerprints" / "fvc2002"
