"""The face-verify service's errors: one class per code. A job stores its error as a code; read back,
the code is this class again (bio_shared.errors registry), so ``?wait=`` answers with its status."""

from __future__ import annotations

from typing import Any

from bio_shared.errors import BadRequest, BioError, Unprocessable
from bio_shared.errors import InputMissing as SharedInputMissing


class NoFace(Unprocessable):
    code, message = "no_face", "no face found"


class MultipleFaces(Unprocessable):
    code, message = "multiple_faces", "several faces found"


class FaceTooSmall(Unprocessable):
    code, message = "face_too_small", "the face is too small"


class NonFrontal(Unprocessable):
    code, message = "non_frontal", "the face is not frontal"


class InputMissing(SharedInputMissing):
    message = "the uploaded images are no longer available"


class WaitTooLong(BadRequest):
    code, message = "wait_too_long", "wait is longer than the service allows"


FACE_ERRORS: dict[str, type[BioError]] = {c.code: c for c in (NoFace, MultipleFaces, FaceTooSmall, NonFrontal)}


def face_error(code: str, message: str, details: dict[str, Any]) -> BioError:
    return FACE_ERRORS.get(code, Unprocessable)(message, code=code, details=details)
