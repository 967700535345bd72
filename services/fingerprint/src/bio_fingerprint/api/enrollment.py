"""Enrollment of a few impressions of one finger, now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from bio_fingerprint import exceptions as exc
from bio_fingerprint.api.deps import AUTH, IdentityDep, RuntimeDep, StateDep, error_responses, read_files
from bio_fingerprint.api.processing import Dpi, Enhancement, Steps
from bio_fingerprint.runtime import PREFIX, settings_of
from bio_fingerprint.schemas import FingerprintEnrollOut
from bio_fingerprint.service.processing import check_headers
from bio_fingerprint.service.sync import run_now
from bio_fingerprint.service.validation import check_finger, check_subject, parse_steps
from bio_shared.errors import InvalidName, TimeBudgetExceeded

router = APIRouter(prefix=PREFIX, tags=["fingerprint: enrollment"], dependencies=AUTH)


@router.post("/enroll", status_code=201, response_model=FingerprintEnrollOut, operation_id="fingerprint_enroll_prints",
             summary="Process and enroll a few impressions of one finger now (422 under the quality minimum; "
                     "a refused print stores nothing)",
             responses=error_responses(exc.NoFiles, exc.TooManyFiles, exc.InvalidFinger, exc.InvalidSteps,
                                       exc.InvalidSteps, exc.QualityTooLow, exc.TooFewMinutiae, exc.NothingEnrolled, TimeBudgetExceeded,
                                       *exc.IMAGE_ERRORS, InvalidName))
async def enroll(rt: RuntimeDep, identity: IdentityDep, state: StateDep, files: Annotated[list[UploadFile], File()],
                 subject: Annotated[str, Form()], finger: Annotated[int, Form()] = 0, steps: Steps = None,
                 enhancement: Enhancement = None, dpi: Dpi = 500) -> FingerprintEnrollOut:
    limit = settings_of(rt).sync_max_files
    if len(files) > limit:  # before reading them
        raise exc.TooManyFiles(f"at most {limit} files per synchronous call; use POST {PREFIX}/jobs/process",
                               details={"limit": limit})
    options = {"subject": check_subject(subject), "finger": check_finger(finger), "steps": parse_steps(steps),
               "enhancement": enhancement, "dpi": dpi}
    state.models.methods(enhancement)
    data = await read_files(rt, files)
    check_headers(rt, data)
    result = await run_in_threadpool(run_now, rt, identity, "enroll", data, options)
    return FingerprintEnrollOut.model_validate(result)
