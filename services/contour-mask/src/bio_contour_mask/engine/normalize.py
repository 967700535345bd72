import numpy as np

from bio_shared.images import resize_max_side


def normalize_parsing_input(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """A face image for landmarking and parsing: RGB, the longer side at most ``max_side``.

    Masks are produced at this resolution, so every mask of a job lines up with the normalised
    image pixel for pixel; smaller images are never upscaled.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {rgb.shape}")
    if max_side < 1:
        raise ValueError("max_side must be positive")
    return resize_max_side(rgb, max_side)
