"""The pure contrast stretch of the fingerprint service on real FVC2002 prints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bio_fingerprint.engine.normalize import normalize_print
from bio_shared.images import decode_image


def _gray(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes(), mode="gray").pixels


@pytest.mark.parametrize("rel", ["DB1_B/101_1.tif", "DB1_B/110_8.tif", "DB2_B/105_3.tif"])
def test_stretch_reaches_the_full_range_and_keeps_the_ridges(prints, rel):
    gray = _gray(prints / rel)
    before = gray.copy()
    out = normalize_print(gray)
    assert out.dtype == np.uint8 and out.shape == gray.shape
    assert out.min() == 0 and out.max() == 255
    lo, hi = np.percentile(out, (1, 99))
    assert lo <= 2 and hi >= 253
    assert np.corrcoef(gray.ravel(), out.ravel())[0, 1] > 0.98  # grey-level order kept
    assert np.array_equal(gray, before)  # the input is not modified


def test_scanner_gain_and_offset_are_removed(prints):
    """The same print captured with a quarter of the gain and an offset normalises to (almost) the same image."""
    gray = _gray(prints / "DB1_B" / "102_2.tif")
    dim = (gray.astype(np.uint16) // 4 + 100).astype(np.uint8)
    a, b = normalize_print(gray).astype(np.int16), normalize_print(dim).astype(np.int16)
    assert np.abs(a - b).mean() < 6


def test_flat_image_is_returned_as_an_equal_copy():
    flat = np.full((64, 64), 128, np.uint8)
    out = normalize_print(flat)
    assert np.array_equal(out, flat) and out is not flat
