"""The pure downscale of face-verify on real photos."""

from __future__ import annotations

import pytest

from bio_face_verify.engine.normalize import normalize_probe_photo
from bio_shared.testing import check_rgb_downscale, check_rgb_guards, check_rgb_kept, decode_file


@pytest.mark.parametrize("rel", ["test_images/biden.jpg", "examples/obama-1080p.jpg"])
def test_downscale_caps_the_longer_side_and_keeps_the_aspect(faces, rel):
    check_rgb_downscale(normalize_probe_photo, decode_file(faces / rel), 512)


def test_small_photo_is_returned_unchanged(faces):
    check_rgb_kept(normalize_probe_photo, decode_file(faces / "examples" / "obama_small.jpg"), 1024)


def test_refuses_anything_but_rgb_and_a_non_positive_max_side():
    check_rgb_guards(normalize_probe_photo)
