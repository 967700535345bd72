"""Fixtures of the contour-mask tests; the API contract all services share is tests/test_service_contract.py."""

from pathlib import Path

import pytest

from bio_contour_mask.app import SERVICE
from bio_testing.shared import starter_fixture

start = pytest.fixture(starter_fixture(SERVICE), name="start")  # start(**settings) -> a migrated, running app


@pytest.fixture
def faces(data_dir: Path) -> Path:
    return data_dir / "faces" / "face_recognition"


@pytest.fixture
def parsing(data_dir: Path) -> Path:
    """CelebAMask-HQ samples: 1024 px face images with 512 px 19-class label maps."""
    return data_dir / "face_parsing" / "celebamask-hq"
