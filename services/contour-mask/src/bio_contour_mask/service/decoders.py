"""The image reads the contour service needs beyond bio_shared's decoder: label maps (class indices, not
pictures), sizes from the header only, and the small decode behind a cache signature."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from bio_contour_mask.engine import labels as L
from bio_contour_mask.engine import phash
from bio_contour_mask.exceptions import InvalidLabelMap, WrongMapKind
from bio_shared.errors import BioError, PayloadTooLarge
from bio_shared.images import ALLOWED_FORMATS, check_size

MAP_FORMATS = {"PNG", "BMP", "TIFF", "GIF"}  # lossless: a JPEG would blur class boundaries into other classes
INTEGER_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def _open_map(data: bytes, max_bytes: int, max_pixels: int) -> Image.Image:
    check_size(data, max_bytes)
    try:
        img = Image.open(io.BytesIO(data))
        if img.size[0] * img.size[1] > max_pixels:  # from the header, before any pixel is decoded
            raise PayloadTooLarge(f"label map is {img.size[0]}x{img.size[1]}; the limit is {max_pixels} px",
                                  code="too_many_pixels")
        img.load()
    except BioError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = "unknown format" if isinstance(exc, UnidentifiedImageError) else type(exc).__name__
        raise InvalidLabelMap(f"the label map is not a readable image; expected {L.EXPECTED_MAP}",
                              details={"reason": reason}) from None
    fmt = (img.format or "").upper()
    if fmt not in MAP_FORMATS:
        raise WrongMapKind(f"the label map is {fmt or 'of an unknown format'}; expected {L.EXPECTED_MAP} (a lossy "
                           "format such as JPEG changes class values at region borders)")
    return img


def _grey_values(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("L", "P", "1"):
        return np.asarray(img if mode != "1" else img.convert("L").point(lambda v: 1 if v else 0))
    if mode in INTEGER_MODES:
        return np.asarray(img).astype(np.int64)
    if mode in ("RGB", "RGBA", "LA"):
        a = np.asarray(img)
        colour = a[..., :3] if mode != "LA" else a[..., :1]
        if mode in ("RGBA", "LA") and (a[..., -1] != 255).any():
            raise WrongMapKind(f"the label map has transparency; expected {L.EXPECTED_MAP}")
        if mode != "LA" and not ((colour[..., 0] == colour[..., 1]).all() and (colour[..., 1] == colour[..., 2]).all()):
            raise WrongMapKind(f"the label map is a colour image (a colour-coded visualisation?); expected "
                               f"{L.EXPECTED_MAP}")
        return colour[..., 0]
    raise WrongMapKind(f"the label map has pixel mode {mode}; expected {L.EXPECTED_MAP}")


def decode_label_map(data: bytes, max_bytes: int, max_pixels: int) -> np.ndarray:
    """A label map as class indices (uint8 HxW); a colour visualisation or a lossy map is the wrong kind."""
    arr = _grey_values(_open_map(data, max_bytes, max_pixels))
    if arr.size and arr.dtype != np.uint8 and arr.min() < 0:
        raise WrongMapKind(f"the label map holds negative values; expected {L.EXPECTED_MAP}")
    if arr.size and arr.max() >= L.NUM_CLASSES:
        bad = np.unique(arr[(arr < 0) | (arr >= L.NUM_CLASSES)])[:20]
        raise WrongMapKind(f"the label map holds values up to {int(arr.max())}; expected {L.EXPECTED_MAP}",
                           details={"unexpected_values": bad.tolist()})
    return np.ascontiguousarray(arr.astype(np.uint8))


def _orientation(img: Image.Image) -> Any:
    try:
        return img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block is no orientation
        return 1


def header_size(data: bytes) -> tuple[int, int, str]:
    """Width and height as the decoder will return them (EXIF rotation applied), from the header only."""
    img = Image.open(io.BytesIO(data))
    w, h = img.size
    return (h, w, img.format or "") if _orientation(img) in (5, 6, 7, 8) else (w, h, img.format or "")


def quick_signature(data: bytes, max_bytes: int, max_pixels: int) -> phash.Signature:
    """Signature from a small decode (JPEG DCT scaling): what lets a cache hit skip the full decode."""
    check_size(data, max_bytes)
    img: Image.Image = Image.open(io.BytesIO(data))
    if (img.format or "").upper() not in ALLOWED_FORMATS or img.size[0] * img.size[1] > max_pixels:
        raise ValueError("not a decodable image")
    full_w, full_h = img.size
    orientation = _orientation(img)
    if img.format == "JPEG":
        img.draft("L", (128, 128))
    img.load()
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # an unreadable EXIF rotation: the pixels as stored
        pass
    if orientation in (5, 6, 7, 8):
        full_w, full_h = full_h, full_w
    gray = np.asarray(img.convert("L"), dtype=np.uint8)
    return phash.signature(gray, full_w, full_h)
