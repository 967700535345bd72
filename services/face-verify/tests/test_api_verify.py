"""The verification API on real photos (embedded mode: SQLite, in-process jobs, dlib embeddings)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bio_testing.shared import png_bomb, png_bytes, sample_jpeg, truncated_jpeg

VERIFY = "/api/v1/verify/jobs/verify"


def post(svc, a: tuple[str, bytes], b: tuple[str, bytes], account: str = "acct-a", **params):
    files = {"image_a": (a[0], a[1], "application/octet-stream"), "image_b": (b[0], b[1], "application/octet-stream")}
    return svc.client.post(VERIFY, files=files, params=params, headers=svc.auth(account))


def photo(path: Path) -> tuple[str, bytes]:
    return path.name, path.read_bytes()


def verify(svc, a, b, **params) -> dict:
    resp = post(svc, a, b, **params)
    assert resp.status_code == 202, resp.text
    return svc.wait(resp.json()["status_url"])


def converted(path: Path, fmt: str) -> tuple[str, bytes]:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, format=fmt)
    return f"{path.stem}.{fmt.lower()}", buf.getvalue()


@pytest.fixture
def svc(start):
    return start()


SAME = [("openface/lennon-1.jpg", "openface/lennon-2.jpg"), ("openface/clapton-1.jpg", "openface/clapton-2.jpg"),
        ("face_recognition/test_images/obama.jpg", "face_recognition/knn_examples/test/obama1.jpg")]
DIFFERENT = [("openface/adams.jpg", "openface/carell.jpg"),
             ("face_recognition/test_images/obama.jpg", "face_recognition/test_images/biden.jpg"),
             ("openface/lennon-1.jpg", "openface/clapton-1.jpg")]


@pytest.mark.parametrize("a,b", SAME)
def test_same_person_pairs_are_verified(svc, face_data, a, b):
    job = verify(svc, photo(face_data / a), photo(face_data / b))
    assert job["status"] == "succeeded", job
    r = job["result"]
    assert r["verified"] is True and r["verification_score"] > 0.5
    assert r["euclidean_distance"] <= r["threshold"] == 0.6
    assert r["model"] == "dlib-resnet-v1" and r["detector"] == "mtcnn"
    assert 0.5 < r["cosine_similarity"] <= 1
    for label in ("image_a", "image_b"):
        img = r["images"][label]
        assert img["frontal"] is True and img["confidence"] > 0.9
        box = img["box"]
        assert 0 <= box["x1"] < box["x2"] <= img["width"] and 0 <= box["y1"] < box["y2"] <= img["height"]
        assert set(img["landmarks"]) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
        assert all(abs(img[axis]) <= 30 for axis in ("yaw", "pitch", "roll"))
    assert r["images"]["image_a"]["filename"] == Path(a).name


@pytest.mark.parametrize("a,b", DIFFERENT)
def test_different_people_are_rejected(svc, face_data, a, b):
    job = verify(svc, photo(face_data / a), photo(face_data / b))
    assert job["status"] == "succeeded", job
    r = job["result"]
    assert r["verified"] is False and r["verification_score"] < 0.5 and r["euclidean_distance"] > r["threshold"]


def test_webp_png_jpeg_mix_decodes_and_verifies(svc, face_data):
    lennon = face_data / "openface"
    for a, b in ((converted(lennon / "lennon-1.jpg", "WEBP"), converted(lennon / "lennon-2.jpg", "PNG")),
                 (converted(lennon / "lennon-1.jpg", "PNG"), photo(lennon / "lennon-2.jpg"))):
        job = verify(svc, a, b)
        assert job["status"] == "succeeded", job
        r = job["result"]
        assert r["verified"] is True
        formats = {r["images"][k]["format"] for k in ("image_a", "image_b")}
        assert formats <= {"WEBP", "PNG", "JPEG"} and len(formats) == 2


def test_multi_face_photo_is_an_error_by_default_and_largest_on_request(svc, faces, face_data):
    two, one = photo(faces / "examples" / "two_people.jpg"), photo(face_data / "openface" / "adams.jpg")
    job = verify(svc, one, two)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "multiple_faces" and job["error"]["details"]["image"] == "image_b"
    assert job["error"]["details"]["faces"] == 2
    job = verify(svc, one, two, multiple_faces="largest", pose_policy="flag")
    assert job["status"] == "succeeded", job
    assert job["result"]["images"]["image_b"]["faces_found"] == 2 and job["result"]["multiple_faces"] == "largest"


def test_non_frontal_face_is_rejected_or_flagged_by_policy(start, faces):
    """kit_harington/john2.jpeg shows a head turned to the side (yaw about -38 degrees)."""
    svc = start()
    turned = photo(faces / "knn_examples" / "train" / "kit_harington" / "john2.jpeg")
    other = photo(faces / "knn_examples" / "train" / "kit_harington" / "john1.jpeg")
    resp = post(svc, other, turned, wait=30)
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    assert err["code"] == "non_frontal" and err["details"]["image"] == "image_b"
    assert abs(err["details"]["yaw"]) > 30 and "yaw" in err["message"]
    assert svc.client.get(err["details"]["status_url"], headers=svc.auth()).json()["status"] == "failed"

    resp = post(svc, other, turned, wait=30, pose_policy="flag")
    assert resp.status_code == 200, resp.text
    img = resp.json()["result"]["images"]["image_b"]
    assert img["frontal"] is False and img["pose_violations"] and resp.json()["result"]["pose_policy"] == "flag"
    assert resp.json()["result"]["images"]["image_a"]["frontal"] is True


def test_synchronous_variant_answers_in_one_round_trip(svc, face_data):
    resp = post(svc, photo(face_data / "openface" / "clapton-1.jpg"), photo(face_data / "openface" / "clapton-2.jpg"),
                wait=30)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "succeeded" and body["result"]["verified"] is True and body["attempts"] == 1
    listed = svc.client.get("/api/v1/verify/jobs", headers=svc.auth()).json()["items"]
    assert [j["id"] for j in listed] == [body["id"]]
    too_long = post(svc, photo(face_data / "openface" / "clapton-1.jpg"), photo(face_data / "openface" / "clapton-2.jpg"),
                    wait=1000)
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "wait_too_long"


def test_no_face_and_too_small_face_fail_the_job_naming_the_image(start, faces):
    svc = start(min_face_px=150)
    good = photo(faces / "test_images" / "obama.jpg")
    resp = post(svc, ("noise.jpg", sample_jpeg(320, 240)), good, wait=30)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "no_face"
    assert resp.json()["error"]["details"]["image"] == "image_a"
    resp = post(svc, good, photo(faces / "examples" / "obama-240p.jpg"), wait=30)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "face_too_small"
    assert resp.json()["error"]["details"]["image"] == "image_b"
    assert svc.stored()[1] == []  # the uploads of failed jobs are gone too


BAD = {
    "text": (b"this is a text file, not an image\n" * 20, 415, "not_an_image"),
    "empty": (b"", 422, "empty_file"),
    "truncated": (truncated_jpeg(sample_jpeg()), 422, "corrupt_image"),
    "bomb": (png_bomb(), 413, "too_many_pixels"),
    "tiny": (png_bytes(Image.new("RGB", (8, 8))), 422, "image_too_small"),
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("side", ["image_a", "image_b"])
def test_bad_input_is_refused_per_image_and_leaves_no_job(svc, faces, case, side):
    data, status, code = BAD[case]
    good = photo(faces / "examples" / "obama_small.jpg")
    pair = (("bad.jpg", data), good) if side == "image_a" else (good, ("bad.jpg", data))
    resp = post(svc, *pair)
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code and err["details"]["image"] == side and err["message"].startswith(side)
    svc.assert_nothing_stored()


def test_oversized_upload_and_missing_image_leave_no_job(start, faces, face_data):
    svc = start(max_upload_bytes=30_000)
    big = photo(faces / "test_images" / "obama.jpg")
    assert len(big[1]) > 30_000
    resp = post(svc, photo(face_data / "davidsandberg-facenet" / "Anthony_Hopkins_0001.jpg"), big)
    assert resp.status_code == 413 and resp.json()["error"]["details"]["image"] == "image_b"
    resp = svc.client.post(VERIFY, files={"image_a": big}, headers=svc.auth())
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_error"
    resp = post(svc, big, big, pose_policy="sometimes")
    assert resp.status_code == 422
    svc.assert_nothing_stored()


def test_accounts_never_see_each_others_verifications(svc, face_data):
    job = verify(svc, photo(face_data / "openface" / "lennon-1.jpg"), photo(face_data / "openface" / "lennon-2.jpg"))
    assert svc.client.get(job["status_url"], headers=svc.auth("acct-b")).status_code == 404


def test_openapi_documents_the_verify_route(svc):
    spec = svc.client.get("/api/v1/verify/openapi.json").json()
    op = spec["paths"][VERIFY]["post"]
    assert set(op["responses"]) >= {"200", "202", "401", "413", "415", "422"}
    assert "verification_score" in op["x-result-schema"]["properties"]
    names = {p["name"] for p in op["parameters"]}
    assert {"pose_policy", "multiple_faces", "wait"} <= names


def test_facenet_model_is_used_when_its_weights_are_cached(start, tmp_path, monkeypatch, face_data):
    import torch

    from bio_face_verify.engine import nets

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    nets.facenet_weights_path().parent.mkdir(parents=True)
    torch.manual_seed(1)
    torch.save(nets.InceptionResnetV1().state_dict(), nets.facenet_weights_path())
    svc = start()
    resp = post(svc, photo(face_data / "openface" / "lennon-1.jpg"), photo(face_data / "openface" / "lennon-2.jpg"),
                wait=30)
    assert resp.status_code == 200, resp.text
    r = resp.json()["result"]
    assert r["model"] == "facenet-vggface2" and r["threshold"] == 1.1 and r["model_info"]["dim"] == 512
    assert 0 <= r["euclidean_distance"] <= 2  # unit vectors; random weights: no accuracy claim


@pytest.mark.parametrize("failures,outcome", [(1, "succeeded"), (5, "failed")])
def test_transient_storage_failures_are_retried_a_bounded_number_of_times(start, face_data, monkeypatch,
                                                                         failures, outcome):
    svc = start(job_max_attempts=2)
    real_get, calls = svc.rt.blobs.get, {"n": 0}

    def flaky_get(key):
        if "face_verify-inputs" in key and calls["n"] < failures * 2:
            calls["n"] += 2  # one failure per attempt (each attempt reads both images; the first read fails)
            raise OSError("shared volume briefly unavailable")
        return real_get(key)

    monkeypatch.setattr(svc.rt.blobs, "get", flaky_get)
    job = verify(svc, photo(face_data / "openface" / "lennon-1.jpg"), photo(face_data / "openface" / "lennon-2.jpg"))
    assert job["status"] == outcome, job
    assert job["attempts"] == 2
    if outcome == "failed":
        assert job["error"]["code"] == "transient_failure"
    else:
        assert job["result"]["verified"] is True
