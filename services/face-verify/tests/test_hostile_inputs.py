"""Hostile inputs on the verify endpoint (issue 12): the face limit on pixels comes from the header, list
offsets are bounded, and nothing is kept from a refused request."""

from __future__ import annotations

import time

import pytest

from bio_testing.shared import png_bomb

VERIFY = "/api/v1/verify/jobs/verify"


@pytest.mark.parametrize("side", [0, 1])
@pytest.mark.parametrize("wait", [0, 5])
def test_a_header_declaring_36_megapixels_is_refused_at_once(start, face_data, side, wait):
    """6000 x 6000 is under the platform's old 40 MP limit but over the face services' 25 MP."""
    svc = start()
    good = (face_data / "openface" / "adams.jpg").read_bytes()
    pair = [("a.jpg", good), ("b.jpg", good)]
    pair[side] = ("bomb.png", png_bomb(6000, 6000))
    files = {"image_a": (*pair[0], "image/png"), "image_b": (*pair[1], "image/png")}
    t = time.perf_counter()
    resp = svc.client.post(VERIFY, files=files, params={"wait": wait}, headers=svc.auth())
    assert time.perf_counter() - t < 5
    assert resp.status_code == 413, resp.text
    err = resp.json()["error"]
    assert err["code"] == "too_many_pixels" and err["details"]["index"] == side
    assert err["details"]["file"] == "bomb.png" and "object at 0x" not in err["message"]
    svc.assert_nothing_stored()


@pytest.mark.parametrize("offset", [2**63, 10**10, -1])
def test_list_offsets_out_of_range_are_refused(start, offset):
    svc = start()
    resp = svc.client.get("/api/v1/verify/jobs", params={"offset": offset}, headers=svc.auth())
    assert resp.status_code == 422, resp.text


@pytest.mark.parametrize("wait", ["nan", "inf", "1e400", "-1"])
def test_odd_wait_values_are_refused_before_anything_is_read(start, face_data, wait):
    svc = start()
    good = (face_data / "openface" / "adams.jpg").read_bytes()
    files = {"image_a": ("a.jpg", good, "image/jpeg"), "image_b": ("b.jpg", good, "image/jpeg")}
    resp = svc.client.post(VERIFY, files=files, params={"wait": wait}, headers=svc.auth())
    assert resp.status_code in (400, 422), resp.text
    svc.assert_nothing_stored()
