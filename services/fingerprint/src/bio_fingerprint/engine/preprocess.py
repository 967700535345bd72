"""The classic image pipeline: selectable, parameterised steps applied in the order given.

Each step is ``{"op": name, ...parameters}``; unknown operations or parameters are refused with a
ValueError naming them, so an API caller gets a clear 422 instead of a silently ignored option.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import cv2
import numpy as np


def grayscale(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return img.copy()
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_RGBA2GRAY)
    raise ValueError(f"unsupported image shape {img.shape}")


def clahe(img: np.ndarray, clip_limit: float = 2.0, tile: int = 8) -> np.ndarray:
    if not (0 < clip_limit <= 40) or not (1 <= tile <= 64):
        raise ValueError("clahe: clip_limit in (0, 40], tile in [1, 64]")
    return cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tile), int(tile))).apply(grayscale(img))


def sharpen(img: np.ndarray, amount: float = 1.0, sigma: float = 1.0) -> np.ndarray:
    """Unsharp mask: img + amount * (img - blur(img))."""
    if not (0 <= amount <= 5) or not (0.1 <= sigma <= 10):
        raise ValueError("sharpen: amount in [0, 5], sigma in [0.1, 10]")
    g = grayscale(img).astype(np.float32)
    blur = cv2.GaussianBlur(g, (0, 0), float(sigma))
    return np.clip(g + amount * (g - blur), 0, 255).astype(np.uint8)


def contrast_brightness(img: np.ndarray, contrast: float = 1.0, brightness: float = 0.0) -> np.ndarray:
    """out = (img - 128) * contrast + 128 + brightness."""
    if not (0 <= contrast <= 5) or not (-255 <= brightness <= 255):
        raise ValueError("contrast: contrast in [0, 5], brightness in [-255, 255]")
    g = grayscale(img).astype(np.float32)
    return cast(np.ndarray, np.clip((g - 128.0) * contrast + 128.0 + brightness, 0, 255).astype(np.uint8))


def denoise(img: np.ndarray, method: str = "gaussian", strength: float = 1.0) -> np.ndarray:
    g = grayscale(img)
    if not (0 < strength <= 30):
        raise ValueError("denoise: strength in (0, 30]")
    if method == "gaussian":
        return cv2.GaussianBlur(g, (0, 0), float(strength))
    if method == "median":
        k = max(3, int(round(strength)) | 1)
        return cv2.medianBlur(g, min(k, 9))
    if method == "nlmeans":
        return cv2.fastNlMeansDenoising(g, None, h=float(strength) * 3, templateWindowSize=7, searchWindowSize=21)
    if method == "bilateral":
        return cv2.bilateralFilter(g, 5, strength * 20, 5)
    raise ValueError(f"denoise: unknown method {method!r} (gaussian, median, nlmeans, bilateral)")


def normalize(img: np.ndarray) -> np.ndarray:
    from bio_fingerprint.engine.normalize import normalize_print

    return normalize_print(grayscale(img))


STEPS: dict[str, Callable[..., np.ndarray]] = {
    "grayscale": grayscale,
    "normalize": normalize,
    "clahe": clahe,
    "sharpen": sharpen,
    "contrast": contrast_brightness,
    "denoise": denoise,
}


def apply_steps(img: np.ndarray, steps: list[dict[str, Any]]) -> np.ndarray:
    """Run the classic steps in order; always returns a uint8 grayscale image."""
    import inspect

    out = grayscale(img)
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or "op" not in step:
            raise ValueError(f"step {i}: expected an object with an 'op' field")
        op = step["op"]
        fn = STEPS.get(op)
        if fn is None:
            raise ValueError(f"step {i}: unknown operation {op!r}; known: {sorted(STEPS)}")
        params = {k: v for k, v in step.items() if k != "op"}
        allowed = set(inspect.signature(fn).parameters) - {"img"}
        unknown = set(params) - allowed
        if unknown:
            raise ValueError(f"step {i} ({op}): unknown parameters {sorted(unknown)}; allowed: {sorted(allowed)}")
        out = fn(out, **params)
    return out
