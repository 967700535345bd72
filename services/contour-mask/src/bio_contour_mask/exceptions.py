"""The contour-mask service's errors: one class per code, mapped once to the platform's error model.

Routes declare what they can return from these classes; the engine's ``InputError`` codes come back
as the class of the same code (:func:`from_input_error`)."""

from __future__ import annotations

from bio_contour_mask.engine.errors import InputError
from bio_shared.errors import BioError, NotFound, PayloadTooLarge, Unprocessable, UnsupportedMedia


class InvalidLandmarks(Unprocessable):
    code = "invalid_landmarks"


class BadLandmarkCount(Unprocessable):
    code = "bad_landmark_count"


class LandmarksOutsideImage(Unprocessable):
    code = "landmarks_outside_image"


class DegenerateLandmarks(Unprocessable):
    code = "degenerate_landmarks"


class InvalidOptions(Unprocessable):
    code = "invalid_options"


class UnknownRegion(Unprocessable):
    code = "unknown_region"


class InvalidLabelMap(Unprocessable):
    code = "invalid_label_map"


class WrongMapKind(Unprocessable):
    code = "wrong_map_kind"


class MapSizeMismatch(Unprocessable):
    code = "map_size_mismatch"


class NoFace(Unprocessable):
    code = "no_face"


class InvalidBase64(Unprocessable):
    code = "invalid_base64"


class MissingImage(Unprocessable):
    code = "missing_image"


class UnsupportedContentType(UnsupportedMedia):
    code = "unsupported_content_type"


class TooLargeForSync(PayloadTooLarge):
    code = "too_large_for_sync"


class InputMissing(BioError):
    status_code, code = 410, "input_missing"


class OutputNotFound(NotFound):
    code = "output_not_found"


class RegionNotFound(NotFound):
    code = "region_not_found"


class NotAContourJob(NotFound):
    code = "not_a_contour_job"


ENGINE_ERRORS: dict[str, type[BioError]] = {cls.code: cls for cls in (
    InvalidLandmarks, BadLandmarkCount, LandmarksOutsideImage, DegenerateLandmarks, InvalidOptions, UnknownRegion,
    WrongMapKind, MapSizeMismatch, NoFace)}

INPUT_ERRORS = (InvalidLandmarks, BadLandmarkCount, LandmarksOutsideImage, DegenerateLandmarks, InvalidOptions,
                UnknownRegion, InvalidLabelMap, WrongMapKind, MapSizeMismatch, InvalidBase64, MissingImage,
                UnsupportedContentType)


def from_input_error(exc: InputError) -> BioError:
    cls = ENGINE_ERRORS.get(exc.code, Unprocessable)
    return cls(exc.message, code=exc.code, details=exc.details)
