"""Processing prints: one now (extract), many as a background job."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bio_fingerprint import exceptions as exc
from bio_fingerprint.api.deps import AUTH, IdentityDep, RuntimeDep, StateDep, error_responses, read_files
from bio_fingerprint.runtime import PREFIX
from bio_fingerprint.schemas import FingerprintExtractOut
from bio_fingerprint.service import processing
from bio_fingerprint.service.jobs import submit_batch
from bio_fingerprint.service.sync import run_now
from bio_fingerprint.service.validation import check_finger, check_subject, parse_steps
from bio_shared.app import accepted
from bio_shared.errors import InvalidName, TimeBudgetExceeded
from bio_shared.schemas import JobOut

router = APIRouter(prefix=PREFIX, tags=["fingerprint: processing"], dependencies=AUTH)
Dpi = Annotated[int, Form(ge=100, le=2000, description="resolution of the print in dots per inch")]
Steps = Annotated[str | None, Form(description='classic steps before enhancement, JSON: [{"op": "clahe", ...}]')]
Enhancement = Annotated[str | None, Form(max_length=32, description="classic or learned")]


@router.post("/jobs/process", status_code=202, response_model=JobOut, operation_id="fingerprint_submit_process_job",
             summary="Batch: process (and optionally enroll) one or many prints as a background job",
             responses=error_responses(exc.NoFiles, exc.TooManyFiles, exc.InvalidSteps, exc.InvalidEnhancement,
                                       exc.InvalidFinger, *exc.IMAGE_ERRORS, InvalidName))
async def submit_process(rt: RuntimeDep, identity: IdentityDep, state: StateDep,
                         files: Annotated[list[UploadFile], File()], steps: Steps = None,
                         enhancement: Enhancement = None,
                         subject: Annotated[str | None, Form(description="enroll every print under this subject")] = None,
                         finger: Annotated[int, Form()] = 0, dpi: Dpi = 500) -> JSONResponse:
    options: dict[str, Any] = {"steps": parse_steps(steps), "enhancement": enhancement, "dpi": dpi}
    if enhancement:
        state.models.methods(enhancement)
    finger = check_finger(finger)  # refused even when unused: a value outside 0-10 is a client error
    if subject:  # an empty field means: process only
        options.update(subject=check_subject(subject), finger=finger)
    data = await read_files(rt, files)
    job = await run_in_threadpool(submit_batch, rt, identity, data, options)
    return accepted(job, rt)


@router.post("/extract", response_model=FingerprintExtractOut, operation_id="fingerprint_extract_print",
             summary="Process one print now: enhanced image, minutiae and quality (stored as an output)",
             responses=error_responses(exc.InvalidSteps, exc.InvalidEnhancement, TimeBudgetExceeded, *exc.IMAGE_ERRORS))
async def extract(rt: RuntimeDep, identity: IdentityDep, state: StateDep, file: Annotated[UploadFile, File()],
                  steps: Steps = None, enhancement: Enhancement = None, dpi: Dpi = 500) -> FingerprintExtractOut:
    options = {"steps": parse_steps(steps), "enhancement": enhancement, "dpi": dpi}
    state.models.methods(enhancement)
    files = await read_files(rt, [file])
    processing.check_header(rt, files[0][0])
    return FingerprintExtractOut.model_validate(await run_in_threadpool(run_now, rt, identity, "extract", files, options))
