"""What the fingerprint normalize job does to real prints: one gray channel, same geometry, full contrast.

The API contract every service keeps (identity, job lifecycle, bad input, isolation, probes, metrics,
migrations, packaging) is tested once for all services in tests/test_service_contract.py.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bio_testing.shared import png_bytes


def test_normalize_a_real_print(start, prints):
    svc = start()
    source = prints / "DB1_B" / "101_1.tif"
    job = svc.normalize(source.read_bytes(), name=source.name)
    result = job["result"]
    assert (result["source_format"], result["source_mode"], result["filename"]) == ("TIFF", "L", "101_1.tif")

    img = svc.output(job)
    assert img.mode == "L" and img.size == Image.open(source).size == (388, 374)  # same geometry, one channel
    assert (result["width"], result["height"], result["channels"]) == (388, 374, 1)
    pixels = np.asarray(img)
    assert pixels.min() == 0 and pixels.max() == 255  # full contrast range
    # stretching keeps the order of grey levels: ridges stay dark, valleys light
    src = np.asarray(Image.open(source), np.float64)
    assert np.corrcoef(src.ravel(), pixels.ravel())[0, 1] > 0.98


def _low_contrast_png(print_path: Path) -> bytes:
    gray = np.asarray(Image.open(print_path), np.uint16)
    return png_bytes(Image.fromarray((gray // 4 + 100).astype(np.uint8)))  # values 100..163


def _rgb_jpeg(print_path: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(print_path).convert("RGB").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _png16(print_path: Path) -> bytes:
    gray = np.asarray(Image.open(print_path), np.uint16) * 257
    return png_bytes(Image.fromarray(gray.astype(np.uint16)))


@pytest.mark.parametrize("build,mode", [(_low_contrast_png, "L"), (_rgb_jpeg, "RGB"), (_png16, "I;16")],
                         ids=["low_contrast", "rgb_jpeg", "png16"])
def test_normalize_gives_full_range_gray_whatever_the_layout(start, prints, build, mode):
    source = prints / "DB2_B" / "101_1.tif"  # 296 x 560
    svc = start()
    job = svc.normalize(build(source), name="print.png")
    assert job["result"]["source_mode"] == mode
    img = svc.output(job)
    assert img.mode == "L" and img.size == (296, 560)
    pixels = np.asarray(img)
    assert pixels.min() == 0 and pixels.max() == 255
    lo, hi = np.percentile(pixels, (1, 99))
    assert lo <= 2 and hi >= 253  # stretched between the 1st and 99th percentiles
