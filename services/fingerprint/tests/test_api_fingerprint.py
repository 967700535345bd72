"""The fingerprint API on real prints: enroll, verify, identify, templates, batch jobs, outputs, clean-up,
distortion, bad input and account isolation."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bio_testing.shared import png_bytes, sample_jpeg, truncated_png, wait_for_job

P = "/api/v1/fingerprint"
DB1 = "fvc2002/DB1_B"


def _file(fp_root: Path, rel: str) -> tuple[str, bytes, str]:
    return (Path(rel).name, (fp_root / rel).read_bytes(), "image/tiff")


def _enroll(svc, fp_root, subject, finger, rels, account="acct-a", **form):
    return svc.client.post(f"{P}/enroll", files=[("files", _file(fp_root, r)) for r in rels],
                           data={"subject": subject, "finger": str(finger), **form}, headers=svc.auth(account))


@pytest.fixture(scope="module")
def blank_png() -> bytes:
    return png_bytes(Image.fromarray(np.full((300, 300), 235, np.uint8)))


def test_enroll_verify_identify_end_to_end(start, fp_root):
    svc = start()
    r = _enroll(svc, fp_root, "alice", 2, [f"{DB1}/101_1.tif", f"{DB1}/101_2.tif"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["enrolled"] == 2 and [i["template"]["impression"] for i in body["items"]] == [1, 2]
    t = body["items"][0]["template"]
    assert t["finger_name"] == "right index" and t["algorithm"] == "bio-fp-leader" and t["algorithm_version"]
    assert _enroll(svc, fp_root, "bob", 7, [f"{DB1}/102_1.tif"]).status_code == 201
    assert _enroll(svc, fp_root, "carol", 1, [f"{DB1}/103_1.tif"]).status_code == 201

    # 1:1 against the subject, with a probe image
    v = svc.client.post(f"{P}/verify", files={"file": _file(fp_root, f"{DB1}/101_3.tif")},
                        data={"subject": "alice", "fmr": "0.001"}, headers=svc.auth())
    assert v.status_code == 200, v.text
    assert v.json()["match"] is True and v.json()["score"] >= v.json()["threshold"]
    assert v.json()["compared"] == 2
    v = svc.client.post(f"{P}/verify", files={"file": _file(fp_root, f"{DB1}/101_3.tif")},
                        data={"subject": "bob"}, headers=svc.auth())
    assert v.json()["match"] is False

    # 1:N
    ident = svc.client.post(f"{P}/identify", files={"file": _file(fp_root, f"{DB1}/102_2.tif")},
                            data={"top_k": "3", "fmr": "0.01"}, headers=svc.auth())
    assert ident.status_code == 200, ident.text
    cands = ident.json()["candidates"]
    assert ident.json()["searched"] == 4
    assert cands and cands[0]["subject"] == "bob" and cands[0]["finger"] == 7
    assert all(c["subject"] != "alice" for c in cands)

    # templates: list, export ISO and JSON, re-import, same score
    listing = svc.client.get(f"{P}/templates", params={"subject": "alice"}, headers=svc.auth()).json()["items"]
    assert len(listing) == 2
    iso = svc.client.get(f"{P}/templates/{t['id']}/export", params={"format": "iso"}, headers=svc.auth())
    assert iso.status_code == 200 and iso.content[:4] == b"FMR\x00"
    js = svc.client.get(f"{P}/templates/{t['id']}/export", params={"format": "json"}, headers=svc.auth()).json()
    assert js["algorithm"] == "bio-fp-leader" and js["subject"] == "alice" and len(js["minutiae"]) == t["minutiae_count"]
    v_img = svc.client.post(f"{P}/verify", files={"template": ("t.iso", iso.content)},
                            data={"template_id": listing[1]["id"]}, headers=svc.auth()).json()
    v_json = svc.client.post(f"{P}/verify", files={"template": ("t.json", json.dumps(js).encode())},
                             data={"template_id": listing[1]["id"]}, headers=svc.auth()).json()
    assert v_img["match"] and v_json["match"]
    assert v_img["score"] == pytest.approx(v_json["score"], rel=0.05)
    imp = svc.client.post(f"{P}/templates/import", files={"file": ("t.iso", iso.content)},
                          data={"subject": "alice-copy"}, headers=svc.auth())
    assert imp.status_code == 201 and imp.json()["finger"] == 2 and imp.json()["source"] == "iso"

    # delete
    assert svc.client.delete(f"{P}/templates/{imp.json()['id']}", headers=svc.auth()).status_code == 204
    assert svc.client.get(f"{P}/templates/{imp.json()['id']}", headers=svc.auth()).status_code == 404


def test_sourceafis_iso_templates_import_through_the_api(start, fp_root):
    svc = start()
    folder = fp_root / "sourceafis"
    ids = {}
    for name in ("matching", "nonmatching"):
        r = svc.client.post(f"{P}/templates/import", files={"file": (f"iso-{name}.dat",
                                                                       (folder / f"iso-{name}.dat").read_bytes())},
                            data={"subject": name, "finger": "3"}, headers=svc.auth())
        assert r.status_code == 201, r.text
        ids[name] = r.json()
    assert ids["matching"]["minutiae_count"] == 38 and ids["matching"]["algorithm"] == "iso-19794-2"
    ident = svc.client.post(f"{P}/identify", files={"template": ("p.dat", (folder / "iso-probe.dat").read_bytes())},
                            data={"template_format": "iso"}, headers=svc.auth()).json()
    assert [c["subject"] for c in ident["candidates"]] == ["matching"]


def test_enrollment_under_the_quality_minimum_is_refused(start, fp_root, blank_png):
    svc = start(enroll_min_quality=100)
    r = _enroll(svc, fp_root, "dave", 1, [f"{DB1}/104_1.tif"])
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "quality_too_low" and err["details"]["minimum"] == 100
    assert "reasons" in err["details"]["quality"]
    assert svc.client.get(f"{P}/templates", headers=svc.auth()).json()["items"] == []
    svc2 = start()
    r = svc2.client.post(f"{P}/enroll", files=[("files", ("blank.png", blank_png, "image/png"))],
                         data={"subject": "x", "finger": "1"}, headers=svc2.auth())
    assert r.status_code == 422 and r.json()["error"]["code"] == "quality_too_low"


def test_bad_inputs_get_clear_4xx(start, fp_root, data_dir, blank_png):
    svc = start()
    face = (data_dir / "faces" / "openface" / "clapton-1.jpg").read_bytes()
    tiny = png_bytes(Image.fromarray(np.full((8, 8), 100, np.uint8)))
    cases = [
        (("x.txt", b"hello, not an image", "text/plain"), 415, "not_an_image"),
        (("blank.png", blank_png, "image/png"), 422, "unusable_print"),
        (("tiny.png", tiny, "image/png"), 422, "image_too_small"),
        (("face.jpg", face, "image/jpeg"), 422, "unusable_print"),
        (("empty.png", b"", "image/png"), 422, "empty_file"),
    ]
    for f, status, code in cases:
        r = svc.client.post(f"{P}/identify", files={"file": f}, headers=svc.auth())
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (f[0], r.text)
    r = svc.client.post(f"{P}/verify", files={"template": ("t.iso", b"FMR\x00 20\x00garbage")},
                        data={"subject": "x"}, headers=svc.auth())
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_template"
    r = svc.client.post(f"{P}/verify", headers=svc.auth(), data={"subject": "x"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "no_probe"
    r = svc.client.post(f"{P}/identify", files={"file": _file(fp_root, f"{DB1}/101_1.tif")},
                        data={"fmr": "2"}, headers=svc.auth())
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_fmr"
    r = svc.client.post(f"{P}/extract", files={"file": _file(fp_root, f"{DB1}/101_1.tif")},
                        data={"steps": '[{"op": "explode"}]'}, headers=svc.auth())
    assert r.status_code == 422 and "unknown operation" in r.json()["error"]["message"]
    r = _enroll(svc, fp_root, "x", 11, [f"{DB1}/101_1.tif"])
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_finger"
    # nothing enrolled, no output left behind by refused requests
    assert svc.client.get(f"{P}/templates", headers=svc.auth()).json()["items"] == []


def test_batch_job_reports_a_broken_file_and_finishes_the_rest(start, fp_root):
    svc = start()
    files = [("files", _file(fp_root, f"{DB1}/105_1.tif")),
             ("files", ("broken.png", truncated_png((fp_root / DB1 / "105_3.tif").read_bytes()), "image/png")),
             ("files", _file(fp_root, f"{DB1}/105_2.tif"))]
    r = svc.client.post(f"{P}/jobs/process", files=files, data={"subject": "erin", "finger": "4",
                                                                "steps": '[{"op": "clahe", "clip_limit": 2}]'},
                        headers=svc.auth())
    assert r.status_code == 202, r.text
    job = wait_for_job(svc.client, r.json()["status_url"], svc.auth(), timeout_s=60)
    assert job["status"] == "succeeded", job
    res = job["result"]
    assert (res["total"], res["succeeded"], res["failed"]) == (3, 2, 1)
    assert [i["status"] for i in res["items"]] == ["succeeded", "failed", "succeeded"]
    assert res["items"][1]["error"]["code"] == "corrupt_image" and res["items"][1]["filename"] == "broken.png"
    assert "key" not in json.dumps(res)
    assert res["items"][0]["template"]["subject"] == "erin"

    outs = svc.client.get(f"{P}/outputs", params={"job_id": job["id"]}, headers=svc.auth()).json()["items"]
    assert len(outs) == 2 and {o["filename"] for o in outs} == {"105_1.tif", "105_2.tif"}
    img = svc.client.get(outs[0]["image_url"], headers=svc.auth())
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    pic = Image.open(io.BytesIO(img.content))
    assert pic.mode == "L" and pic.size == (388, 374)
    tpl = svc.client.get(outs[0]["template_url"], params={"format": "iso"}, headers=svc.auth())
    assert tpl.status_code == 200 and tpl.content[:4] == b"FMR\x00"
    assert svc.client.get(f"{P}/templates", params={"subject": "erin"}, headers=svc.auth()).json()["items"]


def test_extract_outputs_and_cleanup(start, fp_root):
    svc = start()
    r = svc.client.post(f"{P}/extract", files={"file": _file(fp_root, f"{DB1}/106_1.tif")},
                        data={"steps": '[{"op": "denoise", "method": "median", "strength": 3}]'}, headers=svc.auth())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["quality"]["score"] > 40 and len(body["minutiae"]) == body["output"]["minutiae_count"] > 10
    assert {"x", "y", "direction", "type", "quality"} <= set(body["minutiae"][0])
    out_id = body["output"]["id"]
    assert svc.client.get(f"{P}/outputs/{out_id}", headers=svc.auth()).status_code == 200
    # not admin: refused; admin with a retention in the future keeps it; age 0 removes it and its image
    assert svc.client.post(f"{P}/admin/cleanup", headers=svc.auth()).status_code == 403
    kept = svc.client.post(f"{P}/admin/cleanup", headers=svc.auth("root", "admin")).json()
    assert kept["removed_outputs"] == 0
    gone = svc.client.post(f"{P}/admin/cleanup", params={"older_than_days": 0}, headers=svc.auth("root", "admin")).json()
    assert gone["removed_outputs"] == 1 and gone["removed_images"] == 1
    assert svc.client.get(f"{P}/outputs/{out_id}/image", headers=svc.auth()).status_code == 404


def test_accounts_are_isolated(start, fp_root):
    svc = start()
    assert _enroll(svc, fp_root, "alice", 2, [f"{DB1}/101_1.tif"], account="acct-a").status_code == 201
    tid = svc.client.get(f"{P}/templates", headers=svc.auth("acct-a")).json()["items"][0]["id"]
    out_id = svc.client.get(f"{P}/outputs", headers=svc.auth("acct-a")).json()["items"][0]["id"]
    b = svc.auth("acct-b")
    assert svc.client.get(f"{P}/templates", headers=b).json()["items"] == []
    assert svc.client.get(f"{P}/outputs", headers=b).json()["items"] == []
    for url in (f"{P}/templates/{tid}", f"{P}/templates/{tid}/export", f"{P}/outputs/{out_id}",
                f"{P}/outputs/{out_id}/image"):
        assert svc.client.get(url, headers=b).status_code == 404
    assert svc.client.delete(f"{P}/templates/{tid}", headers=b).status_code == 404
    r = svc.client.post(f"{P}/verify", files={"file": _file(fp_root, f"{DB1}/101_2.tif")},
                        data={"template_id": tid}, headers=b)
    assert r.status_code == 404
    ident = svc.client.post(f"{P}/identify", files={"file": _file(fp_root, f"{DB1}/101_2.tif")}, headers=b).json()
    assert ident["searched"] == 0 and ident["candidates"] == []
    # purge removes templates and outputs of the account
    purge = svc.client.delete(f"{P}/admin/owners/acct-a", headers=svc.auth("root", "admin")).json()["deleted"]
    assert purge["fingerprint_templates"] == 1 and purge["fingerprint_outputs"] == 1 and purge["blobs"] >= 1


def test_distortion_endpoint_returns_probabilities(start, fp_root):
    from bio_fingerprint.engine.distortion import distort
    from bio_shared.images import decode_image

    svc = start()
    gray = decode_image((fp_root / DB1 / "109_3.tif").read_bytes(), mode="gray").pixels
    noisy, _ = distort(gray, "noise", 3)
    r = svc.client.post(f"{P}/distortion", files={"file": ("n.png", png_bytes(Image.fromarray(noisy)), "image/png")},
                        headers=svc.auth())
    assert r.status_code == 200, r.text
    body = r.json()
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-3 and body["predicted"] == "noise"
    assert body["model_version"] == "distortion-cnn-1"
    r = svc.client.post(f"{P}/distortion", files={"file": ("x.jpg", b"nope", "image/jpeg")}, headers=svc.auth())
    assert r.status_code == 415


def test_thresholds_table_is_documented(start):
    svc = start()
    t = svc.client.get(f"{P}/thresholds", headers=svc.auth()).json()
    assert t["impostor_comparisons"] > 1000 and "method" in t
    assert [p["fmr"] for p in t["points"]] == sorted([p["fmr"] for p in t["points"]], reverse=True)


def test_celery_beat_schedules_the_cleanup(tmp_path, monkeypatch):
    from bio_shared.db import migrate

    url = f"sqlite:///{tmp_path / 'fp.db'}"
    migrate("bio_fingerprint", url)
    monkeypatch.setenv("BIO_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("BIO_FINGERPRINT_DATABASE_URL", url)
    monkeypatch.setenv("BIO_FINGERPRINT_CLEANUP_INTERVAL_S", "600")
    import importlib

    import bio_fingerprint.tasks as tasks

    tasks = importlib.reload(tasks)
    entry = tasks.app.conf.beat_schedule["fingerprint-cleanup-outputs"]
    assert entry["task"] == "bio_fingerprint.cleanup_outputs" and entry["schedule"] == 600
    assert "bio_fingerprint.cleanup_outputs" in tasks.app.tasks
    assert tasks.cleanup_outputs()["removed_outputs"] == 0


def test_sync_enroll_refuses_too_many_files(start, fp_root):
    svc = start(sync_max_files=2)
    r = _enroll(svc, fp_root, "x", 1, [f"{DB1}/101_1.tif"] * 3)
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_files"


def test_sample_photo_is_refused_as_probe(start):
    svc = start()
    r = svc.client.post(f"{P}/identify", files={"file": ("p.jpg", sample_jpeg(), "image/jpeg")}, headers=svc.auth())
    assert r.status_code == 422
