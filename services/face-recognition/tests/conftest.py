"""Fixtures of the face-recognition tests; the API contract all services share is tests/test_service_contract.py."""

from pathlib import Path

import pytest

from bio_face_recognition.app import SERVICE
from bio_shared.testing import starter_fixture

start = pytest.fixture(starter_fixture(SERVICE), name="start")  # start(**settings) -> a migrated, running app


@pytest.fixture
def faces(data_dir: Path) -> Path:
    return data_dir / "faces" / "face_recognition"
