"""The fingerprint API through its ASGI app: identity, the normalize job, bad input, isolation, probes."""

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

from bio_fingerprint.app import NAME, PREFIX, create_app
from bio_fingerprint.models import Job
from bio_shared.identity import IDENTITY_HEADER
from bio_shared.testing import identity_headers

JOBS = f"{PREFIX}/jobs"
NORMALIZE = f"{JOBS}/normalize"


def upload(data: bytes, name: str = "print.tif", ctype: str = "image/tiff") -> dict:
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


def submit_and_wait(client, auth, wait, data: bytes, account: str = "acct-a", name: str = "print.tif") -> dict:
    resp = client.post(NORMALIZE, files=upload(data, name), headers=auth(account))
    assert resp.status_code == 202, resp.text
    job = wait(client, resp.json()["status_url"], auth(account))
    assert job["status"] == "succeeded", job
    return job


# -- identity -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,path", [("GET", JOBS), ("GET", f"{JOBS}/0123abcd"), ("POST", NORMALIZE),
                                         ("GET", f"{JOBS}/0123abcd/output")])
def test_request_without_identity_is_refused(fp_client, method, path):
    kwargs = {"files": upload(b"x")} if method == "POST" else {}
    resp = fp_client.request(method, path, **kwargs)
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
def test_invalid_identity_is_refused(fp_client, fp_settings, kind):
    secret = fp_settings.internal_secret
    token = {
        "tampered": lambda: _tampered(identity_headers(secret)[IDENTITY_HEADER]),
        "expired": lambda: identity_headers(secret, ttl_s=-120)[IDENTITY_HEADER],
        "wrong_secret": lambda: identity_headers(secret + "x")[IDENTITY_HEADER],
        "garbage": lambda: "not-a-token",
    }[kind]()
    resp = fp_client.get(JOBS, headers={IDENTITY_HEADER: token})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_identity"


# -- the normalize job ----------------------------------------------------------------------------
def fetch_png(client, auth, job) -> Image.Image:
    out = client.get(job["result"]["output_url"], headers=auth())
    assert out.status_code == 200 and out.headers["content-type"] == "image/png"
    assert hashlib.sha256(out.content).hexdigest() == job["result"]["sha256"]
    img = Image.open(io.BytesIO(out.content))
    assert img.format == "PNG"
    return img


def test_normalize_a_real_print(fp_client, fp_auth, fp_wait, fp_prints):
    source = fp_prints / "DB1_B" / "101_1.tif"
    resp = fp_client.post(NORMALIZE, files=upload(source.read_bytes(), source.name, "image/tiff"), headers=fp_auth())
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["kind"] == "normalize" and body["status"] in ("pending", "running", "succeeded")
    assert body["status_url"] == f"{JOBS}/{body['id']}"
    assert resp.headers["Location"] == body["status_url"]

    job = fp_wait(fp_client, body["status_url"], fp_auth())
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["attempts"] == 1
    result = job["result"]
    assert (result["source_format"], result["source_mode"], result["filename"]) == ("TIFF", "L", "101_1.tif")

    img = fetch_png(fp_client, fp_auth, job)
    assert img.mode == "L" and img.size == Image.open(source).size == (388, 374)  # same geometry, one channel
    assert (result["width"], result["height"], result["channels"]) == (388, 374, 1)
    pixels = np.asarray(img)
    assert pixels.min() == 0 and pixels.max() == 255  # full contrast range
    # stretching keeps the order of grey levels: ridges stay dark, valleys light
    src = np.asarray(Image.open(source), np.float64)
    assert np.corrcoef(src.ravel(), pixels.ravel())[0, 1] > 0.98
    # the upload is removed once the job has its output
    _, files = stored_state(fp_client)
    assert [p.suffix for p in files] == [".png"]


