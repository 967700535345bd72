"""The contract every service keeps, checked once for each installed service (ids = service names).

Identity, the normalize job (lifecycle, idempotent re-run, result without internal keys), bad input
that leaves nothing behind, request body limits and account isolation; probes, metrics, migrations,
packaging and the RGB normalisation are in test_service_contract_ops.py. The fixtures ``spec``,
``start``, ``svc`` and ``photo`` live in tests/conftest.py. What is specific to one service (its engine,
its normalisation) is tested in its own ``services/<folder>/tests``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import tomllib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import update

from bio_shared.app import MULTIPART_OVERHEAD
from bio_shared.db import session_scope, utcnow
from bio_shared.identity import IDENTITY_HEADER
from bio_shared.services import ENTRY_POINT_GROUP, discover_services
from bio_testing.shared import (
    ServiceClient,
    identity_headers,
    png_bomb,
    png_bytes,
    truncated_jpeg,
    truncated_png,
)

ROOT = Path(__file__).resolve().parents[1]
SPECS = discover_services()


def test_every_service_folder_is_discovered():
    """A service folder whose entry point is not installed would silently escape this suite."""
    declared = set()
    for pyproject in sorted(ROOT.glob("services/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        declared |= set(project["entry-points"][ENTRY_POINT_GROUP])
    assert len(declared) >= 4
    assert declared == set(SPECS)


# -- identity -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,path", [("GET", ""), ("GET", "/0123abcd"), ("POST", "/normalize"),
                                         ("GET", "/0123abcd/output")])
def test_request_without_identity_is_refused(svc, method, path):
    kwargs = {"files": {"file": ("x.jpg", b"x", "image/jpeg")}} if method == "POST" else {}
    resp = svc.client.request(method, svc.jobs_url + path, **kwargs)
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
def test_invalid_identity_is_refused(svc, kind):
    secret = svc.settings.internal_secret
    token = {
        "tampered": lambda: _tampered(identity_headers(secret)[IDENTITY_HEADER]),
        "expired": lambda: identity_headers(secret, ttl_s=-120)[IDENTITY_HEADER],
        "wrong_secret": lambda: identity_headers(secret + "x")[IDENTITY_HEADER],
        "garbage": lambda: "not-a-token",
    }[kind]()
    resp = svc.client.get(svc.jobs_url, headers={IDENTITY_HEADER: token})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_identity"


# -- the normalize job ----------------------------------------------------------------------------
OWNER = "acct-owner-7f3a"


def assert_no_internal_keys(svc: ServiceClient, body: dict) -> None:
    """What a caller sees of a job names no storage key, no blob path and no owner id."""
    dumped = json.dumps(body)
    for leak in ("input_key", "output_key", "owner", OWNER, f"{svc.spec.name}-uploads", f"{svc.spec.name}-normalized",
                 str(svc.rt.blobs.root)):
        assert leak not in dumped, (leak, body)


def test_normalize_job_lifecycle(svc, photo):
    resp = svc.submit(photo, name="photo.jpg", account=OWNER)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["kind"] == "normalize" and body["status"] in ("pending", "running", "succeeded")
    assert body["status_url"] == f"{svc.jobs_url}/{body['id']}"
    assert resp.headers["Location"] == body["status_url"]
    assert_no_internal_keys(svc, body)

    job = svc.wait(body["status_url"], OWNER)
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["attempts"] == 1 and job["error"] is None
    result = job["result"]
    assert (result["source_format"], result["source_mode"], result["filename"]) == ("JPEG", "RGB", "photo.jpg")
    assert result["output_url"] == f"{body['status_url']}/output"
    assert_no_internal_keys(svc, job)
    assert_no_internal_keys(svc, svc.client.get(svc.jobs_url, headers=svc.auth(OWNER)).json())

    img = svc.output(job, OWNER)  # 200, image/png, decodes, sha256 of the result
    channels = {"gray": 1, "rgb": 3}[svc.rt.normalize_mode]
    assert img.mode == ("L" if channels == 1 else "RGB")
    assert (result["width"], result["height"], result["channels"]) == (*img.size, channels)
    # the upload is removed once the job has its output: one PNG is left
    rows, files = svc.stored()
    assert rows == 1 and [p.suffix for p in files] == [".png"]


def test_status_and_output_of_an_unknown_job(svc):
    for job_id in ("0" * 32, "x" * 200):
        for path in (f"{svc.jobs_url}/{job_id}", f"{svc.jobs_url}/{job_id}/output"):
            resp = svc.client.get(path, headers=svc.auth())
            assert resp.status_code == 404
            assert resp.json()["error"]["code"] == "job_not_found"


def _as_left_by_a_dead_worker(svc: ServiceClient, job_id: str, status: str) -> None:
    """The row as a worker leaves it when it dies after its last write: no result, not final."""
    m: Any = svc.rt.jobs.model
    lease = utcnow() - timedelta(seconds=1) if status == "running" else None
    with session_scope(svc.rt.sessions) as s:
        s.execute(update(m).where(m.id == job_id).values(status=status, result=None, finished_at=None, progress=0.3,
                                                          lease_expires_at=lease))


@pytest.mark.parametrize("left_as", ["pending", "running"])
def test_normalize_rerun_after_the_output_was_written_is_idempotent(svc, photo, left_as):
    job = svc.normalize(photo)
    _, files = svc.stored()
    assert [p.suffix for p in files] == [".png"]  # the input blob is gone, the output exists
    _as_left_by_a_dead_worker(svc, job["id"], left_as)
    assert svc.rt.jobs.execute(job["id"]).state == "ran"
    again = svc.wait(job["status_url"])
    assert again["status"] == "succeeded", again
    assert again["attempts"] == 2
    assert again["result"] == job["result"]  # same sha256, same geometry, same output URL
    svc.output(again)
    assert svc.stored()[1] == files


def test_normalize_rerun_without_input_and_output_fails_as_input_missing(svc, photo):
    job = svc.normalize(photo)
    (output,) = svc.stored()[1]
    output.unlink()
    _as_left_by_a_dead_worker(svc, job["id"], "pending")
    assert svc.rt.jobs.execute(job["id"]).state == "ran"
    failed = svc.wait(job["status_url"])
    assert failed["status"] == "failed" and failed["result"] is None
    assert failed["error"]["code"] == "input_missing" and failed["error"]["message"]
    resp = svc.client.get(f"{job['status_url']}/output", headers=svc.auth())
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "job_not_finished"


# -- bad input ------------------------------------------------------------------------------------
BAD_INPUTS = {
    "text": (lambda _: b"this is a text file, not an image\n" * 20, 415, "not_an_image"),
    "empty": (lambda _: b"", 422, "empty_file"),
    "truncated_jpeg": (truncated_jpeg, 422, "corrupt_image"),
    "truncated_png": (truncated_png, 422, "corrupt_image"),
    "bomb": (lambda _: png_bomb(), 413, "too_many_pixels"),
    "tiny": (lambda _: png_bytes(Image.new("RGB", (8, 8))), 422, "image_too_small"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_and_leaves_nothing(svc, photo, case):
    build, status, code = BAD_INPUTS[case]
    resp = svc.submit(build(photo))
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"]
    svc.assert_nothing_stored()


def test_oversized_upload_is_refused(start, photo):
    svc = start(max_upload_bytes=4096)
    assert len(photo) > 4096
    resp = svc.submit(photo)
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "payload_too_large"
    assert resp.json()["error"]["details"]["limit_bytes"] == 4096
    svc.assert_nothing_stored()


def test_upload_limit_comes_from_the_service_env_prefix(monkeypatch, spec, start, photo):
    monkeypatch.setenv(f"BIO_{spec.name.upper()}_MAX_UPLOAD_BYTES", "5000")
    monkeypatch.setenv("BIO_MAX_UPLOAD_BYTES", "7000")  # the service prefix wins over the common one
    svc = start()
    assert svc.settings.max_upload_bytes == 5000
    assert len(photo) > 5000
    resp = svc.submit(photo)
    assert resp.status_code == 413
    assert resp.json()["error"]["details"] == {"limit_bytes": 5000}
    svc.assert_nothing_stored()


def test_missing_file_field_is_a_validation_error(svc):
    resp = svc.client.post(svc.normalize_url, data={"other": "x"}, headers=svc.auth())
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "validation_error"
    svc.assert_nothing_stored()


CHUNK = 64 * 1024


@pytest.mark.parametrize("framing", ["chunked", "content_length"])
def test_body_over_the_limit_is_refused_by_the_middleware(start, photo, framing):
    """A body over max_upload_bytes + the multipart allowance gets 413 from BodyLimitMiddleware before the
    app buffers it: a declared length is refused unread, a stream without one just past the limit."""
    svc = start(max_upload_bytes=64 * 1024)
    limit = svc.settings.max_upload_bytes + MULTIPART_OVERHEAD
    boundary = "contract-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + photo
    tail = f"\r\n--{boundary}--\r\n".encode()
    pieces = [head, *[b"\0" * CHUNK] * ((limit + MULTIPART_OVERHEAD) // CHUNK + 1), tail]
    total = sum(map(len, pieces))
    assert total > svc.settings.max_upload_bytes + 2 * MULTIPART_OVERHEAD
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        for piece in pieces:
            sent += len(piece)
            yield piece

    async def post() -> httpx.Response:
        headers = {**svc.auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"}
        if framing == "content_length":
            headers["Content-Length"] = str(total)
        transport = httpx.ASGITransport(app=svc.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            request = client.build_request("POST", svc.normalize_url, content=stream(), headers=headers)
            assert ("transfer-encoding" in request.headers) == (framing == "chunked")
            return await client.send(request)

    resp = asyncio.run(post())
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"] == {"code": "payload_too_large", "message": f"request body exceeds {limit} bytes",
                                    "details": {"limit_bytes": limit}}
    if framing == "chunked":
        assert limit < sent <= limit + CHUNK  # read just past the limit, never to the end
    else:
        assert sent == 0  # refused on the header alone
    svc.assert_nothing_stored()
    assert svc.client.get("/healthz").status_code == 200  # the app still serves


# -- accounts -------------------------------------------------------------------------------------
def test_accounts_never_see_each_others_jobs(svc, photo):
    job = svc.normalize(photo, account="acct-a")
    own = svc.client.get(f"{svc.jobs_url}/{job['id']}", headers=svc.auth("acct-a"))
    assert own.status_code == 200
    assert svc.client.get(job["result"]["output_url"], headers=svc.auth("acct-a")).status_code == 200
    assert [j["id"] for j in svc.client.get(svc.jobs_url, headers=svc.auth("acct-a")).json()["items"]] == [job["id"]]

    for role in ("user", "admin"):
        other = svc.auth("acct-b", role)
        for path in (f"{svc.jobs_url}/{job['id']}", job["result"]["output_url"]):
            resp = svc.client.get(path, headers=other)
            assert resp.status_code == 404, path
            assert resp.json()["error"]["code"] == "job_not_found"
        assert svc.client.get(svc.jobs_url, headers=other).json()["items"] == []


def test_admin_purge_deletes_one_accounts_rows_and_blobs(svc, photo):
    gone, kept = svc.normalize(photo, account="acct-gone"), svc.normalize(photo, account="acct-kept")
    purge = f"{svc.spec.prefix}/admin/owners/acct-gone"
    refused = svc.client.delete(purge, headers=svc.auth("acct-gone"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert svc.stored()[0] == 2

    resp = svc.client.delete(purge, headers=svc.auth("acct-admin", "admin"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["owner_id"] == "acct-gone"
    # a service may own more tables; only those with rows of this account count here
    assert {k: v for k, v in body["deleted"].items() if v} == {svc.rt.jobs.model.__tablename__: 1, "blobs": 1}
    assert svc.client.get(gone["status_url"], headers=svc.auth("acct-gone")).status_code == 404
    svc.output(kept, "acct-kept")  # the other account keeps its job and its output
    assert svc.stored()[0] == 1 and len(svc.stored()[1]) == 1
    again = svc.client.delete(purge, headers=svc.auth("acct-admin", "admin"))  # idempotent: a retry is harmless
    assert again.status_code == 200 and set(again.json()["deleted"].values()) == {0}
