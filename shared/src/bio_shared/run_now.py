"""Run now or as a job, one way for every service: the work always goes through the jobs table (so
the lease fencing, retries and the reaper apply); a synchronous endpoint just waits for it a while.

- ``submit_and_wait``: the ``?wait=`` endpoints; returns the job row, finished or not.
- ``run_sync``: the synchronous endpoints; returns the result, raises the job's error as the
  BioError it was, or ``TimeBudgetExceeded`` (503, with the job's status URL) when the budget runs out
  (the job goes on, and the client polls).
"""

from __future__ import annotations

import time
from typing import Any

from bio_shared.errors import TimeBudgetExceeded, error_from_dict
from bio_shared.identity import Identity
from bio_shared.jobs import FINAL, JobQueue, JobStatus

_FIRST_POLL_S = 0.01
_MAX_POLL_S = 0.25


def wait_for_job(queue: JobQueue, job_id: str, identity: Identity, *, wait_s: float) -> Any:
    """Poll the jobs table until the job is final or ``wait_s`` has passed; return the last row read."""
    deadline = time.monotonic() + max(0.0, wait_s)
    delay = _FIRST_POLL_S
    while True:
        job = queue.get(job_id, identity)
        remaining = deadline - time.monotonic()
        if job.status in FINAL or remaining <= 0:
            return job
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, _MAX_POLL_S)


def submit_and_wait(queue: JobQueue, identity: Identity, kind: str, params: dict[str, Any], *,
                    wait_s: float) -> Any:
    job = queue.submit(identity, kind, params)
    if wait_s <= 0:
        return job
    return wait_for_job(queue, job.id, identity, wait_s=wait_s)


def run_sync(queue: JobQueue, identity: Identity, kind: str, params: dict[str, Any], *,
             budget_s: float) -> dict[str, Any]:
    job = submit_and_wait(queue, identity, kind, params, wait_s=budget_s)
    if job.status == JobStatus.succeeded.value:
        return dict(job.result or {})
    if job.status == JobStatus.failed.value:
        raise error_from_dict(job.error)
    url = queue.status_url(job.id)
    raise TimeBudgetExceeded(
        f"the request did not finish within {budget_s:g} s; it goes on as job {job.id}: poll {url}",
        details={"job_id": job.id, "status_url": url}, headers={"Location": url, "Retry-After": "1"},
    )
