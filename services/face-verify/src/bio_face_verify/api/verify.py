"""POST two photos -> a verification job (202), or its outcome at once with ?wait=."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bio_face_verify import exceptions as E
from bio_face_verify.api.deps import IdentityDep, PhotoPairDep, RuntimeDep, read_pair, require_identity
from bio_face_verify.runtime import PREFIX, FaceVerifyRuntime
from bio_face_verify.schemas import VerificationResult
from bio_face_verify.service.verification import submit_verification
from bio_shared.app import ERROR_RESPONSES, accepted
from bio_shared.errors import (
    InternalError,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMedia,
    error_body,
    error_from_dict,
)
from bio_shared.jobs import JobStatus, job_to_dict
from bio_shared.schemas import JobOut
from bio_shared.web.errors import error_responses

DESCRIPTION = """Compare the faces of two photos: are they the same person?

Answers **202** with a job (poll its `status_url`); its `result` is a `VerificationResult` once it has
succeeded. With `wait=N` (seconds, at most the service's `max_wait_s`) the call waits for the job and
answers **200** with the finished job, or the job's error status (e.g. **422** `no_face`) with the error
body and `details.job_id`; a job still running after N seconds is answered with 202 as usual.

Per image, a job fails with: `no_face`, `multiple_faces` (unless `multiple_faces=largest`),
`face_too_small`, `non_frontal` (only with `pose_policy=reject`); `details` name the field (`image`),
the file (`file`) and its index (`index`, 0 or 1). Undecodable uploads are refused at once (413, 415, 422)
and leave no job."""

router = APIRouter(prefix=f"{PREFIX}/jobs", tags=["face_verify: verification"], responses=ERROR_RESPONSES,
                   dependencies=[Depends(require_identity)])

def _failure(rt: FaceVerifyRuntime, job: Any) -> JSONResponse:
    err = job.error or {}
    exc = error_from_dict(err)
    status = exc.status_code
    if isinstance(exc, InternalError) and exc.code != InternalError.code:
        status = 422  # a code no class declares: the input's fault (decoder codes come back typed)
    details = exc.details if isinstance(exc.details, dict) else {}
    body = error_body(exc.code, exc.message, {**details, "job_id": job.id, "status_url": rt.jobs.status_url(job.id)})
    return JSONResponse(body, status_code=status)


@router.post(
    "/verify", status_code=202, response_model=JobOut, summary="Verify that two photos show the same person",
    description=DESCRIPTION, operation_id="face_verify_submit_verification",
    responses={200: {"model": JobOut, "description": "finished within ?wait="},
               **error_responses(E.WaitTooLong, E.InputMissing, PayloadTooLarge, UnsupportedMedia, Unprocessable,
                                 E.NoFace, E.MultipleFaces, E.FaceTooSmall, E.NonFrontal)},
    openapi_extra={"x-result-schema": VerificationResult.model_json_schema()},
)
async def submit_verify(
    rt: RuntimeDep,
    identity: IdentityDep,
    files: PhotoPairDep,
    pose_policy: Annotated[Literal["reject", "flag"], Query(
        description="reject: a non-frontal face fails the job (422 non_frontal); flag: only report it")] = "reject",
    multiple_faces: Annotated[Literal["error", "largest"], Query(
        description="error: a photo with several faces fails the job; largest: use the largest face")] = "error",
    wait: Annotated[float, Query(ge=0, le=10**6, description="seconds to wait for the outcome (synchronous use)")] = 0,
) -> JSONResponse:
    if wait > rt.state.settings.max_wait_s:
        raise E.WaitTooLong(f"wait is at most {rt.state.settings.max_wait_s:g} s", details={"max_wait_s": rt.state.settings.max_wait_s})
    uploads = await read_pair(rt, files)
    params = {"pose_policy": pose_policy, "multiple_faces": multiple_faces}
    job = await run_in_threadpool(submit_verification, rt, identity, uploads, params, wait)
    if job.status == JobStatus.succeeded.value and wait > 0:
        return JSONResponse(JobOut.model_validate(job_to_dict(job, rt.jobs)).model_dump(mode="json"), status_code=200)
    if job.status == JobStatus.failed.value and wait > 0:
        return _failure(rt, job)
    return accepted(job, rt)
