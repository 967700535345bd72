"""The contour-mask API through its ASGI app: identity, the normalize job, bad input, isolation, probes."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bio_contour_mask.app import NAME, PREFIX, create_app
from bio_contour_mask.models import Job
from bio_shared.identity import IDENTITY_HEADER
from bio_shared.testing import identity_headers

JOBS = f"{PREFIX}/jobs"
NORMALIZE = f"{JOBS}/normalize"


def upload(data: bytes, name: str = "photo.jpg", ctype: str = "image/jpeg") -> dict:
    return {"file": (name, data, ctype)}


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A valid PNG header claiming width x height pixels, with almost no data behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def stored_state(client) -> tuple[int, list[Path]]:
    """Rows in this service's jobs table and files in its blob store."""
    rt = client.app.state.runtime
    with rt.sessions() as s:
        rows = s.scalar(select(func.count()).select_from(Job))
    return rows, [p for p in Path(rt.settings.blob_dir).rglob("*") if p.is_file()]


def submit_and_wait(client, auth, wait, data: bytes, account: str = "acct-a", name: str = "photo.jpg") -> dict:
    resp = client.post(NORMALIZE, files=upload(data, name), headers=auth(account))
    assert resp.status_code == 202, resp.text
    job = wait(client, resp.json()["status_url"], auth(account))
    assert job["status"] == "succeeded", job
    return job


# -- identity -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,path", [("GET", JOBS), ("GET", f"{JOBS}/0123abcd"), ("POST", NORMALIZE),
                                         ("GET", f"{JOBS}/0123abcd/output")])
def test_request_without_identity_is_refused(cm_client, method, path):
    kwargs = {"files": upload(b"x")} if method == "POST" else {}
    resp = cm_client.request(method, path, **kwargs)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "missing_identity"


def _tampered(token: str) -> str:
    """Same signature, payload rewritten to claim another account with the admin role."""
    header, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(sub="acct-evil", role="admin")
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{sig}"


@pytest.mark.parametrize("kind", ["tampered", "expired", "wrong_secret", "garbage"])
def test_invalid_identity_is_refused(cm_client, cm_settings, kind):
    secret = cm_settings.internal_secret
    token = {
        "tampered": lambda: _tampered(identity_headers(secret)[IDENTITY_HEADER]),
        "expired": lambda: identity_headers(secret, ttl_s=-120)[IDENTITY_HEADER],
        "wrong_secret": lambda: identity_headers(secret + "x")[IDENTITY_HEADER],
        "garbage": lambda: "not-a-token",
    }[kind]()
    resp = cm_client.get(JOBS, headers={IDENTITY_HEADER: token})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_identity"


# -- the normalize job ----------------------------------------------------------------------------
def test_normalize_downscales_a_large_photo(cm_client, cm_auth, cm_wait, cm_settings, cm_faces):
    source = cm_faces / "test_images" / "obama3.jpg"  # 1434 x 2333
    data = source.read_bytes()
    resp = cm_client.post(NORMALIZE, files=upload(data, "obama3.jpg"), headers=cm_auth())
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["kind"] == "normalize" and body["status"] in ("pending", "running", "succeeded")
    assert body["status_url"] == f"{JOBS}/{body['id']}"
    assert resp.headers["Location"] == body["status_url"]

    job = cm_wait(cm_client, body["status_url"], cm_auth())
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["attempts"] == 1
    result = job["result"]
    assert result["source_format"] == "JPEG" and result["filename"] == "obama3.jpg"

    out = cm_client.get(result["output_url"], headers=cm_auth())
    assert out.status_code == 200 and out.headers["content-type"] == "image/png"
    assert hashlib.sha256(out.content).hexdigest() == result["sha256"]
    img = Image.open(io.BytesIO(out.content))
    assert img.format == "PNG" and img.mode == "RGB"
    src_w, src_h = Image.open(source).size
    w, h = img.size
    assert max(w, h) == cm_settings.max_side == 1024
    assert abs(w / h - src_w / src_h) < 0.01  # aspect ratio kept
    assert (result["width"], result["height"], result["channels"]) == (w, h, 3)
    # the content is the photo, not a blank canvas: close to an independent resize of the source
    expected = np.asarray(Image.open(source).convert("RGB").resize((w, h), Image.Resampling.BILINEAR), np.float32)
    assert np.abs(np.asarray(img, np.float32) - expected).mean() < 4
    # the upload is removed once the job has its output
    _, files = stored_state(cm_client)
    assert [p.suffix for p in files] == [".png"]


