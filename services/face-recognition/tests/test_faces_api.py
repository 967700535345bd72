"""Events, people, enrollment quality checks, duplicates, identify, verify and unknown faces on real photos."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bio_face_recognition.models import FaceEmbedding, Person, UnknownFace
from bio_shared.scoring import load_calibration
from bio_testing.shared import png_bytes, sample_jpeg

P = "/api/v1/faces/events"


def test_event_crud_unique_names_and_settings(api, start):
    svc = start()
    ev = api.create_event(svc, "wedding", threshold=0.5, detector="cnn", top_k=3, keep_images=True, landmarks=68)
    assert ev["settings"] == {"threshold": 0.5, "detector": "cnn", "landmarks": 68, "top_k": 3, "keep_images": True,
                              "min_face_px": None, "unknown_retention_s": 7 * 86400, "refuse_duplicates": False}
    assert ev["person_count"] == 0 and ev["version"] == 0
    dup = svc.client.post(P, json={"name": "wedding"}, headers=svc.auth())
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "event_name_taken"
    api.create_event(svc, "wedding", account="acct-b")  # unique per account only
    other = api.create_event(svc, "gala")
    bad = svc.client.post(P, json={"name": "x", "threshold": -1}, headers=svc.auth())
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    bad = svc.client.post(P, json={"name": "x", "detector": "haar"}, headers=svc.auth())
    assert bad.status_code == 422

    listed = svc.client.get(P, headers=svc.auth()).json()
    assert listed["total"] == 2 and [e["name"] for e in listed["items"]] == ["wedding", "gala"]
    page = svc.client.get(P, params={"limit": 1, "offset": 1}, headers=svc.auth()).json()
    assert [e["name"] for e in page["items"]] == ["gala"] and page["total"] == 2

    r = svc.client.patch(f"{P}/{ev['id']}", json={"name": "wedding 2026", "threshold": 0.55}, headers=svc.auth())
    assert r.status_code == 200 and r.json()["name"] == "wedding 2026" and r.json()["settings"]["threshold"] == 0.55
    assert r.json()["settings"]["detector"] == "cnn"  # unchanged
    r = svc.client.patch(f"{P}/{ev['id']}", json={"name": "gala"}, headers=svc.auth())
    assert r.status_code == 409
    assert svc.client.get(f"{P}/{ev['id']}", headers=svc.auth()).json()["name"] == "wedding 2026"
    r = svc.client.delete(f"{P}/{other['id']}", headers=svc.auth())
    assert r.status_code == 200
    assert svc.client.get(f"{P}/{other['id']}", headers=svc.auth()).status_code == 404


def test_people_enroll_list_rename_delete_and_images(api, start, photos):
    svc = start()
    ev = api.create_event(svc, keep_images=True)
    eid = ev["id"]
    obama = api.enroll(svc, eid, "Barack Obama", photos["obama_a"], photos["obama_b"])
    assert obama["image_count"] == 2 and len(obama["added"]) == 2 and obama["warnings"] == []
    img = obama["images"][0]
    assert (img["model"], img["model_version"]) == ("dlib_resnet_v1", "1") and img["image_kept"]
    assert img["quality"]["face_px"] >= 40 and img["quality"]["sharpness"] > 12
    hopkins = api.enroll(svc, eid, "Anthony Hopkins", photos["hopkins_a"])
    same_name = api.enroll(svc, eid, "Anthony Hopkins", photos["hopkins_b"], status=409)
    assert same_name["error"]["code"] == "person_name_taken"

    r = svc.client.post(f"{P}/{eid}/people/{hopkins['id']}/images",
                        files=[("files", ("h.jpg", photos["hopkins_b"], "image/jpeg"))], headers=svc.auth())
    assert r.status_code == 201 and r.json()["image_count"] == 2

    people = svc.client.get(f"{P}/{eid}/people", headers=svc.auth()).json()
    assert people["total"] == 2 and {p["name"]: p["image_count"] for p in people["items"]} == {
        "Barack Obama": 2, "Anthony Hopkins": 2}
    page = svc.client.get(f"{P}/{eid}/people", params={"limit": 1, "offset": 1}, headers=svc.auth()).json()
    assert len(page["items"]) == 1 and page["items"][0]["name"] == "Anthony Hopkins"
    assert svc.client.get(f"{P}/{eid}", headers=svc.auth()).json()["person_count"] == 2

    # the stored photo comes back as uploaded
    got = svc.client.get(f"{P}/{eid}/people/{obama['id']}/images/{img['id']}", headers=svc.auth())
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.content in (photos["obama_a"], photos["obama_b"])

    r = svc.client.patch(f"{P}/{eid}/people/{obama['id']}", json={"name": "Obama"}, headers=svc.auth())
    assert r.status_code == 200 and r.json()["name"] == "Obama"
    assert len(api.blobs(svc)) == 4

    r = svc.client.delete(f"{P}/{eid}/people/{obama['id']}/images/{img['id']}", headers=svc.auth())
    assert r.json() == {"deleted": {"images": 1, "blobs": 1}}
    r = svc.client.delete(f"{P}/{eid}/people/{obama['id']}", headers=svc.auth())
    assert r.json()["deleted"] == {"people": 1, "images": 1, "blobs": 1}
    assert svc.client.get(f"{P}/{eid}/people/{obama['id']}", headers=svc.auth()).status_code == 404
    assert api.rows(svc, FaceEmbedding) == 2 and len(api.blobs(svc)) == 2


def test_images_are_not_kept_unless_the_event_says_so(api, start, photos):
    svc = start()
    eid = api.create_event(svc)["id"]
    person = api.enroll(svc, eid, "Obama", photos["obama_a"])
    assert api.blobs(svc) == [] and person["images"][0]["image_kept"] is False
    r = svc.client.get(f"{P}/{eid}/people/{person['id']}/images/{person['images'][0]['id']}", headers=svc.auth())
    assert r.status_code == 404 and r.json()["error"]["code"] == "image_not_kept"


def test_enrollment_quality_checks_refuse_with_clear_422(api, start, photos, faces):
    svc = start()
    eid = api.create_event(svc)["id"]
    cases = {
        "no_face": sample_jpeg(400, 300),
        "multiple_faces": photos["two_faces"],
        "face_too_blurred": api.jpg(Image.open(io.BytesIO(photos["obama_c"])).filter(
            __import__("PIL.ImageFilter", fromlist=["GaussianBlur"]).GaussianBlur(4))),
    }
    for code, data in cases.items():
        err = api.enroll(svc, eid, "someone", photos["obama_a"], data, status=422)["error"]
        assert err["code"] == code, err
        assert err["message"] and err["details"]["index"] == 1 and err["details"]["file"] == "someone1.jpg"
    assert api.enroll(svc, eid, "someone", photos["two_faces"], status=422)["error"]["details"]["faces"] == 2
    both = api.enroll(svc, eid, "largest", photos["two_faces"], largest=True)  # unless the caller asks for the largest
    assert both["image_count"] == 1
    assert api.rows(svc, Person) == 1 and api.rows(svc, FaceEmbedding) == 1  # refused requests stored nothing
    bad = svc.client.post(f"{P}/{eid}/people", data={"name": "x"},
                          files=[("files", ("x.txt", b"not an image at all" * 10, "text/plain"))], headers=svc.auth())
    assert bad.status_code == 415 and bad.json()["error"]["code"] == "not_an_image"

    small = start(enroll_min_face_px=200)
    eid = api.create_event(small, "small")["id"]
    err = api.enroll(small, eid, "tiny", photos["obama_b"], status=422)["error"]
    assert err["code"] == "face_too_small" and err["details"]["face_px"] < 200


def test_duplicate_person_warns_or_is_refused(api, start, photos):
    svc = start()
    eid = api.create_event(svc)["id"]
    obama = api.enroll(svc, eid, "Obama", photos["obama_a"])
    twin = api.enroll(svc, eid, "Barack", photos["obama_b"])
    (warning,) = twin["warnings"]
    assert warning["code"] == "possible_duplicate" and warning["person_id"] == obama["id"]
    assert warning["person_name"] == "Obama" and warning["distance"] < 0.6
    # another photo of Obama added to Obama: no warning about Obama himself, only about the other entry
    r = svc.client.post(f"{P}/{eid}/people/{obama['id']}/images",
                        files=[("files", ("o.jpg", photos["obama_c"], "image/jpeg"))], headers=svc.auth())
    assert r.status_code == 201
    assert [w["person_id"] for w in r.json()["warnings"]] == [twin["id"]]
    refused = api.enroll(svc, eid, "Barack H.", photos["obama_c"], refuse_duplicates=True, status=409)
    assert refused["error"]["code"] == "duplicate_person"
    assert refused["error"]["details"]["matches"][0]["person_id"] in (obama["id"], twin["id"])
    svc.client.patch(f"{P}/{eid}", json={"refuse_duplicates": True}, headers=svc.auth())
    assert api.enroll(svc, eid, "B. Obama", photos["obama_c"], status=409)["error"]["code"] == "duplicate_person"
    assert api.enroll(svc, eid, "Hopkins", photos["hopkins_a"])["warnings"] == []
    assert api.rows(svc, Person) == 3


def test_identify_every_face_with_top_k_threshold_and_confidence(api, start, photos, data_dir):
    svc = start()
    eid = api.create_event(svc, top_k=2)["id"]
    api.enroll(svc, eid, "Obama", photos["obama_a"])
    api.enroll(svc, eid, "Hopkins", photos["hopkins_a"])
    kit = api.enroll(svc, eid, "Kit", photos["kit"])
    rose = (data_dir / "faces/face_recognition/knn_examples/train/rose_leslie/img2.jpg").read_bytes()
    api.enroll(svc, eid, "Rose", rose)

    res = api.identify(svc, eid, photos["obama_c"])
    (face,) = res["faces"]
    assert face["passed"] and face["match"]["person_name"] == "Obama" and face["match"]["distance"] < 0.6
    cal = load_calibration("dlib_resnet_v1")
    assert face["match"]["confidence"] == pytest.approx(cal.score(face["match"]["distance"]), abs=1e-5)
    assert len(face["candidates"]) == 2
    assert face["candidates"][0]["distance"] <= face["candidates"][1]["distance"]
    assert face["unknown_id"] is None and res["threshold"] == 0.6 and res["gallery_size"] == {"people": 4,
                                                                                             "embeddings": 4}
    assert set(face["box"]) == {"x", "y", "width", "height"} and face["box"]["width"] > 40

    two = api.identify(svc, eid, (data_dir / "faces/face_recognition/knn_examples/test/kit_with_rose.jpg").read_bytes())
    assert sorted(f["match"]["person_name"] for f in two["faces"] if f["passed"]) == ["Kit", "Rose"]
    assert all(f["match"]["person_id"] != kit["id"] or f["passed"] for f in two["faces"])

    strict = api.identify(svc, eid, photos["obama_c"], threshold=0.05, top_k=4, store_unknowns=False)
    (face,) = strict["faces"]
    # nobody passes: no match (the nearest person is a candidate that did not pass)
    assert not face["passed"] and face["match"] is None and len(face["candidates"]) == 4
    assert face["candidates"][0]["person_name"] == "Obama" and not any(c["passed"] for c in face["candidates"])
    assert face["unknown_id"] is None and api.rows(svc, UnknownFace) == 0
    nobody = api.identify(svc, eid, sample_jpeg(400, 300))
    assert nobody["faces"] == []
    bad = svc.client.post(f"{P}/{eid}/identify", files={"file": ("x.png", png_bytes(Image.new("RGB", (8, 8))),
                                                                 "image/png")}, headers=svc.auth())
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "image_too_small"


def test_verify_a_claimed_identity(api, start, photos):
    svc = start()
    eid = api.create_event(svc)["id"]
    obama = api.enroll(svc, eid, "Obama", photos["obama_a"])
    hopkins = api.enroll(svc, eid, "Hopkins", photos["hopkins_a"])

    def verify(pid: str, data: bytes, **form) -> dict:
        r = svc.client.post(f"{P}/{eid}/people/{pid}/verify", files={"file": ("p.jpg", data, "image/jpeg")},
                            data={k: str(v) for k, v in form.items()}, headers=svc.auth())
        assert r.status_code == 200, r.text
        return r.json()

    yes = verify(obama["id"], photos["obama_b"])
    assert yes["same_person"] and yes["distance"] < 0.6 and yes["threshold"] == 0.6
    no = verify(hopkins["id"], photos["obama_b"])
    assert not no["same_person"] and no["distance"] > 0.6 and no["confidence"] < 0.5 < yes["confidence"]
    assert not verify(obama["id"], photos["obama_b"], threshold=0.01)["same_person"]
    assert verify(obama["id"], photos["obama_a"], detector="cnn")["same_person"]  # the CNN detector on request
    r = svc.client.post(f"{P}/{eid}/identify", files={"file": ("p.jpg", photos["obama_a"], "image/jpeg")},
                        data={"detector": "sift"}, headers=svc.auth())
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = svc.client.post(f"{P}/{eid}/people/{obama['id']}/verify",
                        files={"file": ("p.jpg", sample_jpeg(300, 300), "image/jpeg")}, headers=svc.auth())
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_face"


def test_unknown_face_confirmed_as_new_person_is_recognised_next_time(api, start, photos):
    svc = start()
    eid = api.create_event(svc, keep_images=False)["id"]
    api.enroll(svc, eid, "Obama", photos["obama_a"])

    first = api.identify(svc, eid, photos["clapton_a"])
    (face,) = first["faces"]
    assert not face["passed"] and face["unknown_id"]
    # a stranger gets no name: no match, and every candidate says it did not pass
    (cand,) = face["candidates"]
    assert face["match"] is None and cand["person_name"] == "Obama" and cand["passed"] is False
    assert cand["confidence"] == pytest.approx(load_calibration("dlib_resnet_v1").score(cand["distance"]), abs=1e-5)
    assert cand["confidence"] < 0.5
    unknowns = svc.client.get(f"{P}/{eid}/unknowns", headers=svc.auth()).json()
    assert unknowns["total"] == 1 and unknowns["items"][0]["id"] == face["unknown_id"]
    assert unknowns["items"][0]["best_distance"] > 0.6
    crop = svc.client.get(f"{P}/{eid}/unknowns/{face['unknown_id']}/crop", headers=svc.auth())
    assert crop.status_code == 200 and Image.open(io.BytesIO(crop.content)).format == "JPEG"

    bad = svc.client.post(f"{P}/{eid}/unknowns/{face['unknown_id']}/confirm", json={}, headers=svc.auth())
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "person_or_name"
    r = svc.client.post(f"{P}/{eid}/unknowns/{face['unknown_id']}/confirm", json={"name": "Eric Clapton"},
                        headers=svc.auth())
    assert r.status_code == 201, r.text
    clapton = r.json()
    assert clapton["name"] == "Eric Clapton" and clapton["image_count"] == 1
    assert svc.client.get(f"{P}/{eid}/unknowns", headers=svc.auth()).json()["total"] == 0
    assert api.blobs(svc) == []  # the event keeps no images: the crop went with the unknown

    again = api.identify(svc, eid, photos["clapton_b"])
    (face,) = again["faces"]
    assert face["passed"] and face["match"]["person_id"] == clapton["id"]

    # an unknown confirmed into an existing person; another one discarded
    kit = api.identify(svc, eid, photos["kit"])["faces"][0]["unknown_id"]
    hop = api.identify(svc, eid, photos["hopkins_a"])["faces"][0]["unknown_id"]
    r = svc.client.post(f"{P}/{eid}/unknowns/{kit}/confirm", json={"person_id": clapton["id"]}, headers=svc.auth())
    assert r.status_code == 201 and r.json()["image_count"] == 2
    r = svc.client.delete(f"{P}/{eid}/unknowns/{hop}", headers=svc.auth())
    assert r.json() == {"deleted": {"unknowns": 1, "blobs": 1}}
    assert svc.client.delete(f"{P}/{eid}/unknowns/{hop}", headers=svc.auth()).status_code == 404
    assert api.rows(svc, UnknownFace) == 0 and api.blobs(svc) == []


def test_unknowns_expire_after_the_retention_period(api, start, photos):
    svc = start()
    eid = api.create_event(svc, unknown_retention_s=0)["id"]
    assert api.identify(svc, eid, photos["kit"])["faces"][0]["unknown_id"] is None  # retention 0: not kept
    svc.client.patch(f"{P}/{eid}", json={"unknown_retention_s": 1}, headers=svc.auth())
    uid = api.identify(svc, eid, photos["kit"])["faces"][0]["unknown_id"]
    assert uid and len(api.blobs(svc)) == 1
    from datetime import timedelta

    from sqlalchemy import update

    from bio_shared.db import session_scope, utcnow
    with session_scope(svc.rt.sessions) as s:
        s.execute(update(UnknownFace).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert svc.client.get(f"{P}/{eid}/unknowns/{uid}/crop", headers=svc.auth()).status_code == 404
    assert svc.client.get(f"{P}/{eid}/unknowns", headers=svc.auth()).json()["total"] == 0
    assert api.rows(svc, UnknownFace) == 0 and api.blobs(svc) == []
