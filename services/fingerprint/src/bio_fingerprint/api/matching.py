"""1:1 verification, 1:N identification and the score-to-FMR table their thresholds come from."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from bio_fingerprint import exceptions as exc
from bio_fingerprint.api.deps import AUTH, IdentityDep, RuntimeDep, error_responses, read_files
from bio_fingerprint.api.processing import Dpi, Enhancement
from bio_fingerprint.runtime import PREFIX, settings_of, state_of
from bio_fingerprint.schemas import FingerprintIdentifyOut, FingerprintThresholds, FingerprintVerifyOut
from bio_fingerprint.service import calibration
from bio_fingerprint.service.matching import probe_from_template
from bio_fingerprint.service.processing import check_header
from bio_fingerprint.service.sync import run_now
from bio_fingerprint.service.validation import check_finger, check_rate
from bio_shared.errors import BioError, TimeBudgetExceeded
from bio_shared.runtime import ServiceRuntime

router = APIRouter(prefix=PREFIX, tags=["fingerprint: matching"], dependencies=AUTH)
PROBE_ERRORS: tuple[type[BioError], ...] = (exc.NoProbe, exc.UnusablePrint, exc.InvalidTemplate, exc.InvalidTemplateFormat, exc.TooFewMinutiae,
                exc.InvalidRate, exc.InvalidEnhancement, TimeBudgetExceeded, *exc.IMAGE_ERRORS)
ProbeFile = Annotated[UploadFile | None, File(description="a print image")]
ProbeTemplate = Annotated[UploadFile | None, File(description="an ISO/IEC 19794-2 or JSON template")]
TemplateFormat = Annotated[str | None, Form(max_length=8, description="iso or json; guessed when absent")]


async def _probe(rt: ServiceRuntime, file: UploadFile | None, template: UploadFile | None, template_format: str | None,
                 enhancement: str | None, dpi: int) -> tuple[list[tuple[bytes, str | None]], dict[str, Any]]:
    """The probe upload and its options, checked as far as possible without the engine."""
    if (file is None) == (template is None):
        raise exc.NoProbe()
    files = await read_files(rt, [file or template])  # type: ignore[list-item]
    if file is not None:
        state_of(rt).models.methods(enhancement)
        check_header(rt, files[0][0])
        return files, {"probe": "image", "enhancement": enhancement, "dpi": dpi, "template_format": None}
    probe_from_template(files[0][0], template_format)  # refuses a broken record before a job exists
    return files, {"probe": "template", "enhancement": None, "dpi": dpi, "template_format": template_format}


@router.post("/verify", response_model=FingerprintVerifyOut, operation_id="fingerprint_verify_probe",
             summary="1:1: probe print or template against an enrolled template, or the best of a subject's "
                     "templates (threshold chosen so the decision's FMR is the requested one)",
             responses=error_responses(*PROBE_ERRORS, exc.NoTarget, exc.InvalidFinger, exc.TemplateNotFound))
async def verify(rt: RuntimeDep, identity: IdentityDep, file: ProbeFile = None, template: ProbeTemplate = None,
                 template_format: TemplateFormat = None, template_id: Annotated[str | None, Form(max_length=64)] = None,
                 subject: Annotated[str | None, Form(max_length=256)] = None, finger: Annotated[int | None, Form()] = None,
                 fmr: Annotated[float | None, Form(description="false-match rate of the decision, e.g. 0.001")] = None,
                 enhancement: Enhancement = None, dpi: Dpi = 500) -> FingerprintVerifyOut:
    if not template_id and not subject:
        raise exc.NoTarget()
    options = {"fmr": check_rate(fmr), "template_id": template_id, "subject": subject,
               "finger": None if finger is None else check_finger(finger)}
    files, probe = await _probe(rt, file, template, template_format, enhancement, dpi)
    result = await run_in_threadpool(run_now, rt, identity, "verify", files, {**options, **probe})
    return FingerprintVerifyOut.model_validate(result)


@router.post("/identify", response_model=FingerprintIdentifyOut, operation_id="fingerprint_identify_probe",
             summary="1:N: ranked candidates (subject, finger) at the requested false-positive identification "
                     "rate for the caller's gallery size",
             responses=error_responses(*PROBE_ERRORS))
async def identify(rt: RuntimeDep, identity: IdentityDep, file: ProbeFile = None, template: ProbeTemplate = None,
                   template_format: TemplateFormat = None, top_k: Annotated[int, Form(ge=1, le=100)] = 5,
                   fpir: Annotated[float | None, Form(description="false-positive identification rate, e.g. 0.001")] = None,
                   fmr: Annotated[float | None, Form(description="deprecated alias of fpir")] = None,
                   finger: Annotated[int | None, Form(ge=0, le=10)] = None, enhancement: Enhancement = None,
                   dpi: Dpi = 500) -> FingerprintIdentifyOut:
    rate = check_rate(fpir, "fpir") if fpir is not None else check_rate(fmr)
    files, probe = await _probe(rt, file, template, template_format, enhancement, dpi)
    options = {"fpir": rate, "top_k": top_k, "finger": finger, **probe}
    result = await run_in_threadpool(run_now, rt, identity, "identify", files, options)
    return FingerprintIdentifyOut.model_validate(result)


@router.get("/thresholds", response_model=FingerprintThresholds, operation_id="fingerprint_get_thresholds",
            summary="The single-comparison score-to-FMR table the decision thresholds derive from")
def thresholds(rt: RuntimeDep) -> FingerprintThresholds:
    return FingerprintThresholds.model_validate(calibration.fmr_table(settings_of(rt).extractor,
                                                                           settings_of(rt).score_table))
