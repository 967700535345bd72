"""Synchronous routes run through the jobs table with a time budget: past it, a 503 that points to the job,
which goes on and finishes with the answer the route would have given."""

from __future__ import annotations

from pathlib import Path

from bio_testing.shared import wait_for_job

P = "/api/v1/fingerprint"


def test_a_call_over_its_time_budget_points_to_its_job(start, fp_root: Path):
    svc = start(sync_budget_s=0.01)
    data = (fp_root / "fvc2002" / "DB1_B" / "104_2.tif").read_bytes()
    r = svc.client.post(f"{P}/extract", files={"file": ("104_2.tif", data, "image/tiff")}, headers=svc.auth())
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["code"] == "time_budget_exceeded" and r.headers["location"] == err["details"]["status_url"]
    job = wait_for_job(svc.client, err["details"]["status_url"], svc.auth(), timeout_s=60)
    assert job["status"] == "succeeded" and job["kind"] == "sync-extract"
    out = job["result"]["output"]
    assert out["filename"] == "104_2.tif" and len(job["result"]["minutiae"]) == out["minutiae_count"] > 10
    listed = svc.client.get(f"{P}/outputs", headers=svc.auth()).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == out["id"]
    assert [p.parent.name for p in svc.stored()[1]] == ["fingerprint-outputs"]  # the upload is gone


def test_a_call_within_budget_answers_directly_and_keeps_its_job_row(start, fp_root: Path):
    svc = start()
    data = (fp_root / "fvc2002" / "DB1_B" / "104_3.tif").read_bytes()
    r = svc.client.post(f"{P}/extract", files={"file": ("104_3.tif", data, "image/tiff")}, headers=svc.auth())
    assert r.status_code == 200, r.text
    jobs = svc.client.get(f"{P}/jobs", headers=svc.auth()).json()["items"]
    assert [(j["kind"], j["status"]) for j in jobs] == [("sync-extract", "succeeded")]
