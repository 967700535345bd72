"""Fixtures of the face-recognition tests; the API contract all services share is tests/test_service_contract.py."""

from pathlib import Path

import pytest

from bio_face_recognition.app import SERVICE
from bio_testing.shared import starter_fixture

start = pytest.fixture(starter_fixture(SERVICE), name="start")  # start(**settings) -> a migrated, running app


@pytest.fixture
def faces(data_dir: Path) -> Path:
    return data_dir / "faces" / "face_recognition"


@pytest.fixture
def photos(data_dir: Path) -> dict[str, bytes]:
    """Small real photos (fast to process), by a short name."""
    f = data_dir / "faces"
    files = {
        "obama_a": "face_recognition/examples/obama_small.jpg",
        "obama_b": "face_recognition/examples/obama-240p.jpg",
        "obama_c": "face_recognition/examples/obama-480p.jpg",
        "hopkins_a": "davidsandberg-facenet/Anthony_Hopkins_0001.jpg",
        "hopkins_b": "davidsandberg-facenet/Anthony_Hopkins_0002.jpg",
        "clapton_a": "openface/clapton-1.jpg",
        "clapton_b": "openface/clapton-2.jpg",
        "kit": "face_recognition/knn_examples/train/kit_harington/john2.jpeg",
        "two_faces": "openface/longoria-cooper.jpg",
        "png32": "face_recognition/test_images/32bit.png",
    }
    return {k: (f / v).read_bytes() for k, v in files.items()}
