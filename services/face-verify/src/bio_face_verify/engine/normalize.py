import numpy as np

from bio_shared.images import resize_max_side


def normalize_probe_photo(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """A probe or reference photo for 1:1 comparison: RGB, the longer side at most ``max_side``.

    Both sides of a comparison go through the same downscale so their faces are detected at
    comparable resolutions; smaller photos are never upscaled.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {rgb.shape}")
    if max_side < 1:
        raise ValueError("max_side must be positive")
    return resize_max_side(rgb, max_side)
