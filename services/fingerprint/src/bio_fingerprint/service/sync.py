"""The synchronous routes (extract, enroll, verify, identify, distortion) run as jobs through the
lease-fenced jobs table and wait for them (``bio_shared.run_now``): past ``sync_budget_s`` the caller gets
503 ``time_budget_exceeded`` with the job's status URL, and the job goes on.

What can be refused without the engine (names, rates, steps, image headers, template records) is refused
in the request, before anything is stored. A job refused by the engine (quality too low, not a print)
answers its 4xx and leaves nothing behind either: its uploads are removed by the job and its job row by
the request. Failures on the platform's side (5xx) keep their job row for diagnosis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete

from bio_fingerprint.exceptions import InputMissing, with_file
from bio_fingerprint.models import Job
from bio_fingerprint.runtime import settings_of
from bio_fingerprint.schemas import (
    FingerprintDistortionOut,
    FingerprintEnrollOut,
    FingerprintExtractOut,
    FingerprintIdentifyOut,
    FingerprintVerifyOut,
)
from bio_fingerprint.service import matching, processing
from bio_fingerprint.service.enrollment import process_and_enroll
from bio_shared.db import session_scope
from bio_shared.errors import TimeBudgetExceeded, error_from_dict
from bio_shared.identity import Identity
from bio_shared.jobs import JobContext, JobStatus
from bio_shared.run_now import submit_and_wait
from bio_shared.runtime import ServiceRuntime

Files = list[tuple[bytes, str | None]]
UseCase = Callable[[ServiceRuntime, Identity, Files, dict[str, Any]], dict[str, Any]]


def _extract(rt: ServiceRuntime, identity: Identity, files: Files, o: dict[str, Any]) -> dict[str, Any]:
    (data, name), = files
    res = processing.extract(rt, identity.account_id, data, name, steps=o["steps"], preset=o["enhancement"], dpi=o["dpi"])
    return FingerprintExtractOut.model_validate(res).model_dump(mode="json")


def _enroll(rt: ServiceRuntime, identity: Identity, files: Files, o: dict[str, Any]) -> dict[str, Any]:
    res = process_and_enroll(rt, identity, files, o["subject"], o["finger"], o["steps"], o["enhancement"], o["dpi"])
    return FingerprintEnrollOut.model_validate(res).model_dump(mode="json")


def _probe(rt: ServiceRuntime, files: Files, o: dict[str, Any]) -> matching.Probe:
    (data, _), = files
    if o["probe"] == "template":
        return matching.probe_from_template(data, o["template_format"])
    return matching.probe_from_image(rt, data, o["enhancement"], o["dpi"])


def _verify(rt: ServiceRuntime, identity: Identity, files: Files, o: dict[str, Any]) -> dict[str, Any]:
    res = matching.verify(rt, identity, _probe(rt, files, o), template_id=o["template_id"], subject=o["subject"],
                          finger=o["finger"], fmr=o["fmr"])
    return FingerprintVerifyOut.model_validate(res).model_dump(mode="json")


def _identify(rt: ServiceRuntime, identity: Identity, files: Files, o: dict[str, Any]) -> dict[str, Any]:
    res = matching.identify(rt, identity, _probe(rt, files, o), top_k=o["top_k"], fpir=o["fpir"], finger=o["finger"])
    return FingerprintIdentifyOut.model_validate(res).model_dump(mode="json")


def _distortion(rt: ServiceRuntime, identity: Identity, files: Files, o: dict[str, Any]) -> dict[str, Any]:
    (data, _), = files
    return FingerprintDistortionOut.model_validate(processing.distortion_probabilities(rt, data)).model_dump(mode="json")


USE_CASES: dict[str, UseCase] = {"extract": _extract, "enroll": _enroll, "verify": _verify, "identify": _identify,
                                 "distortion": _distortion}


def _run(rt: ServiceRuntime, use_case: UseCase, ctx: JobContext) -> dict[str, Any]:
    inputs = ctx.params["inputs"]
    try:
        files: Files = []
        for i, item in enumerate(inputs):
            if not rt.blobs.exists(item["input_key"]):
                raise with_file(InputMissing(), item["filename"], i)
            files.append((rt.blobs.get(item["input_key"]), item["filename"]))
        return use_case(rt, Identity(ctx.owner_id, "user"), files, ctx.params["options"])
    finally:
        for item in inputs:  # a synchronous call is not retried with the same uploads
            rt.blobs.delete(item["input_key"])


def register_sync_jobs(rt: ServiceRuntime) -> None:
    def handler(use_case: UseCase) -> Callable[[JobContext], dict[str, Any]]:
        return lambda ctx: _run(rt, use_case, ctx)

    for kind, use_case in USE_CASES.items():
        rt.jobs.handler(f"sync-{kind}")(handler(use_case))


def _forget(rt: ServiceRuntime, job_id: str) -> None:
    with session_scope(rt.sessions) as s:
        s.execute(delete(Job).where(Job.id == job_id))


def run_now(rt: ServiceRuntime, identity: Identity, kind: str, files: Files, options: dict[str, Any]) -> dict[str, Any]:
    """Store the uploads, run ``kind`` as a job and wait for it up to the service's time budget."""
    keys: list[str] = []
    try:
        for data, _ in files:
            keys.append(rt.blobs.put(rt.blobs.new_key(identity.account_id, "fingerprint-uploads", "bin"), data))
        params = {"inputs": [{"input_key": k, "filename": n} for k, (_, n) in zip(keys, files, strict=True)],
                  "options": options}
        budget = settings_of(rt).sync_budget_s
        job = submit_and_wait(rt.jobs, identity, f"sync-{kind}", params, wait_s=budget)
    except Exception:
        for k in keys:
            rt.blobs.delete(k)
        raise
    if job.status == JobStatus.succeeded.value:
        return dict(job.result or {})
    if job.status == JobStatus.failed.value:
        error = error_from_dict(job.error)
        if error.status_code < 500:
            _forget(rt, job.id)
        raise error
    url = rt.jobs.status_url(job.id)
    raise TimeBudgetExceeded(f"the request did not finish within {budget:g} s; it goes on as job {job.id}: poll {url}",
                             details={"job_id": job.id, "status_url": url}, headers={"Location": url, "Retry-After": "1"})
