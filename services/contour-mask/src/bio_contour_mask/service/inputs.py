"""What a caller sent, validated before any job exists: a 4xx that says what was expected, and nothing kept.

Multipart ``landmarks`` and ``options`` are JSON text parsed with bio_shared.jsonsafe (size and nesting
bounded before parsing, NaN and out-of-range integers refused); a refusal is ``invalid_landmarks`` or
``invalid_options`` with jsonsafe's ``details.reason``."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from bio_contour_mask.engine import labels as L
from bio_contour_mask.engine.errors import InputError
from bio_contour_mask.engine.landmarks import Landmarks, parse_landmarks
from bio_contour_mask.engine.pipeline import Options
from bio_contour_mask.exceptions import InvalidBase64, InvalidLandmarks, InvalidOptions, from_input_error
from bio_contour_mask.runtime import ContourRuntime
from bio_contour_mask.schemas import ContourOptions
from bio_contour_mask.service.decoders import decode_label_map, header_size
from bio_shared.errors import BioError, InvalidJson
from bio_shared.jsonsafe import loads_limited
from bio_shared.uploads import decode_for

MAX_FIELD_BYTES = 1_000_000  # 478 points as JSON text are ~30 KB


@dataclass
class ContourInput:
    """What a caller sent, validated: the image bytes stay as sent (stored for the job)."""

    image: bytes
    width: int
    height: int
    image_format: str
    landmarks: Landmarks | None
    label_map: bytes | None
    labels: np.ndarray | None
    options: ContourOptions
    filename: str | None = None
    pixels: np.ndarray | None = None  # the decoded image, when the caller's process has it


def b64decode(value: str, what: str) -> bytes:
    if "," in value[:100] and value.startswith("data:"):
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64(f"{what} is not valid base64") from None


def _loads(raw: str | bytes, field: str, error: type[BioError], expected: str) -> Any:
    """Bounded JSON parsing; a refusal keeps the field's own code (as before) with jsonsafe's reason."""
    try:
        return loads_limited(raw, field=field, max_bytes=MAX_FIELD_BYTES)
    except InvalidJson as exc:
        raise error(f"{field} must be {expected}: {exc.message.removeprefix(field + ': ')}",
                    details=exc.details) from None


def parse_options(raw: Any) -> ContourOptions:
    if isinstance(raw, ContourOptions):
        return raw
    if isinstance(raw, (str, bytes)):
        raw = _loads(raw, "options", InvalidOptions, "a JSON object") if raw.strip() else {}
    if raw is not None and not isinstance(raw, dict):
        raise InvalidOptions("options must be a JSON object")
    try:
        return ContourOptions.model_validate(raw or {})
    except ValidationError as exc:
        details = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        raise InvalidOptions("invalid options", details=details) from None


def parse_landmark_field(raw: Any) -> Any:
    if isinstance(raw, (str, bytes)):
        if not raw.strip():
            return None
        value = _loads(raw, "landmarks", InvalidLandmarks, "a JSON list of {x, y} points")
        if not isinstance(value, list):
            raise InvalidLandmarks("landmarks must be a JSON list of {x, y} points")
        return value
    return raw


def engine_options(o: ContourOptions) -> Options:
    return Options(regions=tuple(o.regions) if o.regions is not None else None, coordinate_space=o.coordinate_space,
                   smoothing=o.smoothing, aligned_size=o.aligned_size, margin=o.margin, label_order=o.label_order)


def check_label_map(rt: ContourRuntime, map_bytes: bytes, width: int, height: int) -> np.ndarray:
    s = rt.state.settings
    labels = decode_label_map(map_bytes, s.max_upload_bytes, s.max_image_pixels)
    try:
        L.validate_label_map(labels, width, height)
    except InputError as exc:
        raise from_input_error(exc) from None
    return labels


def validate_input(rt: ContourRuntime, image: bytes, landmarks_raw: Any, map_bytes: bytes | None,
                   options_raw: Any, filename: str | None = None, landmarks_in_pixels: bool = False,
                   decode: bool = True) -> ContourInput:
    """Everything a caller can get wrong, checked before any work. ``landmarks_in_pixels``: stored job params
    are already in pixels whatever the options said. ``decode=False`` (a job re-reading its validated upload)
    reads the size from the header and leaves the full decode to processing, which skips it on a cache hit."""
    options = parse_options(options_raw)
    pixels = None
    if decode:
        decoded = decode_for(rt, image, "rgb")
        w, h, fmt, pixels = decoded.width, decoded.height, decoded.format, decoded.pixels
    else:
        w, h, fmt = header_size(image)
    raw = parse_landmark_field(landmarks_raw)
    lm = None
    try:
        if raw is not None:
            lm = parse_landmarks(raw, w, h, normalized=options.landmarks_normalized and not landmarks_in_pixels)
        engine_options(options)
    except InputError as exc:
        raise from_input_error(exc) from None
    # a job re-reading a validated map decodes it on a cache miss only
    labels = check_label_map(rt, map_bytes, w, h) if map_bytes is not None and decode else None
    return ContourInput(image, w, h, fmt, lm, map_bytes, labels, options, filename, pixels)
