from typing import cast

import numpy as np


def normalize_print(gray: np.ndarray) -> np.ndarray:
    """Stretch a grayscale print to the full 0-255 range between its 1st and 99th percentiles.

    Scanners differ widely in gain and offset; a fixed range makes later thresholds comparable.
    """
    lo, hi = np.percentile(gray, (1, 99))
    if hi - lo < 1:
        return gray.copy()
    out = (gray.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return cast(np.ndarray, np.clip(out, 0, 255).astype(np.uint8))  # np.percentile's values are untyped
