"""bio_testing.shared: the helpers other test folders rely on must produce what they claim.

Some helpers are newer than others; a helper that is absent is skipped, not failed.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

import bio_testing.shared as testing
from bio_shared.errors import PayloadTooLarge, Unprocessable
from bio_shared.identity import IDENTITY_HEADER, Identity, verify_identity
from bio_shared.images import decode_image


def helper(name: str):
    fn = getattr(testing, name, None)
    if fn is None:
        pytest.skip(f"bio_testing.shared.{name} is not there (yet)")
    return fn


def test_identity_headers(secret: str) -> None:
    headers = testing.identity_headers(secret)
    assert verify_identity(headers[IDENTITY_HEADER], secret) == Identity("acct-a", "user")
    admin = testing.identity_headers(secret, "acct-z", "admin")
    assert verify_identity(admin[IDENTITY_HEADER], secret).is_admin


def test_png_bomb_is_refused_as_a_bomb() -> None:
    data = helper("png_bomb")()
    assert len(data) < 100_000
    with pytest.raises(PayloadTooLarge) as info:
        decode_image(data)
    assert info.value.code == "too_many_pixels"


def test_sample_jpeg_decodes() -> None:
    data = helper("sample_jpeg")(96, 64, seed=1)
    out = decode_image(data)
    assert out.format == "JPEG" and out.shape == (64, 96, 3)
    assert data == testing.sample_jpeg(96, 64, seed=1)  # deterministic


def test_truncated_helpers_give_corrupt_images() -> None:
    jpeg = helper("sample_jpeg")(160, 120)
    for cut in (helper("truncated_jpeg")(jpeg), helper("truncated_png")(jpeg)):
        Image.open(io.BytesIO(cut))  # the header still reads...
        with pytest.raises(Unprocessable) as info:
            decode_image(cut)
        assert info.value.code == "corrupt_image"  # ...the data does not
