"""What the face-recognition normalize job does to real photos: RGB, the longer side capped at max_side.

The API contract every service keeps (identity, job lifecycle, bad input, isolation, probes, metrics,
migrations, packaging) is tested once for all services in tests/test_service_contract.py.
"""

from __future__ import annotations

import pytest

from bio_shared.testing import check_downscaled_photo, check_small_photo_kept


def test_normalize_downscales_a_large_photo(start, faces):
    source = faces / "knn_examples" / "test" / "obama_and_biden.jpg"  # 2000 x 1428, two faces
    check_downscaled_photo(start(), source, max_side=1024)


@pytest.mark.parametrize("rel,mode", [("examples/obama-240p.jpg", "RGB"), ("examples/lin-manuel-miranda.png", "RGBA")])
def test_normalize_keeps_small_photos_and_flattens_alpha(start, faces, rel, mode):
    check_small_photo_kept(start(), faces / rel, mode)


def test_max_side_comes_from_the_service_env_prefix(monkeypatch, start, faces):
    monkeypatch.setenv("BIO_FACE_RECOGNITION_MAX_SIDE", "300")
    check_downscaled_photo(start(), faces / "examples" / "obama-720p.jpg", max_side=300, size=(300, 169))
