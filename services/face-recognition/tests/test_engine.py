"""The pure downscale of face-recognition on real photos."""

from __future__ import annotations

import pytest

from bio_face_recognition.engine.normalize import normalize_face_photo
from bio_shared.testing import check_rgb_downscale, check_rgb_guards, check_rgb_kept, decode_file


@pytest.mark.parametrize("rel", ["knn_examples/test/obama_and_biden.jpg", "test_images/obama3.jpg"])
def test_downscale_caps_the_longer_side_and_keeps_the_aspect(faces, rel):
    check_rgb_downscale(normalize_face_photo, decode_file(faces / rel), 512)


def test_small_photo_is_returned_unchanged(faces):
    check_rgb_kept(normalize_face_photo, decode_file(faces / "examples" / "obama-240p.jpg"), 1024)


def test_refuses_anything_but_rgb_and_a_non_positive_max_side():
    check_rgb_guards(normalize_face_photo)
