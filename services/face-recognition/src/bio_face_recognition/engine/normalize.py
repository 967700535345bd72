import numpy as np

from bio_shared.images import resize_max_side


def normalize_face_photo(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """A face photo as the detectors expect it: RGB, the longer side at most ``max_side`` pixels.

    Detection and embedding cost grows with the pixel count while faces in a phone photo stay
    far above the detector's minimum size after the downscale; smaller photos are never upscaled.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {rgb.shape}")
    if max_side < 1:
        raise ValueError("max_side must be positive")
    return resize_max_side(rgb, max_side)
