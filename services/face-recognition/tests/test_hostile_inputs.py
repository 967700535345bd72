"""Hostile and careless input on every upload and list route: zip bombs (overlapping entries, deflated
zeros, too many entries, lying sizes), pixel bombs by header, offsets past 2**63, names with control or
bidirectional characters, deeply nested JSON. Each gets a clear 4xx in bounded time (a few seconds at most on a loaded 2-core machine; the zip bomb took 29 s before) and leaves the
listings and the blob store as they were."""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bio_face_recognition.models import FaceEmbedding, FaceEvent, Person
from bio_testing.shared import ServiceClient, png_bomb, sample_jpeg

P = "/api/v1/faces/events"
GIB = 1 << 30


def _deflated_zeros(size: int) -> tuple[bytes, int]:
    """Raw deflate of ``size`` zero bytes (about 1 MB per GiB) and its CRC-32."""
    comp, crc, block = zlib.compressobj(9, zlib.DEFLATED, -15), 0, bytes(1 << 24)
    out = []
    for _ in range(size // len(block)):
        out.append(comp.compress(block))
        crc = zlib.crc32(block, crc)
    out.append(comp.flush())
    return b"".join(out), crc


def raw_zip(members: list[tuple[str, int]], data: bytes, crc: int, size: int) -> bytes:
    """One deflated member written once; ``members`` are (name, index of the local header it points at)
    central-directory entries: several names on one header are the overlapping-entries bomb."""
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, 1, 0) + b"a" + data
    central = b"".join(
        struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), size,
                    len(name.encode()), 0, 0, 0, 0, 0, 0) + name.encode()
        for name, _ in members)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(local), 0)
    return local + central + end


@pytest.fixture(scope="module")
def gib_of_zeros() -> tuple[bytes, int]:
    return _deflated_zeros(GIB)


