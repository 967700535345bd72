"""Submit a contour request: as a job (202), or synchronously (the same job, waited for within the
service's time budget). Both go through the lease-fenced jobs table (bio_shared.run_now)."""

from __future__ import annotations

from typing import Any

from bio_contour_mask.exceptions import TooLargeForSync
from bio_contour_mask.runtime import ContourRuntime
from bio_contour_mask.service.inputs import ContourInput
from bio_contour_mask.service.jobs import CONTOURS_KIND
from bio_contour_mask.service.storage import drop_inputs, upload_key
from bio_shared.errors import TimeBudgetExceeded, error_from_dict
from bio_shared.identity import Identity
from bio_shared.jobs import JobStatus
from bio_shared.run_now import submit_and_wait, wait_for_job


def _store(rt: ContourRuntime, identity: Identity, inp: ContourInput) -> dict[str, Any]:
    owner = identity.account_id
    params: dict[str, Any] = {"image_key": rt.blobs.put(upload_key(rt, owner), inp.image), "map_key": None}
    try:
        if inp.label_map is not None:
            params["map_key"] = rt.blobs.put(upload_key(rt, owner), inp.label_map)
    except Exception:
        drop_inputs(rt, params)
        raise
    params.update(filename=inp.filename, options=inp.options.model_dump(mode="json"),
                  landmarks=inp.landmarks.points.tolist() if inp.landmarks is not None else None)
    return params


def _submit(rt: ContourRuntime, identity: Identity, inp: ContourInput, wait_s: float) -> Any:
    params = _store(rt, identity, inp)
    try:
        job = submit_and_wait(rt.jobs, identity, CONTOURS_KIND, params, wait_s=0.0)
    except Exception:  # no job row: nobody else will delete the uploads
        drop_inputs(rt, params)
        raise
    return wait_for_job(rt.jobs, job.id, identity, wait_s=wait_s) if wait_s > 0 else job


def submit_contours(rt: ContourRuntime, identity: Identity, inp: ContourInput) -> Any:
    """The job row, pending (202)."""
    return _submit(rt, identity, inp, 0.0)


def extract_now(rt: ContourRuntime, identity: Identity, inp: ContourInput) -> Any:
    """The synchronous variant: the finished job, its error as the typed error it was, or 503
    ``time_budget_exceeded`` naming the job's status URL when ``sync_budget_s`` runs out (the job goes on)."""
    limit = rt.state.settings.sync_max_pixels
    if inp.width * inp.height > limit:
        raise TooLargeForSync(f"the image is {inp.width}x{inp.height}; the synchronous endpoint takes at most "
                              f"{limit} pixels: submit a job (POST {rt.prefix}/jobs/contours)",
                              details={"limit_pixels": limit})
    budget = rt.state.settings.sync_budget_s
    job = _submit(rt, identity, inp, budget)
    if job.status == JobStatus.succeeded.value:
        return job
    if job.status == JobStatus.failed.value:
        raise error_from_dict(job.error)
    url = rt.jobs.status_url(job.id)
    raise TimeBudgetExceeded(f"the request did not finish within {budget:g} s; it goes on as job {job.id}: poll {url}",
                             details={"job_id": job.id, "status_url": url}, headers={"Location": url})
