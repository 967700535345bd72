"""Fixtures of the fingerprint tests; the API contract all services share is tests/test_service_contract.py.

Enhancement and minutiae extraction take 0.2-1.5 s per print on one core, so every print is processed
once per test session (``extracted``) and shared by the engine tests.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bio_fingerprint.app import SERVICE
from bio_shared.images import decode_image
from bio_testing.shared import starter_fixture

start = pytest.fixture(starter_fixture(SERVICE), name="start")  # start(**settings) -> a migrated, running app


@pytest.fixture
def prints(data_dir: Path) -> Path:
    """FVC2002 B sets: DB1_B 388x374 and DB2_B 296x560 8-bit TIFF prints at 500 dpi."""
    return data_dir / "fingerprints" / "fvc2002"


@pytest.fixture(scope="session")
def fp_root(data_dir: Path) -> Path:
    return data_dir / "fingerprints"


@pytest.fixture(scope="session")
def gray_of(fp_root: Path) -> Callable[[str], np.ndarray]:
    cache: dict[str, np.ndarray] = {}

    def get(rel: str) -> np.ndarray:
        if rel not in cache:
            cache[rel] = decode_image((fp_root / rel).read_bytes(), mode="gray").pixels
        return cache[rel]

    return get


@pytest.fixture(scope="session")
def extracted(gray_of):
    """extracted(rel, extractor="leader") -> Processed, computed once per session."""
    from bio_fingerprint.engine.pipeline import process

    cache: dict[tuple[str, str], object] = {}

    def get(rel: str, extractor: str = "leader"):
        key = (rel, extractor)
        if key not in cache:
            cache[key] = process(gray_of(rel), extractor=extractor)
        return cache[key]

    return get