def zip_of(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def state(svc: ServiceClient, eid: str) -> tuple:
    """What a refused request must leave as it was: rows, listings, jobs and stored files."""
    with svc.rt.sessions() as s:
        counts = tuple(s.scalar(select(func.count()).select_from(m)) for m in (FaceEvent, Person, FaceEmbedding,
                                                                                  svc.rt.jobs.model))
    people = svc.client.get(f"{P}/{eid}/people", headers=svc.auth()).json()
    files = sorted(p.relative_to(svc.rt.blobs.root) for p in Path(svc.rt.blobs.root).rglob("*") if p.is_file())
    return counts, people["total"], files


@pytest.fixture
def svc(start) -> ServiceClient:
    return start()


@pytest.fixture
def eid(svc) -> str:
    r = svc.client.post(P, json={"name": "gate", "keep_images": True}, headers=svc.auth())
    assert r.status_code == 201
    return r.json()["id"]


def post_zip(svc: ServiceClient, eid: str, archive: bytes):
    t = time.perf_counter()
    r = svc.client.post(f"{P}/{eid}/enroll-zip", files={"file": ("bomb.zip", archive, "application/zip")},
                        headers=svc.auth())
    return r, time.perf_counter() - t


def test_overlapping_entries_bomb_is_refused_in_the_request_at_once(svc, eid, gib_of_zeros):
    data, crc = gib_of_zeros
    archive = raw_zip([(f"p{i}/x.jpg", 0) for i in range(50)], data, crc, GIB)
    assert len(archive) < 1_200_000
    before = state(svc, eid)
    r, took = post_zip(svc, eid, archive)
    assert r.status_code == 422 and r.json()["error"]["code"] == "overlapping_entries", r.text
    assert took < 5.0
    assert state(svc, eid) == before


def test_ten_thousand_entries_on_one_member_are_refused(start, gib_of_zeros):
    svc = start(max_zip_entries=100)
    eid = svc.client.post(P, json={"name": "many"}, headers=svc.auth()).json()["id"]
    data, crc = gib_of_zeros
    before = state(svc, eid)
    r, took = post_zip(svc, eid, raw_zip([(f"p/{i}.jpg", 0) for i in range(10_000)], data, crc, GIB))
    assert r.status_code == 422 and r.json()["error"]["code"] == "too_many_files" and took < 5.0
    honest = zip_of({f"p/{i}.jpg": b"x" for i in range(101)})  # more files than allowed, no trick
    r, _ = post_zip(svc, eid, honest)
    assert r.status_code == 422 and r.json()["error"]["code"] == "too_many_files"
    assert state(svc, eid) == before


def failed_report(job: dict) -> list[dict]:
    """An archive none of whose files could be used fails the job; its error carries the per-file report."""
    assert job["status"] == "failed" and job["error"]["code"] == "all_files_failed", job
    return job["error"]["details"]["report"]


def test_a_gib_member_is_never_decompressed(svc, eid, gib_of_zeros):
    """One honest 1 GiB member: accepted (its directory is sane), the job refuses it from the per-file cap
    without inflating a gigabyte, and the archive is removed."""
    data, crc = gib_of_zeros
    r, took = post_zip(svc, eid, raw_zip([("alice/big.jpg", 0)], data, crc, GIB))
    assert r.status_code == 202 and took < 5.0
    t = time.perf_counter()
    job = svc.wait(r.json()["status_url"])
    assert time.perf_counter() - t < 20
    (line,) = failed_report(job)
    assert line["status"] == "failed" and line["code"] == "payload_too_large"
    assert list(Path(svc.rt.blobs.root).rglob("*.zip")) == []


def test_a_lying_size_header_reads_no_more_than_it_declares(svc, eid, gib_of_zeros):
    data, crc = gib_of_zeros
    r, _ = post_zip(svc, eid, raw_zip([("alice/lie.jpg", 0)], data, crc, 1000))  # claims 1000 bytes
    job = svc.wait(r.json()["status_url"])
    (line,) = failed_report(job)
    assert line["status"] == "failed" and line["code"] in ("corrupt_archive_entry", "corrupt_image", "not_an_image")
    assert "object at 0x" not in line["message"]


def test_the_total_read_from_one_archive_is_capped(start):
    svc = start(max_zip_uncompressed_bytes=1 << 20)
    eid = svc.client.post(P, json={"name": "cap"}, headers=svc.auth()).json()["id"]
    files = {f"p{i}/{i}.bin": bytes([i]) * 400_000 for i in range(5)}  # 2 MB in all, 1 MiB allowed
    r, _ = post_zip(svc, eid, zip_of(files))
    assert r.status_code == 202
    report = failed_report(svc.wait(r.json()["status_url"]))
    codes = [line["code"] for line in report]
    assert codes[:2] == ["not_an_image", "not_an_image"] and set(codes[3:]) == {"archive_too_large"}
    assert all(line["status"] == "failed" for line in report)


def test_not_a_zip_and_truncated_directories(svc, eid):
    before = state(svc, eid)
    good = zip_of({"a/b.jpg": sample_jpeg()})
    for bad in (b"", b"PK\x05\x06", good[: len(good) // 2], good[:-10], b"\x00" * 5000, sample_jpeg()):
        r, took = post_zip(svc, eid, bad)
        assert r.status_code == 422 and r.json()["error"]["code"] in ("not_a_zip", "empty_file"), (bad[:20], r.text)
        assert took < 5.0 and "object at 0x" not in r.text
    assert state(svc, eid) == before


def _jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(sample_jpeg(64, 64))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize("bomb", ["jpeg_6000", "png_20000"])
def test_pixel_bombs_by_header_are_refused_before_decoding(svc, eid, bomb, data_dir):
    data = _jpeg_claiming(6000, 6000) if bomb == "jpeg_6000" else png_bomb()
    face = (data_dir / "faces/face_recognition/examples/obama_small.jpg").read_bytes()
    before = state(svc, eid)
    calls = [("POST", f"{P}/{eid}/people", 1, {"data": {"name": "bomb"},
                                               "files": [("files", ("a.jpg", face, "image/jpeg")),
                                                         ("files", ("b.jpg", data, "image/jpeg"))]}),
             ("POST", f"{P}/{eid}/identify", 0, {"files": {"file": ("b.jpg", data, "image/jpeg")}})]
    for method, path, index, kw in calls:
        t = time.perf_counter()
        r = svc.client.request(method, path, headers=svc.auth(), **kw)
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_pixels", r.text
        assert time.perf_counter() - t < 5.0
        assert r.json()["error"]["details"]["limit_pixels"] == 25_000_000
        assert (r.json()["error"]["details"]["file"], r.json()["error"]["details"]["index"]) == ("b.jpg", index)
    assert state(svc, eid) == before


def test_a_multi_file_error_names_the_file_and_its_index(svc, eid, data_dir):
    face = (data_dir / "faces/face_recognition/examples/obama_small.jpg").read_bytes()
    files = [("files", ("good.jpg", face, "image/jpeg")), ("files", ("notes.txt", b"hello" * 50, "text/plain"))]
    r = svc.client.post(f"{P}/{eid}/people", data={"name": "x"}, files=files, headers=svc.auth())
    assert r.status_code == 415
    details = r.json()["error"]["details"]
    assert (details["file"], details["index"]) == ("notes.txt", 1)


@pytest.mark.parametrize("offset", [2**63, 2**70, 10**9 + 1, -1])
def test_offsets_out_of_range_are_refused_on_every_list(svc, eid, offset):
    for path in (P, f"{P}/{eid}/people", f"{P}/{eid}/unknowns", "/api/v1/faces/jobs"):
        r = svc.client.get(path, params={"offset": offset}, headers=svc.auth())
        assert r.status_code == 422, (path, r.text)
    ok = svc.client.get(f"{P}/{eid}/people", params={"offset": 10**9}, headers=svc.auth())
    assert ok.status_code == 200 and ok.json()["items"] == [] and ok.json()["total"] == 0


BAD_NAMES = [" ", "\t", "a\x00b", "bell\x07", "line\nbreak", "evil\u202etxt.jpg", "iso\u2066late", "\u200f\x1b[31m"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_with_control_or_bidi_characters_are_refused(svc, eid, name):
    before = state(svc, eid)
    calls = [
        ("POST", P, {"json": {"name": name}}),
        ("PATCH", f"{P}/{eid}", {"json": {"name": name}}),
        ("POST", f"{P}/{eid}/people", {"data": {"name": name},
                                       "files": [("files", ("a.jpg", sample_jpeg(), "image/jpeg"))]}),
        ("GET", f"{P}/{eid}/people", {"params": {"name": name}}),
    ]
    for method, path, kw in calls:
        r = svc.client.request(method, path, headers=svc.auth(), **kw)
        assert r.status_code == 422, (method, path, r.text)
        assert r.json()["error"]["code"] in ("invalid_name", "validation_error")
    assert state(svc, eid) == before
    assert svc.client.get(f"{P}/{eid}", headers=svc.auth()).json()["name"] == "gate"


def test_person_folders_with_control_characters_are_reported_not_stored(svc, eid, data_dir):
    photo = (data_dir / "faces/face_recognition/examples/obama_small.jpg").read_bytes()
    r, _ = post_zip(svc, eid, zip_of({"ev\u202eil/a.jpg": photo, " /b.jpg": photo}))
    report = failed_report(svc.wait(r.json()["status_url"]))
    assert {line["code"] for line in report} == {"invalid_name", "no_person_folder"}
    assert svc.client.get(f"{P}/{eid}/people", headers=svc.auth()).json()["total"] == 0


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000, '{"name": ' * 50_000 + '"x"' + "}" * 50_000,
                                  '{"name": "x", "threshold": 1e999}', '{"name": "x", "top_k": ' + "9" * 5000 + "}"])
def test_nested_or_absurd_json_bodies_get_a_4xx(svc, eid, body):
    before = state(svc, eid)
    for method, path in (("POST", P), ("PATCH", f"{P}/{eid}"), ("POST", f"{P}/{eid}/unknowns/{'0' * 32}/confirm")):
        t = time.perf_counter()
        r = svc.client.request(method, path, content=body, headers=svc.auth() | {"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text[:200])
        assert time.perf_counter() - t < 5.0
    assert state(svc, eid) == before
