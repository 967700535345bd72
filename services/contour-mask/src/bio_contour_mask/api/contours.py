"""Submit a face image (with optional landmarks and label map) for contour masks: as a job, or synchronously."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bio_contour_mask import exceptions as E
from bio_contour_mask.api.deps import ContourRequestDep, IdentityDep, RuntimeDep, require_identity
from bio_contour_mask.api.request import REQUEST_BODY, ContourRequest
from bio_contour_mask.runtime import PREFIX, ContourRuntime
from bio_contour_mask.service.inputs import ContourInput, validate_input
from bio_contour_mask.service.submit import extract_now, submit_contours
from bio_shared.app import ERROR_RESPONSES, accepted
from bio_shared.errors import InvalidJson, PayloadTooLarge, TimeBudgetExceeded, Unprocessable, UnsupportedMedia
from bio_shared.jobs import job_to_dict
from bio_shared.schemas import JobOut
from bio_shared.web.errors import error_responses

router = APIRouter(prefix=PREFIX, tags=["contour_mask: contours"], responses=ERROR_RESPONSES,
                   dependencies=[Depends(require_identity)])

UPLOAD_ERRORS = (*E.INPUT_ERRORS, InvalidJson, PayloadTooLarge, UnsupportedMedia, Unprocessable)


async def _validated(rt: ContourRuntime, req: ContourRequest) -> ContourInput:
    return await run_in_threadpool(validate_input, rt, req.image, req.landmarks, req.label_map, req.options,
                                   req.filename)


@router.post("/jobs/contours", status_code=202, response_model=JobOut, openapi_extra=REQUEST_BODY,
             operation_id="contour_mask_submit_contours", responses=error_responses(*UPLOAD_ERRORS),
             summary="Submit a face image (with optional landmarks and label map) for contour masks; 202 + job")
async def submit(rt: RuntimeDep, identity: IdentityDep, req: ContourRequestDep) -> JSONResponse:
    inp = await _validated(rt, req)
    job = await run_in_threadpool(submit_contours, rt, identity, inp)
    return accepted(job, rt)


@router.post("/extract", response_model=JobOut, openapi_extra=REQUEST_BODY, operation_id="contour_mask_extract_contours",
             responses=error_responses(*UPLOAD_ERRORS, E.TooLargeForSync, E.NoFace, E.InputMissing, TimeBudgetExceeded),
             summary="The synchronous variant for small images: the finished job (result with inline SVG), or 503 "
                     "time_budget_exceeded with the job's status URL")
async def extract(rt: RuntimeDep, identity: IdentityDep, req: ContourRequestDep) -> JobOut:
    inp = await _validated(rt, req)
    job = await run_in_threadpool(extract_now, rt, identity, inp)
    return JobOut.model_validate(job_to_dict(job, rt.jobs))
