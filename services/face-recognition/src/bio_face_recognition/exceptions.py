"""Typed errors of the face recognition service: each has its HTTP status and stable code, and the routes
declare the ones they can return (``responses=error_responses(EventNotFound, ...)``)."""

from __future__ import annotations

from typing import Any

from bio_shared.errors import (
    BadRequest,
    BioError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
)
from bio_shared.errors import InputMissing as SharedInputMissing
from bio_shared.errors import InvalidName as InvalidName
from bio_shared.images import IMAGE_ERRORS  # what the shared decoder raises
from bio_shared.web.errors import error_responses as shared_error_responses


# -- lookups -------------------------------------------------------------------------------------------
class EventNotFound(NotFound):
    code, message = "event_not_found", "event not found"


class PersonNotFound(NotFound):
    code, message = "person_not_found", "person not found in this event"


class ImageNotFound(NotFound):
    code, message = "image_not_found", "image not found for this person"


class ImageNotKept(NotFound):
    code, message = "image_not_kept", "this event does not keep images; only the embedding was stored"


class UnknownNotFound(NotFound):
    code, message = "unknown_not_found", "unknown face not found (or expired)"


class CropNotFound(NotFound):
    code, message = "crop_not_found", "no crop is stored for this face"


# -- conflicts -----------------------------------------------------------------------------------------
class EventNameTaken(Conflict):
    code, message = "event_name_taken", "an event with this name already exists"


class PersonNameTaken(Conflict):
    code, message = "person_name_taken", "a person with this name already exists in this event"


class DuplicatePerson(Conflict):
    code, message = "duplicate_person", "the face already matches another person of this event"


class PersonHasNoEmbeddings(Conflict):
    code, message = ("person_has_no_embeddings",
                             "this person has no embedding of the current model; add an image first")


# -- bad requests --------------------------------------------------------------------------------------
class NoImages(BadRequest):
    code, message = "no_images", "at least one image is needed"


class TooManyImages(BadRequest):
    code, message = "too_many_images", "too many images in one request"


class PersonOrName(BadRequest):
    code, message = "person_or_name", "give either person_id (an existing person) or name (a new person)"


# -- refused faces (422) -------------------------------------------------------------------------------
class NoFace(Unprocessable):
    code, message = "no_face", "no face was found in the photo"


class MultipleFaces(Unprocessable):
    code, message = "multiple_faces", "several faces were found; send a photo of one person"


class FaceTooSmall(Unprocessable):
    code, message = "face_too_small", "the face is too small to enroll"


class FaceTooBlurred(Unprocessable):
    code, message = "face_too_blurred", "the face is too blurred to enroll"


# -- archives ------------------------------------------------------------------------------------------
class NotAZip(Unprocessable):
    code, message = "not_a_zip", "the upload is not a readable zip archive"


class TooManyFiles(Unprocessable):
    code, message = "too_many_files", "the archive has too many files"


class OverlappingEntries(Unprocessable):
    code, message = ("overlapping_entries",
                             "entries of the archive share their compressed data (a zip bomb); refused")


class ArchiveTooLarge(PayloadTooLarge):
    code, message = "archive_too_large", "the archive's files are too large in total once uncompressed"


class InputMissing(SharedInputMissing):
    message = "the uploaded archive is no longer available; submit it again"




def error_responses(*errors: type[BioError], decode: bool = False) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route (shared builder); ``decode``: the route decodes an uploaded image."""
    return shared_error_responses(*errors, *(IMAGE_ERRORS if decode else ()))


class AllFilesFailed(Unprocessable):
    """A bulk enrollment none of whose files could be used: the job is failed, with its report."""

    code = "all_files_failed"
    message = "no file of the archive could be used"
