"""Typed errors of the face recognition service: each has its HTTP status and stable code, and the routes
declare the ones they can return (``responses=error_responses(EventNotFound, ...)``)."""

from __future__ import annotations

from typing import Any, ClassVar

from bio_shared.errors import BadRequest, BioError, Conflict, NotFound, PayloadTooLarge, Unprocessable
from bio_shared.schemas import ErrorResponse


class _Typed(BioError):
    """A domain error with a default message, so ``raise EventNotFound()`` is enough."""

    message: ClassVar[str] = ""

    def __init__(self, message: str | None = None, **kw: Any) -> None:
        super().__init__(message or type(self).message, **kw)


# -- lookups -------------------------------------------------------------------------------------------
class EventNotFound(_Typed, NotFound):
    code, message = "event_not_found", "event not found"


class PersonNotFound(_Typed, NotFound):
    code, message = "person_not_found", "person not found in this event"


class ImageNotFound(_Typed, NotFound):
    code, message = "image_not_found", "image not found for this person"


class ImageNotKept(_Typed, NotFound):
    code, message = "image_not_kept", "this event does not keep images; only the embedding was stored"


class UnknownNotFound(_Typed, NotFound):
    code, message = "unknown_not_found", "unknown face not found (or expired)"


class CropNotFound(_Typed, NotFound):
    code, message = "crop_not_found", "no crop is stored for this face"


# -- conflicts -----------------------------------------------------------------------------------------
class EventNameTaken(_Typed, Conflict):
    code, message = "event_name_taken", "an event with this name already exists"


class PersonNameTaken(_Typed, Conflict):
    code, message = "person_name_taken", "a person with this name already exists in this event"


class DuplicatePerson(_Typed, Conflict):
    code, message = "duplicate_person", "the face already matches another person of this event"


class PersonHasNoEmbeddings(_Typed, Conflict):
    code, message = ("person_has_no_embeddings",
                             "this person has no embedding of the current model; add an image first")


# -- bad requests --------------------------------------------------------------------------------------
class NoImages(_Typed, BadRequest):
    code, message = "no_images", "at least one image is needed"


class TooManyImages(_Typed, BadRequest):
    code, message = "too_many_images", "too many images in one request"


class PersonOrName(_Typed, BadRequest):
    code, message = "person_or_name", "give either person_id (an existing person) or name (a new person)"


class InvalidName(_Typed, Unprocessable):
    code, message = "invalid_name", "the name is empty or contains control or bidirectional characters"


# -- refused faces (422) -------------------------------------------------------------------------------
class NoFace(_Typed, Unprocessable):
    code, message = "no_face", "no face was found in the photo"


class MultipleFaces(_Typed, Unprocessable):
    code, message = "multiple_faces", "several faces were found; send a photo of one person"


class FaceTooSmall(_Typed, Unprocessable):
    code, message = "face_too_small", "the face is too small to enroll"


class FaceTooBlurred(_Typed, Unprocessable):
    code, message = "face_too_blurred", "the face is too blurred to enroll"


# -- archives ------------------------------------------------------------------------------------------
class NotAZip(_Typed, Unprocessable):
    code, message = "not_a_zip", "the upload is not a readable zip archive"


class TooManyFiles(_Typed, Unprocessable):
    code, message = "too_many_files", "the archive has too many files"


class OverlappingEntries(_Typed, Unprocessable):
    code, message = ("overlapping_entries",
                             "entries of the archive share their compressed data (a zip bomb); refused")


class ArchiveTooLarge(_Typed, PayloadTooLarge):
    code, message = "archive_too_large", "the archive's files are too large in total once uncompressed"


class InputMissing(_Typed, BioError):
    status_code = 410
    code, message = "input_missing", "the uploaded archive is no longer available; submit it again"


# Errors of the image decoder every upload route can return (bio_shared.images).
DECODE_ERRORS: dict[int, tuple[str, ...]] = {
    413: ("payload_too_large", "too_many_pixels"),
    415: ("not_an_image", "unsupported_format"),
    422: ("corrupt_image", "image_too_small"),
}


def error_responses(*errors: type[BioError], decode: bool = False) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: per status the error model and the codes it can carry."""
    codes: dict[int, list[str]] = {}
    for exc in errors:
        codes.setdefault(exc.status_code, []).append(exc.code)
    if decode:
        for status, names in DECODE_ERRORS.items():
            codes.setdefault(status, []).extend(names)
    return {status: {"model": ErrorResponse, "description": "codes: " + ", ".join(sorted(set(names)))}
            for status, names in sorted(codes.items())}
