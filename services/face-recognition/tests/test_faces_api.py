"""Every face-recognition endpoint on real photos: events, people, quality checks, identify, verify,
unknown faces, bulk enrollment, reset, cascades and account isolation."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from bio_face_recognition.models import FaceEmbedding, FaceEvent, Person, UnknownFace
from bio_face_recognition.runtime import face_state
from bio_shared.scoring import load_calibration
from bio_testing.shared import ServiceClient, png_bytes, sample_jpeg

P = "/api/v1/faces/events"


def jpg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def create_event(svc: ServiceClient, name: str = "party", account: str = "acct-a", **settings) -> dict:
    r = svc.client.post(P, json={"name": name, **settings}, headers=svc.auth(account))
    assert r.status_code == 201, r.text
    return r.json()


def enroll(svc: ServiceClient, event_id: str, name: str, *images: bytes, account: str = "acct-a", status: int = 201,
           **form) -> dict:
    files = [("files", (f"{name}{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]
    data = {"name": name, **{k: str(v).lower() for k, v in form.items()}}
    r = svc.client.post(f"{P}/{event_id}/people", files=files, data=data, headers=svc.auth(account))
    assert r.status_code == status, r.text
    return r.json()


def identify(svc: ServiceClient, event_id: str, data: bytes, account: str = "acct-a", **form) -> dict:
    r = svc.client.post(f"{P}/{event_id}/identify", files={"file": ("probe.jpg", data, "image/jpeg")},
                        data={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in form.items()},
                        headers=svc.auth(account))
    assert r.status_code == 200, r.text
    return r.json()


def rows(svc: ServiceClient, model: type) -> int:
    with svc.rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def blobs(svc: ServiceClient) -> list[Path]:
    return sorted(p for p in Path(svc.rt.blobs.root).rglob("*") if p.is_file())


def test_event_crud_unique_names_and_settings(start):
    svc = start()
    ev = create_event(svc, "wedding", threshold=0.5, detector="cnn", top_k=3, keep_images=True, landmarks=68)
    assert ev["settings"] == {"threshold": 0.5, "detector": "cnn", "landmarks": 68, "top_k": 3, "keep_images": True,
                              "min_face_px": None, "unknown_retention_s": 7 * 86400, "refuse_duplicates": False}
    assert ev["person_count"] == 0 and ev["version"] == 0
    dup = svc.client.post(P, json={"name": "wedding"}, headers=svc.auth())
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "event_name_taken"
    create_event(svc, "wedding", account="acct-b")  # unique per account only
    other = create_event(svc, "gala")
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


def test_people_enroll_list_rename_delete_and_images(start, photos):
    svc = start()
    ev = create_event(svc, keep_images=True)
    eid = ev["id"]
    obama = enroll(svc, eid, "Barack Obama", photos["obama_a"], photos["obama_b"])
    assert obama["image_count"] == 2 and len(obama["added"]) == 2 and obama["warnings"] == []
    img = obama["images"][0]
    assert (img["model"], img["model_version"]) == ("dlib_resnet_v1", "1") and img["image_kept"]
    assert img["quality"]["face_px"] >= 40 and img["quality"]["sharpness"] > 12
    hopkins = enroll(svc, eid, "Anthony Hopkins", photos["hopkins_a"])
    same_name = enroll(svc, eid, "Anthony Hopkins", photos["hopkins_b"], status=409)
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
    assert len(blobs(svc)) == 4

    r = svc.client.delete(f"{P}/{eid}/people/{obama['id']}/images/{img['id']}", headers=svc.auth())
    assert r.json() == {"deleted": {"images": 1, "blobs": 1}}
    r = svc.client.delete(f"{P}/{eid}/people/{obama['id']}", headers=svc.auth())
    assert r.json()["deleted"] == {"people": 1, "images": 1, "blobs": 1}
    assert svc.client.get(f"{P}/{eid}/people/{obama['id']}", headers=svc.auth()).status_code == 404
    assert rows(svc, FaceEmbedding) == 2 and len(blobs(svc)) == 2


def test_images_are_not_kept_unless_the_event_says_so(start, photos):
    svc = start()
    eid = create_event(svc)["id"]
    person = enroll(svc, eid, "Obama", photos["obama_a"])
    assert blobs(svc) == [] and person["images"][0]["image_kept"] is False
    r = svc.client.get(f"{P}/{eid}/people/{person['id']}/images/{person['images'][0]['id']}", headers=svc.auth())
    assert r.status_code == 404 and r.json()["error"]["code"] == "image_not_kept"


def test_enrollment_quality_checks_refuse_with_clear_422(start, photos, faces):
    svc = start()
    eid = create_event(svc)["id"]
    cases = {
        "no_face": sample_jpeg(400, 300),
        "multiple_faces": photos["two_faces"],
        "face_too_blurred": jpg(Image.open(io.BytesIO(photos["obama_c"])).filter(
            __import__("PIL.ImageFilter", fromlist=["GaussianBlur"]).GaussianBlur(4))),
    }
    for code, data in cases.items():
        err = enroll(svc, eid, "someone", photos["obama_a"], data, status=422)["error"]
        assert err["code"] == code, err
        assert err["message"] and err["details"]["index"] == 1 and err["details"]["file"] == "someone1.jpg"
    assert enroll(svc, eid, "someone", photos["two_faces"], status=422)["error"]["details"]["faces"] == 2
    both = enroll(svc, eid, "largest", photos["two_faces"], largest=True)  # unless the caller asks for the largest
    assert both["image_count"] == 1
    assert rows(svc, Person) == 1 and rows(svc, FaceEmbedding) == 1  # refused requests stored nothing
    bad = svc.client.post(f"{P}/{eid}/people", data={"name": "x"},
                          files=[("files", ("x.txt", b"not an image at all" * 10, "text/plain"))], headers=svc.auth())
    assert bad.status_code == 415 and bad.json()["error"]["code"] == "not_an_image"

    small = start(enroll_min_face_px=200)
    eid = create_event(small, "small")["id"]
    err = enroll(small, eid, "tiny", photos["obama_b"], status=422)["error"]
    assert err["code"] == "face_too_small" and err["details"]["face_px"] < 200


def test_duplicate_person_warns_or_is_refused(start, photos):
    svc = start()
    eid = create_event(svc)["id"]
    obama = enroll(svc, eid, "Obama", photos["obama_a"])
    twin = enroll(svc, eid, "Barack", photos["obama_b"])
    (warning,) = twin["warnings"]
    assert warning["code"] == "possible_duplicate" and warning["person_id"] == obama["id"]
    assert warning["person_name"] == "Obama" and warning["distance"] < 0.6
    # another photo of Obama added to Obama: no warning about Obama himself, only about the other entry
    r = svc.client.post(f"{P}/{eid}/people/{obama['id']}/images",
                        files=[("files", ("o.jpg", photos["obama_c"], "image/jpeg"))], headers=svc.auth())
    assert r.status_code == 201
    assert [w["person_id"] for w in r.json()["warnings"]] == [twin["id"]]
    refused = enroll(svc, eid, "Barack H.", photos["obama_c"], refuse_duplicates=True, status=409)
    assert refused["error"]["code"] == "duplicate_person"
    assert refused["error"]["details"]["matches"][0]["person_id"] in (obama["id"], twin["id"])
    svc.client.patch(f"{P}/{eid}", json={"refuse_duplicates": True}, headers=svc.auth())
    assert enroll(svc, eid, "B. Obama", photos["obama_c"], status=409)["error"]["code"] == "duplicate_person"
    assert enroll(svc, eid, "Hopkins", photos["hopkins_a"])["warnings"] == []
    assert rows(svc, Person) == 3


def test_identify_every_face_with_top_k_threshold_and_confidence(start, photos, data_dir):
    svc = start()
    eid = create_event(svc, top_k=2)["id"]
    enroll(svc, eid, "Obama", photos["obama_a"])
    enroll(svc, eid, "Hopkins", photos["hopkins_a"])
    kit = enroll(svc, eid, "Kit", photos["kit"])
    rose = (data_dir / "faces/face_recognition/knn_examples/train/rose_leslie/img2.jpg").read_bytes()
    enroll(svc, eid, "Rose", rose)

    res = identify(svc, eid, photos["obama_c"])
    (face,) = res["faces"]
    assert face["passed"] and face["match"]["person_name"] == "Obama" and face["match"]["distance"] < 0.6
    cal = load_calibration("dlib_resnet_v1")
    assert face["match"]["confidence"] == pytest.approx(cal.score(face["match"]["distance"]), abs=1e-5)
    assert len(face["candidates"]) == 2
    assert face["candidates"][0]["distance"] <= face["candidates"][1]["distance"]
    assert face["unknown_id"] is None and res["threshold"] == 0.6 and res["gallery_size"] == {"people": 4,
                                                                                             "embeddings": 4}
    assert set(face["box"]) == {"x", "y", "width", "height"} and face["box"]["width"] > 40

    two = identify(svc, eid, (data_dir / "faces/face_recognition/knn_examples/test/kit_with_rose.jpg").read_bytes())
    assert sorted(f["match"]["person_name"] for f in two["faces"] if f["passed"]) == ["Kit", "Rose"]
    assert all(f["match"]["person_id"] != kit["id"] or f["passed"] for f in two["faces"])

    strict = identify(svc, eid, photos["obama_c"], threshold=0.05, top_k=4, store_unknowns=False)
    (face,) = strict["faces"]
    # nobody passes: no match (the nearest person is a candidate that did not pass)
    assert not face["passed"] and face["match"] is None and len(face["candidates"]) == 4
    assert face["candidates"][0]["person_name"] == "Obama" and not any(c["passed"] for c in face["candidates"])
    assert face["unknown_id"] is None and rows(svc, UnknownFace) == 0
    nobody = identify(svc, eid, sample_jpeg(400, 300))
    assert nobody["faces"] == []
    bad = svc.client.post(f"{P}/{eid}/identify", files={"file": ("x.png", png_bytes(Image.new("RGB", (8, 8))),
                                                                 "image/png")}, headers=svc.auth())
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "image_too_small"


def test_verify_a_claimed_identity(start, photos):
    svc = start()
    eid = create_event(svc)["id"]
    obama = enroll(svc, eid, "Obama", photos["obama_a"])
    hopkins = enroll(svc, eid, "Hopkins", photos["hopkins_a"])

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


def test_unknown_face_confirmed_as_new_person_is_recognised_next_time(start, photos):
    svc = start()
    eid = create_event(svc, keep_images=False)["id"]
    enroll(svc, eid, "Obama", photos["obama_a"])

    first = identify(svc, eid, photos["clapton_a"])
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
    assert blobs(svc) == []  # the event keeps no images: the crop went with the unknown

    again = identify(svc, eid, photos["clapton_b"])
    (face,) = again["faces"]
    assert face["passed"] and face["match"]["person_id"] == clapton["id"]

    # an unknown confirmed into an existing person; another one discarded
    kit = identify(svc, eid, photos["kit"])["faces"][0]["unknown_id"]
    hop = identify(svc, eid, photos["hopkins_a"])["faces"][0]["unknown_id"]
    r = svc.client.post(f"{P}/{eid}/unknowns/{kit}/confirm", json={"person_id": clapton["id"]}, headers=svc.auth())
    assert r.status_code == 201 and r.json()["image_count"] == 2
    r = svc.client.delete(f"{P}/{eid}/unknowns/{hop}", headers=svc.auth())
    assert r.json() == {"deleted": {"unknowns": 1, "blobs": 1}}
    assert svc.client.delete(f"{P}/{eid}/unknowns/{hop}", headers=svc.auth()).status_code == 404
    assert rows(svc, UnknownFace) == 0 and blobs(svc) == []


def test_unknowns_expire_after_the_retention_period(start, photos):
    svc = start()
    eid = create_event(svc, unknown_retention_s=0)["id"]
    assert identify(svc, eid, photos["kit"])["faces"][0]["unknown_id"] is None  # retention 0: not kept
    svc.client.patch(f"{P}/{eid}", json={"unknown_retention_s": 1}, headers=svc.auth())
    uid = identify(svc, eid, photos["kit"])["faces"][0]["unknown_id"]
    assert uid and len(blobs(svc)) == 1
    from datetime import timedelta

    from sqlalchemy import update

    from bio_shared.db import session_scope, utcnow
    with session_scope(svc.rt.sessions) as s:
        s.execute(update(UnknownFace).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert svc.client.get(f"{P}/{eid}/unknowns/{uid}/crop", headers=svc.auth()).status_code == 404
    assert svc.client.get(f"{P}/{eid}/unknowns", headers=svc.auth()).json()["total"] == 0
    assert rows(svc, UnknownFace) == 0 and blobs(svc) == []


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_bulk_enrollment_from_a_zip_reports_every_file(start, photos):
    svc = start()
    eid = create_event(svc)["id"]
    archive = _zip({
        "obama/a.jpg": photos["obama_a"], "obama/b.jpg": photos["obama_b"],
        "hopkins/1.jpg": photos["hopkins_a"],
        "hopkins/broken.jpg": photos["hopkins_b"][:300],
        "nobody/noise.jpg": sample_jpeg(300, 300),
        "group/two.jpg": photos["two_faces"],
        "notes.txt": b"files at the top level belong to nobody",
        "__MACOSX/obama/._a.jpg": b"resource fork",
    })
    r = svc.client.post(f"{P}/{eid}/enroll-zip", files={"file": ("people.zip", archive, "application/zip")},
                        headers=svc.auth())
    assert r.status_code == 202, r.text
    job = svc.wait(r.json()["status_url"])
    assert job["status"] == "succeeded", job
    result = job["result"]
    by_file = {line["file"]: line for line in result["report"]}
    assert set(by_file) == {"obama/a.jpg", "obama/b.jpg", "hopkins/1.jpg", "hopkins/broken.jpg", "nobody/noise.jpg",
                            "group/two.jpg", "notes.txt", "__MACOSX/obama/._a.jpg"}  # every file is reported
    assert {f for f, line in by_file.items() if line["status"] == "enrolled"} == {"obama/a.jpg", "obama/b.jpg",
                                                                                  "hopkins/1.jpg"}
    assert by_file["hopkins/broken.jpg"]["code"] == "corrupt_image"
    assert by_file["nobody/noise.jpg"]["code"] == "no_face"
    assert by_file["group/two.jpg"]["code"] == "multiple_faces"
    assert by_file["notes.txt"]["code"] == "no_person_folder"
    assert by_file["__MACOSX/obama/._a.jpg"] | {"message": ""} == {
        "file": "__MACOSX/obama/._a.jpg", "person": "obama", "status": "skipped", "code": "skipped_metadata",
        "message": ""}
    assert (result["files"], result["enrolled"], result["skipped"], result["failed"], result["people_created"]) == (
        8, 3, 1, 4, 2)
    assert result["failures_by_code"] == {"corrupt_image": 1, "no_face": 1, "multiple_faces": 1,
                                          "no_person_folder": 1}
    assert job["progress"] == 1.0 and result["filename"] == "people.zip"
    people = svc.client.get(f"{P}/{eid}/people", headers=svc.auth()).json()
    assert {p["name"]: p["image_count"] for p in people["items"]} == {"obama": 2, "hopkins": 1}
    assert blobs(svc) == []  # the archive is removed once processed

    # a re-run of the same job (worker lost after enrolling) does not enroll twice
    from sqlalchemy import update

    from bio_shared.db import session_scope
    svc.rt.blobs.put(f"acct-a/face-zips/{job['id']}.zip", archive)
    m = svc.rt.jobs.model
    with session_scope(svc.rt.sessions) as s:
        row = s.get(m, job["id"])
        params = dict(row.params) | {"zip_key": f"acct-a/face-zips/{job['id']}.zip"}
        s.execute(update(m).where(m.id == job["id"]).values(status="pending", result=None, params=params))
    svc.rt.jobs.execute(job["id"])
    rerun = svc.wait(job["status_url"])
    assert rerun["result"]["enrolled"] == 3 and rows(svc, FaceEmbedding) == 3

    not_zip = svc.client.post(f"{P}/{eid}/enroll-zip", files={"file": ("x.zip", b"PK\x03\x04 nope", "application/zip")},
                              headers=svc.auth())
    assert not_zip.status_code == 422 and not_zip.json()["error"]["code"] == "not_a_zip"


def test_reset_and_delete_cascade_leave_nothing_behind(start, photos):
    svc = start()
    eid = create_event(svc, keep_images=True)["id"]
    enroll(svc, eid, "Obama", photos["obama_a"], photos["obama_b"])
    enroll(svc, eid, "Hopkins", photos["hopkins_a"])
    identify(svc, eid, photos["kit"])  # one unknown with its crop
    assert len(blobs(svc)) == 4
    version = svc.client.get(f"{P}/{eid}", headers=svc.auth()).json()["version"]

    r = svc.client.post(f"{P}/{eid}/reset", headers=svc.auth())
    assert r.status_code == 200
    assert r.json()["deleted"] == {"people": 2, "images": 3, "blobs": 3}
    event = r.json()["event"]
    assert event["person_count"] == 0 and event["settings"]["keep_images"] and event["version"] > version
    assert identify(svc, eid, photos["obama_c"], store_unknowns=False)["gallery_size"] == {"people": 0,
                                                                                          "embeddings": 0}

    enroll(svc, eid, "Obama", photos["obama_a"])
    r = svc.client.delete(f"{P}/{eid}", headers=svc.auth())
    assert r.json()["deleted"] == {"people": 1, "images": 1, "unknowns": 1, "blobs": 2}
    for model in (FaceEvent, Person, FaceEmbedding, UnknownFace):
        assert rows(svc, model) == 0, model
    assert blobs(svc) == []


def test_account_b_cannot_see_or_change_account_a(start, photos):
    svc = start()
    eid = create_event(svc, keep_images=True)["id"]
    person = enroll(svc, eid, "Obama", photos["obama_a"])
    pid, iid = person["id"], person["images"][0]["id"]
    uid = identify(svc, eid, photos["kit"])["faces"][0]["unknown_id"]
    b = svc.auth("acct-b")
    probe = {"file": ("p.jpg", photos["obama_b"], "image/jpeg")}
    many = [("files", ("p.jpg", photos["obama_b"], "image/jpeg"))]
    attempts = [
        ("GET", f"{P}/{eid}", {}), ("PATCH", f"{P}/{eid}", {"json": {"name": "mine"}}), ("DELETE", f"{P}/{eid}", {}),
        ("POST", f"{P}/{eid}/reset", {}), ("GET", f"{P}/{eid}/people", {}),
        ("POST", f"{P}/{eid}/people", {"files": many, "data": {"name": "x"}}),
        ("GET", f"{P}/{eid}/people/{pid}", {}), ("PATCH", f"{P}/{eid}/people/{pid}", {"json": {"name": "y"}}),
        ("DELETE", f"{P}/{eid}/people/{pid}", {}), ("POST", f"{P}/{eid}/people/{pid}/images", {"files": many}),
        ("GET", f"{P}/{eid}/people/{pid}/images/{iid}", {}), ("DELETE", f"{P}/{eid}/people/{pid}/images/{iid}", {}),
        ("POST", f"{P}/{eid}/identify", {"files": probe}), ("POST", f"{P}/{eid}/people/{pid}/verify", {"files": probe}),
        ("GET", f"{P}/{eid}/unknowns", {}), ("GET", f"{P}/{eid}/unknowns/{uid}/crop", {}),
        ("POST", f"{P}/{eid}/unknowns/{uid}/confirm", {"json": {"name": "z"}}),
        ("DELETE", f"{P}/{eid}/unknowns/{uid}", {}),
        ("POST", f"{P}/{eid}/enroll-zip", {"files": {"file": ("a.zip", _zip({"a/b.jpg": photos["obama_a"]}),
                                                              "application/zip")}}),
    ]
    for method, path, kw in attempts:
        for headers in (b, svc.auth("acct-b", "admin")):
            r = svc.client.request(method, path, headers=headers, **kw)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"]["code"] == "event_not_found"
    assert svc.client.get(P, headers=b).json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
    # account A's data is untouched
    assert svc.client.get(f"{P}/{eid}/people/{pid}", headers=svc.auth()).json()["name"] == "Obama"
    assert svc.client.get(f"{P}/{eid}/unknowns", headers=svc.auth()).json()["total"] == 1
    assert svc.client.get(f"{P}/{eid}", headers=svc.auth()).json()["name"] == "party"
    # without the gateway identity nothing is reachable
    assert svc.client.get(P).status_code == 401


def test_account_purge_removes_galleries(start, photos):
    svc = start()
    eid = create_event(svc, keep_images=True)["id"]
    enroll(svc, eid, "Obama", photos["obama_a"])
    create_event(svc, "kept", account="acct-b")
    r = svc.client.delete("/api/v1/faces/admin/owners/acct-a", headers=svc.auth("root", "admin"))
    assert r.status_code == 200
    deleted = {k: v for k, v in r.json()["deleted"].items() if v}
    # the enrollment ran as a job (synchronous routes wait for a job): its row goes too
    assert deleted == {"face_embeddings": 1, "face_people": 1, "face_events": 1, "face_recognition_jobs": 1, "blobs": 1}
    assert rows(svc, FaceEvent) == 1 and blobs(svc) == []


def test_gallery_cache_follows_the_version_written_by_another_replica(start, photos):
    """Two app instances on one database: a change through one is seen by the other's cached matrix."""
    one = start()
    two = start()
    assert one.rt is not two.rt
    eid = create_event(one)["id"]
    enroll(one, eid, "Obama", photos["obama_a"])
    assert identify(two, eid, photos["obama_b"])["faces"][0]["passed"]
    loads = face_state(two.rt).galleries.loads
    assert identify(two, eid, photos["obama_b"])["faces"][0]["passed"]
    assert face_state(two.rt).galleries.loads == loads  # cached: not reloaded
    pid = one.client.get(f"{P}/{eid}/people", headers=one.auth()).json()["items"][0]["id"]
    one.client.delete(f"{P}/{eid}/people/{pid}", headers=one.auth())
    res = identify(two, eid, photos["obama_b"], store_unknowns=False)
    assert res["faces"][0]["match"] is None and res["gallery_size"]["people"] == 0
    assert face_state(two.rt).galleries.loads == loads + 1


