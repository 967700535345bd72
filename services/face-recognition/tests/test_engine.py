"""The pure downscale of face-recognition on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bio_face_recognition.engine.normalize import normalize_face_photo
from bio_shared.images import decode_image


def _rgb(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes(), mode="rgb").pixels


@pytest.mark.parametrize("rel", ["knn_examples/test/obama_and_biden.jpg", "test_images/obama3.jpg"])
def test_downscale_caps_the_longer_side_and_keeps_the_aspect(fr_faces, rel):
    rgb = _rgb(fr_faces / rel)
    before = rgb.copy()
    out = normalize_face_photo(rgb, 512)
    h, w = rgb.shape[:2]
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert max(out.shape[:2]) == 512
    assert abs(out.shape[1] / out.shape[0] - w / h) < 0.01
    assert abs(out.mean() - rgb.mean()) < 2  # same photo, fewer pixels
    assert np.array_equal(rgb, before)  # the input is not modified


def test_small_photo_is_returned_unchanged(fr_faces):
    rgb = _rgb(fr_faces / "examples" / "obama-240p.jpg")
    out = normalize_face_photo(rgb, 1024)
    assert out.shape == rgb.shape and np.array_equal(out, rgb)


@pytest.mark.parametrize("shape", [(64, 64), (64, 64, 4), (64, 64, 1)])
def test_refuses_anything_but_rgb(shape):
    with pytest.raises(ValueError, match="RGB"):
        normalize_face_photo(np.zeros(shape, np.uint8), 32)


def test_refuses_a_non_positive_max_side():
    with pytest.raises(ValueError):
        normalize_face_photo(np.zeros((64, 64, 3), np.uint8), 0)
