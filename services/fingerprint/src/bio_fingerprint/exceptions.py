"""Typed errors of the fingerprint service: each has its HTTP status (from the shared base) and a stable
code; routes declare the ones they can return (``responses=error_responses(...)``)."""

from __future__ import annotations

from typing import Any

from bio_shared.errors import BadRequest, BioError, NotFound, Unprocessable


class _Typed:
    """A default message, so ``raise NoProbe()`` reads well where nothing needs to be added."""

    default_message = ""

    def __init__(self, message: str | None = None, **kw: Any) -> None:
        super().__init__(message or self.default_message, **kw)  # type: ignore[call-arg]


# -- 400: the request itself is wrong --------------------------------------------------------------
class InvalidFinger(_Typed, BadRequest):
    code = "invalid_finger"
    default_message = ("finger must be an ISO/IEC 19794-2 finger position 0-10 (0 unknown, 1 right thumb, ... "
                       "10 left little)")


class InvalidRate(_Typed, BadRequest):
    code = "invalid_fmr"
    default_message = "fmr and fpir must be between 0 and 1 (e.g. 0.001)"


class NoProbe(_Typed, BadRequest):
    code = "no_probe"
    default_message = "send either file (a print image) or template (ISO or JSON)"


class NoTarget(_Typed, BadRequest):
    code = "no_target"
    default_message = "give template_id or subject (optionally with finger)"


class NoFiles(_Typed, BadRequest):
    code = "no_files"
    default_message = "no file given"


class TooManyFiles(_Typed, BadRequest):
    code = "too_many_files"


class InvalidTemplateFormat(_Typed, BadRequest):
    code = "invalid_template_format"
    default_message = "template format must be iso or json"


class InvalidEnhancement(_Typed, BadRequest):
    code = "invalid_enhancement"


class StepsNotJson(_Typed, BadRequest):
    code = "invalid_steps"
    default_message = 'steps must be a JSON list like [{"op": "clahe", "clip_limit": 2}]'


# -- 404 / 410 ---------------------------------------------------------------------------------------
class TemplateNotFound(_Typed, NotFound):
    code = "template_not_found"
    default_message = "template not found"


class OutputNotFound(_Typed, NotFound):
    code = "output_not_found"
    default_message = "output not found"


class InputMissing(_Typed, BioError):
    status_code, code = 410, "input_missing"
    default_message = "the uploaded file is no longer available"


# -- 422: well-formed, but not usable -----------------------------------------------------------------
class InvalidSteps(_Typed, Unprocessable):
    code = "invalid_steps"


class QualityTooLow(_Typed, Unprocessable):
    code = "quality_too_low"


class TooFewMinutiae(_Typed, Unprocessable):
    code = "too_few_minutiae"


class UnusablePrint(_Typed, Unprocessable):
    code = "unusable_print"


class NotAPrint(_Typed, Unprocessable):
    code = "not_a_print"


class InvalidTemplate(_Typed, Unprocessable):
    code = "invalid_template"


class NothingEnrolled(_Typed, Unprocessable):
    code = "nothing_enrolled"
    default_message = "no print could be enrolled"


class AllFilesFailed(_Typed, Unprocessable):
    code = "all_files_failed"
    default_message = "no file of the job could be processed"


def with_file(exc: BioError, name: str | None, index: int) -> BioError:
    """The error of one file of a multi-file request, naming the file and its index."""
    details = exc.details if isinstance(exc.details, dict) else ({"reason": exc.details} if exc.details else {})
    exc.details = {**details, "file": name, "index": index}
    return exc
