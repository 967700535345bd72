"""The pure downscale of contour-mask on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from bio_contour_mask.engine.normalize import normalize_parsing_input
from bio_shared.testing import check_rgb_downscale, check_rgb_guards, check_rgb_kept, decode_file


@pytest.mark.parametrize("rel", ["test_images/biden.jpg", "examples/obama-1080p.jpg"])
def test_downscale_caps_the_longer_side_and_keeps_the_aspect(faces, rel):
    check_rgb_downscale(normalize_parsing_input, decode_file(faces / rel), 512)


def test_label_map_sized_image_is_returned_unchanged(parsing):
    rgb = decode_file(parsing / "parsenet_test_img" / "0.jpg")  # 512 x 512, already at mask resolution
    assert np.array_equal(normalize_parsing_input(rgb, 512), rgb)
    assert normalize_parsing_input(rgb, 256).shape == (256, 256, 3)


def test_small_photo_is_returned_unchanged(faces):
    check_rgb_kept(normalize_parsing_input, decode_file(faces / "examples" / "obama_small.jpg"), 1024)


def test_refuses_anything_but_rgb_and_a_non_positive_max_side():
    check_rgb_guards(normalize_parsing_input)