def test_png32_and_vectors_round_trip(start, photos):
    svc = start()
    eid = create_event(svc)["id"]
    person = enroll(svc, eid, "someone", photos["png32"])
    with svc.rt.sessions() as s:
        (vec,) = s.scalars(select(FaceEmbedding.vector).where(FaceEmbedding.person_id == person["id"]))
    v = np.frombuffer(vec, "<f4")
    assert v.shape == (128,) and np.isfinite(v).all() and 0.2 < np.linalg.norm(v) < 2


def test_synchronous_routes_answer_within_their_time_budget_or_point_to_the_job(start, photos):
    """Enroll, identify and verify run as jobs through the jobs table; past the budget the client gets 503
    with the job's status URL, the job finishes, and the uploads it held are removed either way."""
    svc = start(sync_budget_s=0.001)
    eid = create_event(svc)["id"]
    r = svc.client.post(f"{P}/{eid}/people", data={"name": "Obama"}, headers=svc.auth(),
                        files=[("files", ("o.jpg", photos["obama_a"], "image/jpeg"))])
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["code"] == "time_budget_exceeded" and r.headers["location"] == err["details"]["status_url"]
    job = svc.wait(err["details"]["status_url"])
    assert job["status"] == "succeeded" and job["kind"] == "enroll" and job["result"]["name"] == "Obama"
    r = svc.client.post(f"{P}/{eid}/identify", files={"file": ("p.jpg", photos["obama_b"], "image/jpeg")},
                        headers=svc.auth())
    assert r.status_code == 503
    faces_found = svc.wait(r.json()["error"]["details"]["status_url"])["result"]["faces"]
    assert faces_found[0]["passed"] and faces_found[0]["match"]["person_name"] == "Obama"
    assert blobs(svc) == []  # the uploads the jobs held are gone

    fast = start()  # the default budget: the job's own errors come back as they were, and nothing is kept
    eid = create_event(fast, "other")["id"]
    r = fast.client.post(f"{P}/{eid}/people", data={"name": "noise"}, headers=fast.auth(),
                         files=[("files", ("n.jpg", sample_jpeg(300, 300), "image/jpeg"))])
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_face"
    assert r.json()["error"]["details"] == {"file": "n.jpg", "index": 0}
    assert blobs(fast) == [] and fast.client.get(f"{P}/{eid}/people", headers=fast.auth()).json()["total"] == 0
