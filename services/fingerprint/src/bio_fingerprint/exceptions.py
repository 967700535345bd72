"""Typed errors of the fingerprint service: each has its HTTP status (from the shared base) and a stable
code; routes declare the ones they can return (``responses=error_responses(...)``)."""

from __future__ import annotations

from bio_shared.errors import BadRequest, BioError, NotFound, Unprocessable
from bio_shared.images import IMAGE_ERRORS as IMAGE_ERRORS  # what the shared decoder raises, declared by routes


# -- 400: the request itself is wrong --------------------------------------------------------------
class InvalidFinger(BadRequest):
    code = "invalid_finger"
    message = ("finger must be an ISO/IEC 19794-2 finger position 0-10 (0 unknown, 1 right thumb, ... "
                       "10 left little)")


class InvalidRate(BadRequest):
    code = "invalid_fmr"
    message = "fmr and fpir must be between 0 and 1 (e.g. 0.001)"


class NoProbe(BadRequest):
    code = "no_probe"
    message = "send either file (a print image) or template (ISO or JSON)"


class NoTarget(BadRequest):
    code = "no_target"
    message = "give template_id or subject (optionally with finger)"


class NoFiles(BadRequest):
    code = "no_files"
    message = "no file given"


class TooManyFiles(BadRequest):
    code = "too_many_files"
    message = "too many files in one request"


class InvalidTemplateFormat(BadRequest):
    code = "invalid_template_format"
    message = "template format must be iso or json"


class InvalidEnhancement(BadRequest):
    code = "invalid_enhancement"
    message = "unknown enhancement preset (classic or learned)"




# -- 404 / 410 ---------------------------------------------------------------------------------------
class TemplateNotFound(NotFound):
    code = "template_not_found"
    message = "template not found"


class OutputNotFound(NotFound):
    code = "output_not_found"
    message = "output not found"


class InputMissing(BioError):
    status_code, code = 410, "input_missing"
    message = "the uploaded file is no longer available"


# -- 422: well-formed, but not usable -----------------------------------------------------------------
class InvalidSteps(Unprocessable):
    code = "invalid_steps"
    message = 'steps must be a JSON list like [{"op": "clahe", "clip_limit": 2}] of known operations'


class QualityTooLow(Unprocessable):
    code = "quality_too_low"
    message = "the print quality is under the enrollment minimum"


class TooFewMinutiae(Unprocessable):
    code = "too_few_minutiae"
    message = "the template has too few minutiae"


class UnusablePrint(Unprocessable):
    code = "unusable_print"
    message = "no usable fingerprint in the probe image"


class NotAPrint(Unprocessable):
    code = "not_a_print"
    message = "the image shows no fingerprint"


class InvalidTemplate(Unprocessable):
    code = "invalid_template"
    message = "neither a valid ISO/IEC 19794-2 record nor a valid JSON template"


class NothingEnrolled(Unprocessable):
    code = "nothing_enrolled"
    message = "no print could be enrolled"


class AllFilesFailed(Unprocessable):
    code = "all_files_failed"
    message = "no file of the job could be processed"




def with_file(exc: BioError, name: str | None, index: int) -> BioError:
    """The error of one file of a multi-file request, naming the file and its index."""
    details = exc.details if isinstance(exc.details, dict) else ({"reason": exc.details} if exc.details else {})
    exc.details = {**details, "file": name, "index": index}
    return exc