def _low_contrast_png(print_path: Path) -> bytes:
    gray = np.asarray(Image.open(print_path), np.uint16)
    return png_bytes(Image.fromarray((gray // 4 + 100).astype(np.uint8)))  # values 100..163


def _rgb_jpeg(print_path: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(print_path).convert("RGB").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _png16(print_path: Path) -> bytes:
    gray = np.asarray(Image.open(print_path), np.uint16) * 257
    return png_bytes(Image.fromarray(gray.astype(np.uint16)))


@pytest.mark.parametrize("build,mode", [(_low_contrast_png, "L"), (_rgb_jpeg, "RGB"), (_png16, "I;16")],
                         ids=["low_contrast", "rgb_jpeg", "png16"])
def test_normalize_gives_full_range_gray_whatever_the_layout(fp_client, fp_auth, fp_wait, fp_prints, build, mode):
    source = fp_prints / "DB2_B" / "101_1.tif"  # 296 x 560
    job = submit_and_wait(fp_client, fp_auth, fp_wait, build(source), name="print.png")
    assert job["result"]["source_mode"] == mode
    img = fetch_png(fp_client, fp_auth, job)
    assert img.mode == "L" and img.size == (296, 560)
    pixels = np.asarray(img)
    assert pixels.min() == 0 and pixels.max() == 255
    lo, hi = np.percentile(pixels, (1, 99))
    assert lo <= 2 and hi >= 253  # stretched between the 1st and 99th percentiles


def test_upload_limit_comes_from_the_service_env_prefix(monkeypatch, fp_make_settings, fp_start, fp_auth, fp_prints):
    monkeypatch.setenv("BIO_FINGERPRINT_MAX_UPLOAD_BYTES", "5000")
    settings = fp_make_settings()
    assert settings.max_upload_bytes == 5000
    client = fp_start(settings)
    resp = client.post(NORMALIZE, files=upload((fp_prints / "DB1_B" / "102_1.tif").read_bytes()), headers=fp_auth())
    assert resp.status_code == 413
    assert resp.json()["error"]["details"] == {"limit_bytes": 5000}


def test_output_of_an_unfinished_or_unknown_job(fp_client, fp_auth):
    for job_id in ("0" * 32, "x" * 200):
        for path in (f"{JOBS}/{job_id}", f"{JOBS}/{job_id}/output"):
            resp = fp_client.get(path, headers=fp_auth())
            assert resp.status_code == 404
            assert resp.json()["error"]["code"] == "job_not_found"


# -- bad input ------------------------------------------------------------------------------------
def _truncated_jpeg(sample: bytes) -> bytes:
    return sample[: len(sample) // 2]


def _truncated_png(sample: bytes) -> bytes:
    data = png_bytes(Image.open(io.BytesIO(sample)))
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
def test_bad_input_is_refused_and_leaves_nothing(fp_client, fp_auth, fp_prints, case):
    build, status, code = BAD_INPUTS[case]
    payload = build(_rgb_jpeg(fp_prints / "DB1_B" / "103_1.tif"))
    resp = fp_client.post(NORMALIZE, files=upload(payload), headers=fp_auth())
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"]
    assert stored_state(fp_client) == (0, [])
    assert fp_client.get(JOBS, headers=fp_auth()).json()["items"] == []


def test_oversized_upload_is_refused(fp_make_settings, fp_start, fp_auth, fp_prints):
    client = fp_start(fp_make_settings(max_upload_bytes=4096))
    data = (fp_prints / "DB1_B" / "104_1.tif").read_bytes()
    assert len(data) > 4096
    resp = client.post(NORMALIZE, files=upload(data), headers=fp_auth())
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "payload_too_large"
    assert resp.json()["error"]["details"]["limit_bytes"] == 4096
    assert stored_state(client) == (0, [])


def test_missing_file_field_is_a_validation_error(fp_client, fp_auth):
    resp = fp_client.post(NORMALIZE, data={"other": "x"}, headers=fp_auth())
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "validation_error"


# -- accounts -------------------------------------------------------------------------------------
def test_accounts_never_see_each_others_jobs(fp_client, fp_auth, fp_wait, fp_prints):
    job = submit_and_wait(fp_client, fp_auth, fp_wait, (fp_prints / "DB1_B" / "104_1.tif").read_bytes())
    own = fp_client.get(f"{JOBS}/{job['id']}", headers=fp_auth("acct-a"))
    assert own.status_code == 200
    assert fp_client.get(job["result"]["output_url"], headers=fp_auth("acct-a")).status_code == 200
    assert [j["id"] for j in fp_client.get(JOBS, headers=fp_auth("acct-a")).json()["items"]] == [job["id"]]

    for role in ("user", "admin"):
        other = fp_auth("acct-b", role)
        for path in (f"{JOBS}/{job['id']}", job["result"]["output_url"]):
            resp = fp_client.get(path, headers=other)
            assert resp.status_code == 404, path
            assert resp.json()["error"]["code"] == "job_not_found"
        assert fp_client.get(JOBS, headers=other).json()["items"] == []


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


def test_health_readiness_and_metrics(fp_client, fp_auth):
    assert fp_client.get("/healthz").json() == {"status": "ok", "service": NAME}
    ready = fp_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}

    before = _requests_total(fp_client, JOBS, "200")
    assert fp_client.get(JOBS, headers=fp_auth()).status_code == 200
    metrics = fp_client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert "bio_http_requests_total" in metrics.text
    assert _requests_total(fp_client, JOBS, "200") == before + 1
    # labelled by route template, never by the raw id
    template = f"{JOBS}/{{job_id}}"
    before = _requests_total(fp_client, template, "404")
    assert fp_client.get(f"{JOBS}/{'9' * 32}", headers=fp_auth()).status_code == 404
    assert _requests_total(fp_client, template, "404") == before + 1
    assert "9" * 32 not in fp_client.get("/metrics").text


def test_readyz_reports_an_unreachable_database(fp_make_settings):
    settings = fp_make_settings(database_url="postgresql://nobody@127.0.0.1:9/none")
    with TestClient(create_app(settings)) as c:
        resp = c.get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "unavailable" and body["checks"]["database"].startswith("error")


def test_openapi_documents_the_normalize_route(fp_client):
    spec = fp_client.get(f"{PREFIX}/openapi.json").json()
    assert set(spec["paths"][NORMALIZE]["post"]["responses"]) >= {"202", "401", "413", "415", "422"}
