"""The pure downscale of contour-mask on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bio_contour_mask.engine.normalize import normalize_parsing_input
from bio_shared.images import decode_image


def _rgb(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes(), mode="rgb").pixels


@pytest.mark.parametrize("rel", ["test_images/biden.jpg", "examples/obama-1080p.jpg"])
def test_downscale_caps_the_longer_side_and_keeps_the_aspect(cm_faces, rel):
    rgb = _rgb(cm_faces / rel)
    before = rgb.copy()
    out = normalize_parsing_input(rgb, 512)
    h, w = rgb.shape[:2]
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert max(out.shape[:2]) == 512
    assert abs(out.shape[1] / out.shape[0] - w / h) < 0.01
    assert abs(out.mean() - rgb.mean()) < 2  # same photo, fewer pixels
    assert np.array_equal(rgb, before)  # the input is not modified


def test_label_map_sized_image_is_returned_unchanged(cm_parsing):
    rgb = _rgb(cm_parsing / "parsenet_test_img" / "0.jpg")  # 512 x 512, already at mask resolution
    assert np.array_equal(normalize_parsing_input(rgb, 512), rgb)
    assert normalize_parsing_input(rgb, 256).shape == (256, 256, 3)


def test_small_photo_is_returned_unchanged(cm_faces):
    rgb = _rgb(cm_faces / "examples" / "obama_small.jpg")
    out = normalize_parsing_input(rgb, 1024)
    assert out.shape == rgb.shape and np.array_equal(out, rgb)


@pytest.mark.parametrize("shape", [(64, 64), (64, 64, 4), (64, 64, 1)])
def test_refuses_anything_but_rgb(shape):
    with pytest.raises(ValueError, match="RGB"):
        normalize_parsing_input(np.zeros(shape, np.uint8), 32)


def test_refuses_a_non_positive_max_side():
    with pytest.raises(ValueError):
        normalize_parsing_input(np.zeros((64, 64, 3), np.uint8), 0)
