"""The one safe image decoder of the platform.

Defends against oversized uploads and decompression bombs (the pixel count is read from the header
before any pixel is decoded), applies EXIF orientation, and turns every supported layout (8/16/32-bit
integer and float, palette, alpha, TIFF, grayscale) into a plain uint8 numpy array.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from bio_shared.errors import PayloadTooLarge, Unprocessable, UnsupportedMedia

ALLOWED_FORMATS = {"JPEG", "PNG", "TIFF", "WEBP", "BMP", "GIF", "PPM"}
Mode = Literal["gray", "rgb"]
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"RIFF", b"BM", b"GIF8")

# Pillow's own bomb check warns at MAX_IMAGE_PIXELS and raises at twice that; ours runs first and
# is stricter, so disable Pillow's to keep one clear error path.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # HxW (gray) or HxWx3 (rgb), uint8
    format: str
    width: int
    height: int
    source_mode: str  # Pillow mode before conversion, e.g. "I;16", "RGBA"

    @property
    def shape(self) -> tuple[int, ...]:
        return self.pixels.shape


def check_size(data: bytes, max_bytes: int) -> None:
    if len(data) == 0:
        raise Unprocessable("the uploaded file is empty", code="empty_file")
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"file is {len(data)} bytes; the limit is {max_bytes} bytes", details={"limit_bytes": max_bytes}
        )


def decode_image(
    data: bytes,
    *,
    mode: Mode = "rgb",
    max_bytes: int = 20 * 1024 * 1024,
    max_pixels: int = 40_000_000,
    min_side: int = 16,
) -> DecodedImage:
    check_size(data, max_bytes)
    try:
        img: Image.Image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        if data.startswith(_MAGIC):  # a known format whose header is cut or broken
            raise Unprocessable("the image header is truncated or corrupt", code="corrupt_image") from exc
        raise UnsupportedMedia(
            "the file is not a supported image (JPEG, PNG, TIFF, WebP, BMP, GIF)", code="not_an_image"
        ) from exc
    except Exception as exc:  # never echo the exception text: it can hold object reprs
        raise Unprocessable("the image header cannot be read", code="corrupt_image",
                            details={"reason": type(exc).__name__}) from exc
    fmt = (img.format or "").upper()
    if fmt not in ALLOWED_FORMATS:
        raise UnsupportedMedia(f"image format {fmt or 'unknown'} is not accepted", code="unsupported_format",
                               details={"allowed": sorted(ALLOWED_FORMATS)})
    width, height = img.size
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
            code="too_many_pixels", details={"width": width, "height": height, "limit_pixels": max_pixels},
        )
    if min(width, height) < min_side:
        raise Unprocessable(f"image is {width}x{height}; each side must be at least {min_side} pixels",
                            code="image_too_small")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
    except Exception as exc:
        raise Unprocessable("the image data is truncated or corrupt", code="corrupt_image",
                            details={"reason": _reason(exc)}) from exc
    source_mode = img.mode
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:
        pass
    pixels = to_uint8(img, mode)
    return DecodedImage(pixels=pixels, format=fmt, width=pixels.shape[1], height=pixels.shape[0],
                        source_mode=source_mode)


def _reason(exc: Exception) -> str:
    """A decoder's message without object reprs such as ``<_io.BytesIO object at 0x7f...>``."""
    text = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the image", str(exc))
    return text[:200] or type(exc).__name__


def to_uint8(img: Image.Image, mode: Mode) -> np.ndarray:
    """Convert any Pillow layout to uint8 gray or RGB; alpha is composited on white."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16"):
            arr = arr / 257.0
        elif img.mode == "I" and arr.max(initial=0) > 255:
            arr = _stretch(arr) if arr.max() > 65535 else arr / 257.0
        elif img.mode == "F":
            arr = arr * 255.0 if arr.size and 0.0 <= arr.min() and arr.max() <= 1.0 else _stretch(arr)
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return gray if mode == "gray" else np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode in ("RGB", "L") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "gray":
        return np.asarray(img.convert("L"), dtype=np.uint8)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _stretch(arr: np.ndarray) -> np.ndarray:
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if hi <= lo:
        return np.zeros_like(arr)
    return (arr - lo) * (255.0 / (hi - lo))


def encode_png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def fit_rgb(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """The normalisation of the face services: an RGB photo with its longer side at most ``max_side``
    (detection cost grows with the pixel count; masks line up with the normalised image); smaller
    photos are never upscaled."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {rgb.shape}")
    if max_side < 1:
        raise ValueError("max_side must be positive")
    return resize_max_side(rgb, max_side)


def resize_max_side(pixels: np.ndarray, max_side: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return pixels
    img = Image.fromarray(pixels)
    return np.asarray(img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS))
