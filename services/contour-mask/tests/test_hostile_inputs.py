"""Hostile and careless inputs on both contour endpoints (issue 12): a clear 4xx in bounded time, no object
reprs in messages, and the job listing and the blob store unchanged afterwards."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from bio_testing.shared import png_bomb, png_bytes, sample_jpeg

ENDPOINTS = ["/jobs/contours", "/extract"]
NESTED = "[" * 100_000 + "]" * 100_000
W, H = 320, 240


def _ring(n: int) -> list[dict[str, float]]:
    """n points spread over a face-sized ellipse: a valid geometry to corrupt."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [{"x": float(160 + 60 * np.cos(a)), "y": float(120 + 80 * np.sin(a))} for a in t]


LANDMARKS = {
    "68_identical_points": ("degenerate_landmarks", [{"x": 100.0, "y": 100.0}] * 68),
    "468_points_at_origin": ("degenerate_landmarks", [{"x": 0, "y": 0}] * 468),
    "68_collinear_points": ("degenerate_landmarks", [{"x": 20 + 4 * i, "y": 30 + 2 * i} for i in range(68)]),
    "68_points_in_3_pixels": ("degenerate_landmarks", [{"x": 100 + (i % 3), "y": 100 + (i % 2)} for i in range(68)]),
    "far_outside_image": ("landmarks_outside_image", [{"x": p["x"] * 1e6, "y": p["y"]} for p in _ring(68)]),
    "nan_literal": ("invalid_landmarks", None),
    "huge_integer": ("invalid_landmarks", [{"x": 2**70, "y": 10}] + _ring(67)),
    "nested_json": ("invalid_landmarks", None),
    "object_not_list": ("invalid_landmarks", {"x": 1, "y": 2}),
}


def _landmarks_field(case: str) -> str:
    if case == "nan_literal":
        return "[" + ",".join(['{"x": NaN, "y": 1}'] * 68) + "]"
    if case == "nested_json":
        return NESTED
    return json.dumps(LANDMARKS[case][1])


def _post(svc, endpoint: str, *, image: bytes | None = None, data: dict | None = None, label_map: bytes | None = None,
          json_body: dict | None = None):
    url = f"{svc.spec.prefix}{endpoint}"
    if json_body is not None:
        return svc.client.post(url, json=json_body, headers=svc.auth())
    files = {"file": ("face.jpg", image if image is not None else sample_jpeg(W, H), "image/jpeg")}
    if label_map is not None:
        files["label_map"] = ("map.png", label_map, "image/png")
    return svc.client.post(url, files=files, data=data or {}, headers=svc.auth())


def _assert_refused(svc, resp, status: int, code: str, started: float) -> dict:
    assert time.perf_counter() - started < 5.0, "a refusal must come in bounded time"
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code, err
    assert "object at 0x" not in err["message"] and "Traceback" not in resp.text
    svc.assert_nothing_stored()
    listing = svc.client.get(f"{svc.spec.prefix}/jobs", headers=svc.auth()).json()
    assert listing["items"] == [] and listing["total"] == 0
    return err


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", list(LANDMARKS))
def test_degenerate_or_hostile_landmarks_are_refused(start, endpoint, case):
    svc = start()
    t = time.perf_counter()
    resp = _post(svc, endpoint, data={"landmarks": _landmarks_field(case)})
    err = _assert_refused(svc, resp, 422, LANDMARKS[case][0], t)
    if case == "nested_json":
        assert err["details"]["reason"] == "too_deep"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("options", [NESTED, '{"smoothing": NaN}', '{"aligned_size": 100000000000000000000000}',
                                     '["not", "an", "object"]', '{"regions": ' + "[" * 50 + "]" * 50 + "}"])
def test_hostile_options_are_refused(start, endpoint, options):
    svc = start()
    t = time.perf_counter()
    _assert_refused(svc, _post(svc, endpoint, data={"options": options}), 422, "invalid_options", t)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_nested_json_in_a_json_body_is_refused(start, endpoint):
    svc = start()
    t = time.perf_counter()
    url = f"{svc.spec.prefix}{endpoint}"
    body = '{"image_base64": "AAAA", "landmarks": ' + NESTED + "}"
    resp = svc.client.post(url, content=body, headers={**svc.auth(), "content-type": "application/json"})
    assert time.perf_counter() - t < 5.0
    assert resp.status_code == 422, resp.text
    svc.assert_nothing_stored()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("field", ["file", "label_map"])
def test_pixel_bombs_by_header_are_refused_before_decoding(start, endpoint, field):
    """6000 x 6000 declared in a few hundred bytes: over the contour limit (25 MP), refused from the header."""
    svc = start()
    bomb = png_bomb(6000, 6000)
    t = time.perf_counter()
    if field == "file":
        resp = _post(svc, endpoint, image=bomb)
    else:
        resp = _post(svc, endpoint, label_map=bomb)
    _assert_refused(svc, resp, 413, "too_many_pixels", t)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_undecodable_label_map_names_no_python_object(start, endpoint):
    svc = start()
    t = time.perf_counter()
    err = _assert_refused(svc, _post(svc, endpoint, label_map=b"\x89PNG not really" * 10), 422, "invalid_label_map", t)
    assert err["details"] == {"reason": "unknown format"}


def test_a_valid_small_map_still_works_after_hostile_requests(start):
    """The refusals above change nothing: the same service still takes a plain request."""
    svc = start()
    _post(svc, "/jobs/contours", data={"landmarks": NESTED})
    labels = np.zeros((H, W), np.uint8)
    labels[60:200, 100:220] = 1  # skin
    from PIL import Image

    resp = _post(svc, "/jobs/contours", label_map=png_bytes(Image.fromarray(labels)))
    assert resp.status_code == 202, resp.text


@pytest.mark.parametrize("offset", [2**63, 10**10, -1])
def test_list_offsets_out_of_range_are_refused(start, offset):
    svc = start()
    resp = svc.client.get(f"{svc.spec.prefix}/jobs", params={"offset": offset}, headers=svc.auth())
    assert resp.status_code == 422, resp.text


def test_a_synchronous_call_over_its_budget_points_to_its_job(start, parsing):
    """/extract runs the same job through the jobs table; past sync_budget_s it answers 503 with the job's
    status URL, and the job goes on to finish."""
    svc = start(sync_budget_s=0.01)
    image = (parsing / "maskgan_samples" / "0.jpg").read_bytes()
    resp = svc.client.post(f"{svc.spec.prefix}/extract", files={"file": ("f.jpg", image, "image/jpeg")},
                           data={"options": json.dumps({"aligned_size": 256})}, headers=svc.auth())
    assert resp.status_code == 503, resp.text
    err = resp.json()["error"]
    assert err["code"] == "time_budget_exceeded" and resp.headers["location"] == err["details"]["status_url"]
    job = svc.wait(err["details"]["status_url"])
    assert job["status"] == "succeeded" and job["kind"] == "contours"
