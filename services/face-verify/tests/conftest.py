"""Fixtures of the face-verify tests; the API contract all services share is tests/test_service_contract.py."""

from pathlib import Path

import pytest

from bio_face_verify.app import SERVICE
from bio_testing.shared import starter_fixture

start = pytest.fixture(starter_fixture(SERVICE), name="start")  # start(**settings) -> a migrated, running app


@pytest.fixture
def faces(data_dir: Path) -> Path:
    return data_dir / "faces" / "face_recognition"


@pytest.fixture
def face_data(data_dir: Path) -> Path:
    return data_dir / "faces"


@pytest.fixture(autouse=True)
def _dlib_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests choose their embedding model explicitly: an empty TORCH_HOME means no FaceNet weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for key in ("BIO_FACE_VERIFY_MODEL", "BIO_FACE_VERIFY_FACENET_WEIGHTS"):
        monkeypatch.delenv(key, raising=False)
