"""Bulk enrollment, reset and delete cascades, account isolation and purge, the gallery cache across
replicas, vectors, and the time budget of the synchronous routes."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from bio_face_recognition.models import FaceEmbedding, FaceEvent, Person, UnknownFace
from bio_face_recognition.runtime import face_state
from bio_testing.shared import sample_jpeg

P = "/api/v1/faces/events"


def test_bulk_enrollment_from_a_zip_reports_every_file(api, start, photos):
    svc = start()
    eid = api.create_event(svc)["id"]
    archive = api.zip({
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
    assert api.blobs(svc) == []  # the archive is removed once processed

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
    assert rerun["result"]["enrolled"] == 3 and api.rows(svc, FaceEmbedding) == 3

    not_zip = svc.client.post(f"{P}/{eid}/enroll-zip", files={"file": ("x.zip", b"PK\x03\x04 nope", "application/zip")},
                              headers=svc.auth())
    assert not_zip.status_code == 422 and not_zip.json()["error"]["code"] == "not_a_zip"


def test_reset_and_delete_cascade_leave_nothing_behind(api, start, photos):
    svc = start()
    eid = api.create_event(svc, keep_images=True)["id"]
    api.enroll(svc, eid, "Obama", photos["obama_a"], photos["obama_b"])
    api.enroll(svc, eid, "Hopkins", photos["hopkins_a"])
    api.identify(svc, eid, photos["kit"])  # one unknown with its crop
    assert len(api.blobs(svc)) == 4
    version = svc.client.get(f"{P}/{eid}", headers=svc.auth()).json()["version"]

    r = svc.client.post(f"{P}/{eid}/reset", headers=svc.auth())
    assert r.status_code == 200
    assert r.json()["deleted"] == {"people": 2, "images": 3, "blobs": 3}
    event = r.json()["event"]
    assert event["person_count"] == 0 and event["settings"]["keep_images"] and event["version"] > version
    assert api.identify(svc, eid, photos["obama_c"], store_unknowns=False)["gallery_size"] == {"people": 0,
                                                                                          "embeddings": 0}

    api.enroll(svc, eid, "Obama", photos["obama_a"])
    r = svc.client.delete(f"{P}/{eid}", headers=svc.auth())
    assert r.json()["deleted"] == {"people": 1, "images": 1, "unknowns": 1, "blobs": 2}
    for model in (FaceEvent, Person, FaceEmbedding, UnknownFace):
        assert api.rows(svc, model) == 0, model
    assert api.blobs(svc) == []


def test_account_b_cannot_see_or_change_account_a(api, start, photos):
    svc = start()
    eid = api.create_event(svc, keep_images=True)["id"]
    person = api.enroll(svc, eid, "Obama", photos["obama_a"])
    pid, iid = person["id"], person["images"][0]["id"]
    uid = api.identify(svc, eid, photos["kit"])["faces"][0]["unknown_id"]
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
        ("POST", f"{P}/{eid}/enroll-zip", {"files": {"file": ("a.zip", api.zip({"a/b.jpg": photos["obama_a"]}),
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


def test_account_purge_removes_galleries(api, start, photos):
    svc = start()
    eid = api.create_event(svc, keep_images=True)["id"]
    api.enroll(svc, eid, "Obama", photos["obama_a"])
    api.create_event(svc, "kept", account="acct-b")
    r = svc.client.delete("/api/v1/faces/admin/owners/acct-a", headers=svc.auth("root", "admin"))
    assert r.status_code == 200
    deleted = {k: v for k, v in r.json()["deleted"].items() if v}
    # the enrollment ran as a job (synchronous routes wait for a job): its row goes too
    assert deleted == {"face_embeddings": 1, "face_people": 1, "face_events": 1, "face_recognition_jobs": 1, "blobs": 1}
    assert api.rows(svc, FaceEvent) == 1 and api.blobs(svc) == []


def test_gallery_cache_follows_the_version_written_by_another_replica(api, start, photos):
    """Two app instances on one database: a change through one is seen by the other's cached matrix."""
    one = start()
    two = start()
    assert one.rt is not two.rt
    eid = api.create_event(one)["id"]
    api.enroll(one, eid, "Obama", photos["obama_a"])
    assert api.identify(two, eid, photos["obama_b"])["faces"][0]["passed"]
    loads = face_state(two.rt).galleries.loads
    assert api.identify(two, eid, photos["obama_b"])["faces"][0]["passed"]
    assert face_state(two.rt).galleries.loads == loads  # cached: not reloaded
    pid = one.client.get(f"{P}/{eid}/people", headers=one.auth()).json()["items"][0]["id"]
    one.client.delete(f"{P}/{eid}/people/{pid}", headers=one.auth())
    res = api.identify(two, eid, photos["obama_b"], store_unknowns=False)
    assert res["faces"][0]["match"] is None and res["gallery_size"]["people"] == 0
    assert face_state(two.rt).galleries.loads == loads + 1


def test_png32_and_vectors_round_trip(api, start, photos):
    svc = start()
    eid = api.create_event(svc)["id"]
    person = api.enroll(svc, eid, "someone", photos["png32"])
    with svc.rt.sessions() as s:
        (vec,) = s.scalars(select(FaceEmbedding.vector).where(FaceEmbedding.person_id == person["id"]))
    v = np.frombuffer(vec, "<f4")
    assert v.shape == (128,) and np.isfinite(v).all() and 0.2 < np.linalg.norm(v) < 2


def test_synchronous_routes_answer_within_their_time_budget_or_point_to_the_job(api, start, photos):
    """Enroll, identify and verify run as jobs through the jobs table; past the budget the client gets 503
    with the job's status URL, the job finishes, and the uploads it held are removed either way."""
    svc = start(sync_budget_s=0.001)
    eid = api.create_event(svc)["id"]
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
    assert api.blobs(svc) == []  # the uploads the jobs held are gone

    fast = start()  # the default budget: the job's own errors come back as they were, and nothing is kept
    eid = api.create_event(fast, "other")["id"]
    r = fast.client.post(f"{P}/{eid}/people", data={"name": "noise"}, headers=fast.auth(),
                         files=[("files", ("n.jpg", sample_jpeg(300, 300), "image/jpeg"))])
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_face"
    assert r.json()["error"]["details"] == {"file": "n.jpg", "index": 0}
    assert api.blobs(fast) == [] and fast.client.get(f"{P}/{eid}/people", headers=fast.auth()).json()["total"] == 0
