"""Distortion-type probabilities of a print."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from starlette.concurrency import run_in_threadpool

from bio_fingerprint import exceptions as exc
from bio_fingerprint.api.deps import AUTH, IdentityDep, RuntimeDep, error_responses, read_files
from bio_fingerprint.runtime import PREFIX
from bio_fingerprint.schemas import FingerprintDistortionOut
from bio_fingerprint.service.processing import check_header
from bio_fingerprint.service.sync import run_now
from bio_shared.errors import TimeBudgetExceeded

router = APIRouter(prefix=PREFIX, tags=["fingerprint: distortion"], dependencies=AUTH)


@router.post("/distortion", response_model=FingerprintDistortionOut, operation_id="fingerprint_classify_distortion",
             summary="Distortion-type probabilities of a print (small CNN); 422 not_a_print for anything else",
             responses=error_responses(exc.NotAPrint, TimeBudgetExceeded, *exc.IMAGE_ERRORS))
async def distortion(rt: RuntimeDep, identity: IdentityDep, file: Annotated[UploadFile, File()]) -> FingerprintDistortionOut:
    files = await read_files(rt, [file])
    check_header(rt, files[0][0])
    return FingerprintDistortionOut.model_validate(await run_in_threadpool(run_now, rt, identity, "distortion", files, {}))