@pytest.mark.parametrize("sample", ["0", "3"])
def test_normalize_at_label_map_resolution_lines_up_with_the_mask(cm_make_settings, cm_start, cm_auth, cm_wait,
                                                                  cm_parsing, sample):
    """With max_side at the label-map size, the normalised face and its CelebAMask-HQ mask align pixel for pixel."""
    client = cm_start(cm_make_settings(max_side=512))
    source = cm_parsing / "maskgan_samples" / f"{sample}.jpg"  # 1024 x 1024
    job = submit_and_wait(client, cm_auth, cm_wait, source.read_bytes(), name=source.name)
    img = Image.open(io.BytesIO(client.get(job["result"]["output_url"], headers=cm_auth()).content))
    mask = Image.open(cm_parsing / "maskgan_samples" / f"{sample}_mask.png")
    assert Image.open(source).size == (1024, 1024)
    assert img.mode == "RGB" and img.size == mask.size == (512, 512)
    # the mask's skin pixels (label 1) fall on skin-coloured pixels of the normalised image (red above blue)
    pixels, labels = np.asarray(img, np.float32), np.asarray(mask)
    skin = pixels[labels == 1]
    assert len(skin) > 0.05 * labels.size and skin[:, 0].mean() > skin[:, 2].mean()


@pytest.mark.parametrize("rel,mode", [("examples/obama_small.jpg", "RGB"), ("examples/alex-lacamoire.png", "RGBA")])
def test_normalize_keeps_small_photos_and_flattens_alpha(cm_client, cm_auth, cm_wait, cm_faces, rel, mode):
    source = cm_faces / rel
    src = Image.open(source)
    assert src.mode == mode and max(src.size) < 1024
    job = submit_and_wait(cm_client, cm_auth, cm_wait, source.read_bytes(), name=source.name)
    img = Image.open(io.BytesIO(cm_client.get(job["result"]["output_url"], headers=cm_auth()).content))
    assert img.size == src.size  # never upscaled
    assert img.mode == "RGB"
    assert job["result"]["source_mode"] == mode


def test_max_side_comes_from_the_service_env_prefix(monkeypatch, cm_make_settings, cm_start, cm_auth, cm_wait,
                                                   cm_faces):
    monkeypatch.setenv("BIO_CONTOUR_MASK_MAX_SIDE", "300")
    settings = cm_make_settings()
    assert settings.max_side == 300
    client = cm_start(settings)
    job = submit_and_wait(client, cm_auth, cm_wait, (cm_faces / "examples" / "obama-720p.jpg").read_bytes())
    assert (job["result"]["width"], job["result"]["height"]) == (300, 169)


def test_output_of_an_unfinished_or_unknown_job(cm_client, cm_auth):
    for job_id in ("0" * 32, "x" * 200):
        for path in (f"{JOBS}/{job_id}", f"{JOBS}/{job_id}/output"):
            resp = cm_client.get(path, headers=cm_auth())
            assert resp.status_code == 404
            assert resp.json()["error"]["code"] == "job_not_found"


