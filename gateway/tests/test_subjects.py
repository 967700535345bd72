"""Data-subject export and erasure through the embedded gateway, across fingerprint and faces."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from bio_testing.gateway import user

pytestmark = pytest.mark.data
DB1 = "fingerprints/fvc2002/DB1_B"


def _prints(data_dir: Path, *names: str) -> list:
    return [("files", (f"{n}.tif", (data_dir / DB1 / f"{n}.tif").read_bytes(), "image/tiff")) for n in names]


def _enroll(gw, auth, data_dir: Path, subject: str, *names: str) -> dict:
    r = gw.post("/api/v1/fingerprint/enroll", headers=auth, data={"subject": subject, "finger": "2"},
                files=_prints(data_dir, *names))
    assert r.status_code == 201, r.text
    return r.json()


def test_export_then_erase_one_subject_everywhere(gw, data_dir: Path) -> None:
    alice_acct, other_acct = user(gw, "owner@example.org"), user(gw, "other@example.org")
    enrolled = _enroll(gw, alice_acct, data_dir, "alice", "101_1", "101_2")
    _enroll(gw, alice_acct, data_dir, "bob", "102_1")
    _enroll(gw, other_acct, data_dir, "alice", "103_1")  # another account's "alice": never touched
    eid = gw.post("/api/v1/faces/events", json={"name": "staff", "keep_images": True}, headers=alice_acct).json()["id"]
    photo = (data_dir / "faces" / "face_recognition" / "test_images" / "obama.jpg").read_bytes()
    person = gw.post(f"/api/v1/faces/events/{eid}/people", headers=alice_acct, data={"name": "alice"},
                     files=[("files", ("a.jpg", photo, "image/jpeg"))])
    assert person.status_code == 201, person.text

    r = gw.get("/api/v1/subjects/alice/export", headers=alice_acct)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(zf.namelist())
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["services"]["fingerprint"]["records"] == 4  # 2 templates + their 2 outputs
    isos = [n for n in names if n.startswith("fingerprint/templates/") and n.endswith(".iso")]
    assert len(isos) == 2 and all(zf.read(n)[:4] == b"FMR\x00" for n in isos)
    assert sum(n.startswith("fingerprint/images/") for n in names) == 2
    faces = json.loads(zf.read("face_recognition/records.json"))
    assert [f["type"] for f in faces] == ["person", "embedding"] and faces[0]["id"] == person.json()["id"]
    assert zf.read(next(n for n in names if n.startswith("face_recognition/people/"))) == photo
    assert "vector" not in json.dumps(faces)  # embedding metadata only
    audit = [json.loads(x) for x in zf.read("audit.jsonl").splitlines()]
    template_ids = {i["template"]["id"] for i in enrolled["items"]}
    assert any(template_ids & set(e["resources"].get("answer.id", [])) for e in audit)
    assert {e["action"] for e in audit} >= {"fingerprint.enroll", "faces.person_create"}

    erased = gw.delete("/api/v1/subjects/alice", headers=alice_acct)
    assert erased.status_code == 200, erased.text
    assert erased.json()["deleted"]["fingerprint"] == {"templates": 2, "outputs": 2, "blobs": 2}
    assert erased.json()["deleted"]["face_recognition"] == {"people": 1, "images": 1, "blobs": 1}
    again = gw.delete("/api/v1/subjects/alice", headers=alice_acct).json()["deleted"]
    assert all(v == 0 for counts in again.values() for v in counts.values())  # idempotent

    empty = zipfile.ZipFile(io.BytesIO(gw.get("/api/v1/subjects/alice/export", headers=alice_acct).content))
    assert json.loads(empty.read("manifest.json"))["services"]["fingerprint"]["records"] == 0
    templates = gw.get("/api/v1/fingerprint/templates", headers=alice_acct).json()["items"]
    assert {t["subject"] for t in templates} == {"bob"}
    assert {t["subject"] for t in gw.get("/api/v1/fingerprint/templates", headers=other_acct).json()["items"]} == {
        "alice"}
    trail = gw.get("/api/v1/audit?action=subject.erase", headers=alice_acct).json()["items"]
    assert len(trail) == 2 and trail[0]["resources"]["subject_ref"] == "alice"
    assert gw.get("/api/v1/subjects/%00x/export", headers=alice_acct).status_code == 422
