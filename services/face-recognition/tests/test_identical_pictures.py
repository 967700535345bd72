"""Identical pictures are enrolled once per person (sha256 of the decoded pixels), in single and bulk
enrollment, and every skip is reported."""

from __future__ import annotations

import io
import zipfile

from PIL import Image, PngImagePlugin
from sqlalchemy import func, select

from bio_face_recognition.models import FaceEmbedding

P = "/api/v1/faces/events"


def _embeddings(svc) -> int:
    with svc.rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(FaceEmbedding))


def _png(data: bytes, note: str | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    if note:
        info.add_text("Comment", note)
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def test_single_enrollment_skips_pictures_the_person_has(start, photos):
    svc = start()
    eid = svc.client.post(P, json={"name": "dups", "keep_images": True}, headers=svc.auth()).json()["id"]
    a = _png(photos["obama_a"])
    r = svc.client.post(f"{P}/{eid}/people", data={"name": "Obama"}, headers=svc.auth(),
                        files=[("files", ("a.png", a, "image/png")), ("files", ("copy.png", a, "image/png"))])
    assert r.status_code == 201, r.text
    person = r.json()
    assert len(person["added"]) == 1 and person["image_count"] == 1
    assert person["skipped"] == [{"code": "duplicate_image", "file": "copy.png", "index": 1, "image_id": None,
                                  "message": "this picture is already enrolled for the person"}]
    first = person["added"][0]["id"]
    version = svc.client.get(f"{P}/{eid}", headers=svc.auth()).json()["version"]

    # the same pixels in another file (a metadata chunk added), next to a new picture
    same = _png(photos["obama_a"], note="exported again")
    assert same != a
    r = svc.client.post(f"{P}/{eid}/people/{person['id']}/images", headers=svc.auth(),
                        files=[("files", ("again.png", same, "image/png")),
                               ("files", ("new.jpg", photos["obama_b"], "image/jpeg"))])
    assert r.status_code == 201, r.text
    body = r.json()
    assert [s["image_id"] for s in body["skipped"]] == [first] and body["skipped"][0]["index"] == 0
    assert len(body["added"]) == 1 and body["image_count"] == 2

    # only copies: nothing stored, nothing changed
    blobs = sorted(p.name for p in svc.rt.blobs.root.rglob("*") if p.is_file())
    r = svc.client.post(f"{P}/{eid}/people/{person['id']}/images", headers=svc.auth(),
                        files=[("files", ("x.png", a, "image/png"))])
    assert r.status_code == 201 and r.json()["added"] == [] and len(r.json()["skipped"]) == 1
    assert _embeddings(svc) == 2 and sorted(p.name for p in svc.rt.blobs.root.rglob("*") if p.is_file()) == blobs
    assert svc.client.get(f"{P}/{eid}", headers=svc.auth()).json()["version"] == version + 1  # only the new.jpg add

    # another person may have the same picture (a duplicate-person warning, not a skip)
    r = svc.client.post(f"{P}/{eid}/people", data={"name": "Twin"}, headers=svc.auth(),
                        files=[("files", ("a.png", a, "image/png"))])
    assert r.status_code == 201 and len(r.json()["added"]) == 1 and r.json()["warnings"]


def test_the_same_zip_twice_enrolls_nothing_new(start, photos):
    svc = start()
    eid = svc.client.post(P, json={"name": "zip"}, headers=svc.auth()).json()["id"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("obama/a.jpg", photos["obama_a"])
        zf.writestr("obama/b.jpg", photos["obama_b"])
        zf.writestr("hopkins/1.jpg", photos["hopkins_a"])
    results = []
    for _ in range(2):
        r = svc.client.post(f"{P}/{eid}/enroll-zip", files={"file": ("team.zip", buf.getvalue(), "application/zip")},
                            headers=svc.auth())
        assert r.status_code == 202, r.text
        results.append(svc.wait(r.json()["status_url"])["result"])
    first, second = results
    assert (first["enrolled"], first["skipped"]) == (3, 0)
    assert (second["enrolled"], second["skipped"], second["failed"]) == (0, 3, 0)
    assert second["skipped_by_code"] == {"duplicate_image": 3} and second["people_created"] == 0
    assert all(line["image_id"] for line in second["report"])
    assert _embeddings(svc) == 3
