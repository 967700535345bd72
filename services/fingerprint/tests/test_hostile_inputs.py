"""Hostile and careless input to every fingerprint upload route: a clear 4xx in bounded time, and nothing
kept (listings and the blob store unchanged). Every hostile file is generated here."""

from __future__ import annotations

import io
import json
import struct
import time
from pathlib import Path

import pytest
from PIL import Image

from bio_fingerprint.engine.template import Template
from bio_testing.shared import png_bomb, truncated_png, wait_for_job

P = "/api/v1/fingerprint"
DB1 = "fvc2002/DB1_B"
NESTED = "[" * 100_000 + "]" * 100_000


def _print(fp_root: Path, name: str = "101_1.tif") -> tuple[str, bytes, str]:
    return (name, (fp_root / DB1 / name).read_bytes(), "image/tiff")


def _jpeg_claiming(fp_root: Path, width: int, height: int) -> bytes:
    """A real print as JPEG whose SOF header claims width x height (the data stays small)."""
    buf = io.BytesIO()
    Image.open(fp_root / DB1 / "101_1.tif").convert("L").save(buf, format="JPEG", quality=90)
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _state(svc) -> tuple:
    """Listings of the caller and everything the service stored (job rows, blob files)."""
    h = svc.auth()
    templates = svc.client.get(f"{P}/templates", headers=h).json()
    outputs = svc.client.get(f"{P}/outputs", headers=h).json()
    return templates["total"], outputs["total"], svc.stored()


def _refused(svc, before, resp, status: int | tuple[int, ...], code: str | None = None) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert resp.status_code in statuses, resp.text
    err = resp.json()["error"]
    assert code is None or err["code"] == code, err
    assert "object at 0x" not in err["message"]
    assert _state(svc) == before
    return err


@pytest.fixture
def iso_record(fp_root: Path) -> bytes:
    return (fp_root / "sourceafis" / "iso-probe.dat").read_bytes()


@pytest.fixture
def json_doc(iso_record: bytes) -> dict:
    return Template.from_iso(iso_record).to_json()


def test_enroll_under_the_quality_minimum_stores_nothing(start, fp_root):
    svc = start(enroll_min_quality=100)
    before = _state(svc)
    r = svc.client.post(f"{P}/enroll", files=[("files", _print(fp_root))], data={"subject": "a", "finger": "1"},
                        headers=svc.auth())
    _refused(svc, before, r, 422, "quality_too_low")
    assert before == (0, 0, (0, []))  # no output row and no PNG either
    two = svc.client.post(f"{P}/enroll", files=[("files", _print(fp_root)), ("files", _print(fp_root, "101_2.tif"))],
                          data={"subject": "a", "finger": "1"}, headers=svc.auth())
    err = _refused(svc, before, two, 422, "nothing_enrolled")
    assert [(i["index"], i["file"]) for i in err["details"]["items"]] == [(0, "101_1.tif"), (1, "101_2.tif")]


def test_distortion_refuses_a_face_photo(start, data_dir):
    svc = start()
    face = (data_dir / "faces" / "openface" / "clapton-1.jpg").read_bytes()
    before = _state(svc)
    r = svc.client.post(f"{P}/distortion", files={"file": ("face.jpg", face, "image/jpeg")}, headers=svc.auth())
    err = _refused(svc, before, r, 422, "not_a_print")
    assert err["details"]["quality"]["score"] < err["details"]["minimum"]


@pytest.mark.parametrize("kind", ["random", "text", "pdf", "png_bomb", "jpeg_6000", "empty"])
def test_batch_job_refuses_what_is_not_a_print_image_before_storing_anything(start, fp_root, kind):
    bad = {"random": bytes(range(256)) * 64, "text": b"just some text\n" * 100,
           "pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n",
           "png_bomb": png_bomb(20000, 20000), "jpeg_6000": _jpeg_claiming(fp_root, 6000, 6000), "empty": b""}[kind]
    svc = start()
    before = _state(svc)
    files = [("files", _print(fp_root)), ("files", (f"bad.{kind}", bad, "application/octet-stream"))]
    t = time.monotonic()
    r = svc.client.post(f"{P}/jobs/process", files=files, headers=svc.auth())
    err = _refused(svc, before, r, (413, 415, 422))
    assert time.monotonic() - t < 5
    assert err["details"]["file"] == f"bad.{kind}" and err["details"]["index"] == 1


def test_a_job_whose_files_all_fail_is_failed(start, fp_root):
    svc = start()
    broken = truncated_png((fp_root / DB1 / "102_1.tif").read_bytes())
    files = [("files", (f"b{i}.png", broken, "image/png")) for i in range(2)]
    r = svc.client.post(f"{P}/jobs/process", files=files, headers=svc.auth())
    assert r.status_code == 202, r.text
    job = wait_for_job(svc.client, r.json()["status_url"], svc.auth(), timeout_s=60)
    assert job["status"] == "failed" and job["error"]["code"] == "all_files_failed", job
    details = job["error"]["details"]
    assert (details["total"], details["failed"]) == (2, 2)
    assert [i["error"]["details"]["index"] for i in details["items"]] == [0, 1]
    assert svc.stored()[1] == []  # uploads removed, no output kept
    ok = [("files", _print(fp_root)), ("files", ("b.png", broken, "image/png"))]
    r = svc.client.post(f"{P}/jobs/process", files=ok, headers=svc.auth())
    job = wait_for_job(svc.client, r.json()["status_url"], svc.auth(), timeout_s=60)
    assert job["status"] == "succeeded" and job["result"]["partial"] is True
    assert job["result"]["failed"] == 1 and job["result"]["message"] == "1 of 2 files failed"


