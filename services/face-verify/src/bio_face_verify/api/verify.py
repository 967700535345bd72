"""POST two photos -> a verification job (202), or its outcome at once with ?wait=."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bio_face_verify.schemas import VerificationResult
from bio_face_verify.service import ERROR_STATUS, VerifyRequest, submit_verification, wait_for
from bio_shared.app import ERROR_RESPONSES, accepted
from bio_shared.errors import BadRequest, error_body
from bio_shared.identity import Identity
from bio_shared.jobs import JobStatus, job_to_dict
from bio_shared.runtime import ServiceRuntime
from bio_shared.schemas import ErrorResponse, JobOut
from bio_shared.uploads import read_upload

DESCRIPTION = """Compare the faces of two photos: are they the same person?

Answers **202** with a job (poll its `status_url`); its `result` is a `VerificationResult` once it has
succeeded. With `wait=N` (seconds, at most the service's `max_wait_s`) the call waits for the job and
answers **200** with the finished job, or the job's error status (e.g. **422** `no_face`) with the error
body and `details.job_id`; a job still running after N seconds is answered with 202 as usual.

Per image, a job fails with: `no_face`, `multiple_faces` (unless `multiple_faces=largest`),
`face_too_small`, `non_frontal` (only with `pose_policy=reject`); `details.image` names the image.
Undecodable uploads are refused at once (413, 415, 422) and leave no job."""


def verify_router(rt: ServiceRuntime) -> APIRouter:
    router = APIRouter(prefix=f"{rt.prefix}/jobs", tags=[f"{rt.name} verification"], responses=ERROR_RESPONSES)

    @router.post(
        "/verify", status_code=202, response_model=JobOut, summary="Verify that two photos show the same person",
        description=DESCRIPTION,
        responses={200: {"model": JobOut, "description": "finished within ?wait="},
                   410: {"model": ErrorResponse}, 413: {"model": ErrorResponse}, 415: {"model": ErrorResponse},
                   422: {"model": ErrorResponse}},
        openapi_extra={"x-result-schema": VerificationResult.model_json_schema()},
    )
    async def submit_verify(
        image_a: UploadFile = File(..., description="first photo (JPEG, PNG, WebP, TIFF, BMP, GIF)"),
        image_b: UploadFile = File(..., description="second photo"),
        pose_policy: Literal["reject", "flag"] = Query(
            "reject", description="reject: a non-frontal face fails the job (422 non_frontal); flag: only report it"),
        multiple_faces: Literal["error", "largest"] = Query(
            "error", description="error: a photo with several faces fails the job; largest: use the largest face"),
        wait: float = Query(0, ge=0, description="seconds to wait for the outcome (synchronous use)"),
        identity: Identity = Depends(rt.require_identity),
    ) -> JSONResponse:
        if wait > rt.settings.max_wait_s:
            raise BadRequest(f"wait is at most {rt.settings.max_wait_s:g} s", code="wait_too_long",
                             details={"max_wait_s": rt.settings.max_wait_s})
        uploads = {}
        for label, upload in (("image_a", image_a), ("image_b", image_b)):
            try:
                uploads[label] = (await read_upload(upload, rt.settings.max_upload_bytes), upload.filename)
            except Exception as exc:
                if hasattr(exc, "message"):
                    exc.message = f"{label}: {exc.message}"  # type: ignore[attr-defined]
                    details = getattr(exc, "details", None)
                    exc.details = {"image": label, **(details if isinstance(details, dict) else {})}  # type: ignore
                raise
        req = VerifyRequest(pose_policy=pose_policy, multiple_faces=multiple_faces)
        job = await run_in_threadpool(submit_verification, rt, identity, uploads, req)
        if wait <= 0:
            return accepted(job, rt)
        job = await run_in_threadpool(wait_for, rt, job.id, identity, wait)
        body = JobOut.model_validate(job_to_dict(job, rt.jobs)).model_dump(mode="json")
        if job.status == JobStatus.succeeded.value:
            return JSONResponse(body, status_code=200)
        if job.status == JobStatus.failed.value:
            err = job.error or {}
            details = err.get("details") if isinstance(err.get("details"), dict) else {}
            status = ERROR_STATUS.get(err.get("code", ""), 500 if err.get("code") == "internal_error" else 422)
            return JSONResponse(error_body(err.get("code", "job_failed"), err.get("message", "the job failed"),
                                           {**details, "job_id": job.id, "status_url": body["status_url"]}),
                                status_code=status)
        return accepted(job, rt)

    return router
