"""Processing one print: decode (with the fingerprint pixel limit), enhance, extract; store an output;
classify distortions of what passes the print check."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from bio_fingerprint.engine.pipeline import Processed, Quality
from bio_fingerprint.engine.template import TYPE_NAMES
from bio_fingerprint.exceptions import NotAPrint, with_file
from bio_fingerprint.models import FingerprintOutput
from bio_fingerprint.runtime import settings_of, state_of
from bio_fingerprint.service.codec import pack, pack_field
from bio_shared.db import session_scope, utcnow
from bio_shared.errors import BioError, PayloadTooLarge, Unprocessable, UnsupportedMedia
from bio_shared.images import ALLOWED_FORMATS, check_size, encode_png
from bio_shared.inference import timed_inference
from bio_shared.jobs import new_id
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import decode_for


@dataclass(frozen=True)
class Minutia:
    x: float
    y: float
    direction: float
    type: str
    quality: int


@dataclass(frozen=True)
class Extracted:
    output: FingerprintOutput
    quality: Quality
    minutiae: list[Minutia]


@dataclass(frozen=True)
class Distortion:
    probabilities: dict[str, float]
    predicted: str
    model_version: str
    print_quality: Quality


def minutiae_of(m: np.ndarray) -> list[Minutia]:
    return [Minutia(float(x), float(y), round(float(t), 5), TYPE_NAMES.get(int(ty), "other"), int(q))
            for x, y, t, ty, q in m]


def check_header(rt: ServiceRuntime, data: bytes) -> None:
    """What can be refused from the file's header alone (format, pixel count, size), without decoding the
    pixels: a batch submission checks every file this way before anything is stored."""
    s = settings_of(rt)
    check_size(data, s.max_upload_bytes)
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise UnsupportedMedia("the file is not a supported image (JPEG, PNG, TIFF, WebP, BMP, GIF)",
                               code="not_an_image") from exc
    except Exception as exc:
        raise Unprocessable("the image header cannot be read", code="corrupt_image") from exc
    if (img.format or "").upper() not in ALLOWED_FORMATS:
        raise UnsupportedMedia(f"image format {img.format or 'unknown'} is not accepted", code="unsupported_format")
    w, h = img.size
    if w * h > s.max_image_pixels:
        raise PayloadTooLarge(f"image is {w}x{h} = {w * h} pixels; the limit for prints is {s.max_image_pixels}",
                              code="too_many_pixels", details={"width": w, "height": h,
                                                               "limit_pixels": s.max_image_pixels})
    if min(w, h) < s.min_image_side:
        raise Unprocessable(f"image is {w}x{h}; each side must be at least {s.min_image_side} pixels",
                            code="image_too_small")


def check_headers(rt: ServiceRuntime, files: list[tuple[bytes, str | None]]) -> None:
    """check_header of every file of a multi-file request; the error names the file and its index."""
    for i, (data, name) in enumerate(files):
        try:
            check_header(rt, data)
        except BioError as exc:
            raise with_file(exc, name, i) from exc


def process_print(rt: ServiceRuntime, data: bytes, *, steps: list[dict] | None = None, preset: str | None = None,
                  dpi: int = 500, enhance_ridges: bool = True) -> Processed:
    """Decode and process; nothing is stored."""
    gray = decode_for(rt, data, "gray").pixels
    return state_of(rt).models.process(gray, steps, preset, dpi, enhance_ridges)


def new_output(rt: ServiceRuntime, owner_id: str, result: Processed, filename: str | None, key: str, *,
               steps: list[dict] | None, preset: str | None, job_id: str | None) -> FingerprintOutput:
    h, w = result.enhanced.gray.shape
    methods = state_of(rt).models.methods(preset)
    return FingerprintOutput(id=new_id(), owner_id=owner_id, job_id=job_id, filename=(filename or "")[:255] or None,
                             image_key=key, quality=result.quality.score, minutiae_count=len(result.minutiae),
                             width=w, height=h, minutiae=pack(result.minutiae),
                             orientation_field=pack_field(result.orientation),
                             details={"quality": result.quality.to_dict(), "steps": steps or [],
                                      "enhancement": dict(methods.__dict__)},
                             created_at=utcnow())


def put_enhanced(rt: ServiceRuntime, owner_id: str, result: Processed) -> str:
    return rt.blobs.put(rt.blobs.new_key(owner_id, "fingerprint-outputs", "png"), encode_png(result.enhanced.enhanced))


def process_bytes(rt: ServiceRuntime, owner_id: str, data: bytes, filename: str | None, *,
                  steps: list[dict] | None = None, preset: str | None = None, dpi: int = 500,
                  job_id: str | None = None) -> tuple[FingerprintOutput, Processed]:
    """Decode, enhance, extract; store the enhanced image and the output row (both or neither)."""
    result = process_print(rt, data, steps=steps, preset=preset, dpi=dpi)
    key = put_enhanced(rt, owner_id, result)
    row = new_output(rt, owner_id, result, filename, key, steps=steps, preset=preset, job_id=job_id)
    try:
        with session_scope(rt.sessions) as s:
            s.add(row)
    except Exception:
        rt.blobs.delete(key)
        raise
    return row, result


def extract(rt: ServiceRuntime, owner_id: str, data: bytes, filename: str | None, *,
            steps: list[dict] | None, preset: str | None, dpi: int) -> Extracted:
    row, result = process_bytes(rt, owner_id, data, filename, steps=steps, preset=preset, dpi=dpi)
    return Extracted(row, result.quality, minutiae_of(result.minutiae))


def distortion_probabilities(rt: ServiceRuntime, data: bytes) -> Distortion:
    """Distortion-type probabilities of a print; what is not a print (the quality assessment enrollment
    uses finds no ridge pattern) is refused with 422 instead of being given a distortion label."""
    gray = decode_for(rt, data, "gray").pixels
    models = state_of(rt).models
    quality = models.process(gray, None, None, 500, enhance_ridges=False).quality
    minimum = settings_of(rt).distortion_min_quality
    if quality.score < minimum:
        raise NotAPrint("the image shows no fingerprint: " + ("; ".join(quality.reasons) or "quality too low"),
                        details={"quality": quality.to_dict(), "minimum": minimum})
    clf = models.classifier()
    with timed_inference("fingerprint", "distortion-cnn"):
        probs = clf.probabilities(gray)
    return Distortion(probs, max(probs, key=probs.__getitem__), clf.version, quality)


def details_of(exc: Any) -> dict[str, Any]:
    return exc.details if isinstance(exc.details, dict) else {}