# -- bad input ------------------------------------------------------------------------------------
def _truncated_jpeg(photo: bytes) -> bytes:
    return photo[: len(photo) // 2]


def _truncated_png(photo: bytes) -> bytes:
    data = png_bytes(Image.open(io.BytesIO(photo)))
    return data[: len(data) // 2]


BAD_INPUTS = {
    "text": (lambda _: b"this is a text file, not an image\n" * 20, 415, "not_an_image"),
    "empty": (lambda _: b"", 422, "empty_file"),
    "truncated_jpeg": (_truncated_jpeg, 422, "corrupt_image"),
    "truncated_png": (_truncated_png, 422, "corrupt_image"),
    "bomb": (lambda _: png_bomb(), 413, "too_many_pixels"),
    "tiny": (lambda _: png_bytes(Image.new("RGB", (8, 8))), 422, "image_too_small"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_and_leaves_nothing(cm_client, cm_auth, cm_faces, case):
    build, status, code = BAD_INPUTS[case]
    payload = build((cm_faces / "test_images" / "obama.jpg").read_bytes())
    resp = cm_client.post(NORMALIZE, files=upload(payload), headers=cm_auth())
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"]
    assert stored_state(cm_client) == (0, [])
    assert cm_client.get(JOBS, headers=cm_auth()).json()["items"] == []


def test_oversized_upload_is_refused(cm_make_settings, cm_start, cm_auth, cm_faces):
    client = cm_start(cm_make_settings(max_upload_bytes=4096))
    data = (cm_faces / "examples" / "obama_small.jpg").read_bytes()
    assert len(data) > 4096
    resp = client.post(NORMALIZE, files=upload(data), headers=cm_auth())
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "payload_too_large"
    assert resp.json()["error"]["details"]["limit_bytes"] == 4096
    assert stored_state(client) == (0, [])


def test_missing_file_field_is_a_validation_error(cm_client, cm_auth):
    resp = cm_client.post(NORMALIZE, data={"other": "x"}, headers=cm_auth())
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "validation_error"


# -- accounts -------------------------------------------------------------------------------------
def test_accounts_never_see_each_others_jobs(cm_client, cm_auth, cm_wait, cm_faces):
    job = submit_and_wait(cm_client, cm_auth, cm_wait, (cm_faces / "examples" / "obama_small.jpg").read_bytes())
    own = cm_client.get(f"{JOBS}/{job['id']}", headers=cm_auth("acct-a"))
    assert own.status_code == 200
    assert cm_client.get(job["result"]["output_url"], headers=cm_auth("acct-a")).status_code == 200
    assert [j["id"] for j in cm_client.get(JOBS, headers=cm_auth("acct-a")).json()["items"]] == [job["id"]]

    for role in ("user", "admin"):
        other = cm_auth("acct-b", role)
        for path in (f"{JOBS}/{job['id']}", job["result"]["output_url"]):
            resp = cm_client.get(path, headers=other)
            assert resp.status_code == 404, path
            assert resp.json()["error"]["code"] == "job_not_found"
        assert cm_client.get(JOBS, headers=other).json()["items"] == []


# -- probes and metrics ---------------------------------------------------------------------------
def _requests_total(client, route: str, status: str) -> float:
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "bio_http_requests":
            for sample in family.samples:
                labels = sample.labels
                if (sample.name == "bio_http_requests_total" and labels["service"] == NAME
                        and labels["route"] == route and labels["status"] == status and labels["method"] == "GET"):
                    return sample.value
    return 0.0


def test_health_readiness_and_metrics(cm_client, cm_auth):
    assert cm_client.get("/healthz").json() == {"status": "ok", "service": NAME}
    ready = cm_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}

    before = _requests_total(cm_client, JOBS, "200")
    assert cm_client.get(JOBS, headers=cm_auth()).status_code == 200
    metrics = cm_client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert "bio_http_requests_total" in metrics.text
    assert _requests_total(cm_client, JOBS, "200") == before + 1
    # labelled by route template, never by the raw id
    template = f"{JOBS}/{{job_id}}"
    before = _requests_total(cm_client, template, "404")
    assert cm_client.get(f"{JOBS}/{'9' * 32}", headers=cm_auth()).status_code == 404
    assert _requests_total(cm_client, template, "404") == before + 1
    assert "9" * 32 not in cm_client.get("/metrics").text


def test_readyz_reports_an_unreachable_database(cm_make_settings):
    settings = cm_make_settings(database_url="postgresql://nobody@127.0.0.1:9/none")
    with TestClient(create_app(settings)) as c:
        resp = c.get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "unavailable" and body["checks"]["database"].startswith("error")


def test_openapi_documents_the_normalize_route(cm_client):
    spec = cm_client.get(f"{PREFIX}/openapi.json").json()
    assert set(spec["paths"][NORMALIZE]["post"]["responses"]) >= {"202", "401", "413", "415", "422"}