@pytest.mark.parametrize("route", ["extract", "enroll", "verify", "identify", "distortion"])
def test_a_header_claiming_36_megapixels_is_refused_fast(start, fp_root, route):
    svc = start()
    bomb = ("big.jpg", _jpeg_claiming(fp_root, 6000, 6000), "image/jpeg")
    field = "files" if route == "enroll" else "file"
    data = {"subject": "a", "finger": "1"} if route in ("enroll", "verify") else {}
    before = _state(svc)
    t = time.monotonic()
    r = svc.client.post(f"{P}/{route}", files=[(field, bomb)], data=data, headers=svc.auth())
    err = _refused(svc, before, r, 413, "too_many_pixels")
    assert time.monotonic() - t < 3 and err["details"]["limit_pixels"] == 4_000_000


@pytest.mark.parametrize("route", ["extract", "jobs/process", "enroll"])
def test_deeply_nested_steps_are_a_422(start, fp_root, route):
    svc = start()
    field = "file" if route == "extract" else "files"
    before = _state(svc)
    r = svc.client.post(f"{P}/{route}", files=[(field, _print(fp_root))],
                        data={"steps": NESTED, "subject": "a"}, headers=svc.auth())
    _refused(svc, before, r, 422, "invalid_steps")


def _hostile_templates(doc: dict, iso: bytes) -> dict[str, bytes]:
    def js(**changes) -> bytes:
        return json.dumps({**doc, **changes}).encode()

    return {"nested": NESTED.encode(), "width_2_70": js(width=2**70), "dpi_2_70": js(resolution_dpi=2**70),
            "quality_2_70": js(quality=2**70), "dpi_0": js(resolution_dpi=0), "dpi_negative": js(resolution_dpi=-500),
            "algorithm_1mb": js(algorithm="a" * 1_000_000), "nan": js(width=float("nan")),
            "iso_zero_size": iso[:14] + struct.pack(">HH", 0, 0) + iso[18:], "iso_zero_dpi": iso[:18] + struct.pack(">HH", 0, 0) + iso[22:]}


@pytest.mark.parametrize("case", ["nested", "width_2_70", "dpi_2_70", "quality_2_70", "dpi_0", "dpi_negative",
                                  "algorithm_1mb", "nan", "iso_zero_size", "iso_zero_dpi"])
def test_hostile_templates_are_422_everywhere(start, json_doc, iso_record, case):
    svc = start()
    data = _hostile_templates(json_doc, iso_record)[case]
    assert svc.client.post(f"{P}/templates/import", files={"file": ("ok.iso", iso_record)},
                           data={"subject": "someone"}, headers=svc.auth()).status_code == 201
    before = _state(svc)
    for route, form in (("templates/import", {"subject": "x"}), ("verify", {"subject": "someone"}), ("identify", {})):
        field = "file" if route == "templates/import" else "template"
        r = svc.client.post(f"{P}/{route}", files={field: ("t.bin", data)}, data=form, headers=svc.auth())
        _refused(svc, before, r, 422, "invalid_template")


@pytest.mark.parametrize("name", ["nul\x00byte", "bell\x07", "bidi\u202eevil", " ", "\u2066isolate", "x" * 129])
def test_names_with_control_or_bidi_characters_are_refused(start, fp_root, iso_record, name):
    svc = start()
    before = _state(svc)
    r = svc.client.post(f"{P}/templates/import", files={"file": ("t.iso", iso_record)}, data={"subject": name},
                        headers=svc.auth())
    _refused(svc, before, r, 422, "invalid_name")
    r = svc.client.post(f"{P}/enroll", files=[("files", _print(fp_root))], data={"subject": name}, headers=svc.auth())
    _refused(svc, before, r, 422, "invalid_name")


def test_names_are_normalised_and_stripped(start, iso_record):
    svc = start()
    r = svc.client.post(f"{P}/templates/import", files={"file": ("t.iso", iso_record)},
                        data={"subject": "  Cafe\u0301 "}, headers=svc.auth())
    assert r.status_code == 201 and r.json()["subject"] == "Caf\u00e9"


@pytest.mark.parametrize("path", ["/outputs", "/templates"])
@pytest.mark.parametrize("offset", [2**63, 2**70, -1])
def test_offsets_out_of_range_are_422_not_500(start, path, offset):
    svc = start()
    r = svc.client.get(f"{P}{path}", params={"offset": str(offset)}, headers=svc.auth())
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    page = svc.client.get(f"{P}{path}", params={"offset": "1000000000"}, headers=svc.auth()).json()
    assert page["items"] == [] and page["total"] == 0 and page["offset"] == 10**9


def test_cleanup_age_out_of_range_is_422(start):
    svc = start()
    r = svc.client.post(f"{P}/admin/cleanup", params={"older_than_days": "1e300"}, headers=svc.auth("root", "admin"))
    assert r.status_code == 422


def test_every_fingerprint_route_requires_the_gateway_identity(start):
    svc = start()
    walked = 0
    for path, operations in svc.client.app.openapi()["paths"].items():
        url = path.replace("{", "").replace("}", "")
        for method in operations:
            r = svc.client.request(method.upper(), url)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["error"]["code"] == "missing_identity"
            walked += 1
    assert walked >= 20
    assert svc.client.get(f"{P}/thresholds").status_code == 401
