"""The contour-mask normalize job at label-map resolution (the RGB downscale every face service shares is
tested once in tests/test_service_contract.py).

The API contract every service keeps (identity, job lifecycle, bad input, isolation, probes, metrics,
migrations, packaging) is tested once for all services in tests/test_service_contract.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.mark.parametrize("sample", ["0", "3"])
def test_normalize_at_label_map_resolution_lines_up_with_the_mask(start, parsing, sample):
    """With max_side at the label-map size, the normalised face and its CelebAMask-HQ mask align pixel for pixel."""
    svc = start(max_side=512)
    source = parsing / "maskgan_samples" / f"{sample}.jpg"  # 1024 x 1024
    img = svc.output(svc.normalize(source.read_bytes(), name=source.name))
    mask = Image.open(parsing / "maskgan_samples" / f"{sample}_mask.png")
    assert Image.open(source).size == (1024, 1024)
    assert img.mode == "RGB" and img.size == mask.size == (512, 512)
    # the mask's skin pixels (label 1) fall on skin-coloured pixels of the normalised image (red above blue)
    pixels, labels = np.asarray(img, np.float32), np.asarray(mask)
    skin = pixels[labels == 1]
    assert len(skin) > 0.05 * labels.size and skin[:, 0].mean() > skin[:, 2].mean()
