"""Fixtures of the end-to-end tests (the repository-wide ones, pg_url, redis_url, data_dir, var_dir,
live in the root conftest.py)."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_PATH = ROOT / "deploy" / "local" / "launch.py"

# One real sample per service: a print for the fingerprint service, a different face photo (JPEG,
# PNG with alpha) for each face service. Paths are relative to the data_dir fixture.
SAMPLES: dict[str, str] = {
    "fingerprint": "fingerprints/fvc2002/DB1_B/101_1.tif",
    "face_recognition": "faces/face_recognition/examples/obama-240p.jpg",
    "face_verify": "faces/davidsandberg-facenet/Anthony_Hopkins_0001.jpg",
    "contour_mask": "faces/face_recognition/examples/alex-lacamoire.png",
}


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


@pytest.fixture(autouse=True)
def _isolated_bio_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the developer's or CI's BIO_* variables out of these tests (and out of the processes they
    start); BIO_TEST_* (the fixtures' PostgreSQL/Redis addresses) are read at import time."""
    for key in list(os.environ):
        upper = key.upper()
        if upper.startswith("BIO_") and not upper.startswith("BIO_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    yield


@pytest.fixture(scope="session")
def launch() -> ModuleType:
    return load_launch()


@pytest.fixture
def samples(data_dir: Path) -> dict[str, Path]:
    found = {name: data_dir / rel for name, rel in SAMPLES.items()}
    missing = [str(p) for p in found.values() if not p.is_file()]
    if missing:
        pytest.skip(f"sample files missing: {missing}")
    return found
