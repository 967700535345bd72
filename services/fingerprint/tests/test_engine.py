"""The pure contrast stretch of the fingerprint service on real FVC2002 prints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bio_fingerprint.engine.normalize import normalize_print
from bio_shared.images import decode_image


def _gray(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes(), mode="gray").pixels


@pytest.mark.parametrize("rel", ["DB1_B/101_1.tif", "DB1_B/110_8.tif", "DB2_B/105_3.tif"])
def test_stretch_reaches_the_full_range_and_keeps_the_ridges(prints, rel):
    gray = _gray(prints / rel)
    before = gray.copy()
    out = normalize_print(gray)
    assert out.dtype == np.uint8 and out.shape == gray.shape
    assert out.min() == 0 and out.max() == 255
    lo, hi = np.percentile(out, (1, 99))
    assert lo <= 2 and hi >= 253
    assert np.corrcoef(gray.ravel(), out.ravel())[0, 1] > 0.98  # grey-level order kept
    assert np.array_equal(gray, before)  # the input is not modified


def test_scanner_gain_and_offset_are_removed(prints):
    """The same print captured with a quarter of the gain and an offset normalises to (almost) the same image."""
    gray = _gray(prints / "DB1_B" / "102_2.tif")
    dim = (gray.astype(np.uint16) // 4 + 100).astype(np.uint8)
    a, b = normalize_print(gray).astype(np.int16), normalize_print(dim).astype(np.int16)
    assert np.abs(a - b).mean() < 6


def test_flat_image_is_returned_as_an_equal_copy():
    flat = np.full((64, 64), 128, np.uint8)
    out = normalize_print(flat)
    assert np.array_equal(out, flat) and out is not flat


@pytest.mark.parametrize("rel", ["DB1_B/103_2.tif", "DB2_B/107_5.tif"])
def test_torch_leader_matches_pyfings_keras_model(prints, rel):
    """The native torch LEADER (pyfing's weights) gives pyfing's Keras outputs: every output map to 1e-4
    (direction as an angle where a minutia is likely) and the same minutiae through the sparse heads."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    import torch

    from bio_fingerprint.engine import enhance, leader_torch

    g = normalize_print(_gray(prints / rel))
    h, w = g.shape
    ir = np.pad(g, ((0, (h + 31) // 32 * 32 - h), (0, (w + 31) // 32 * 32 - w)), constant_values=int(g[0, 0]))
    net = leader_torch.get_model()
    from pyfing.minutiae_end_to_end import Leader

    with torch.inference_mode():
        ours = net(torch.from_numpy(ir.astype(np.float32))[None, None]).numpy()
        keras_out = Leader().model(ir[None, ..., None], training=False).numpy()[0]
    for c in (0, 2):  # position and type probabilities
        assert np.abs(ours[..., c] - keras_out[..., c]).max() < 1e-4
    likely = keras_out[..., 0] > 0.5
    ang = np.abs(np.angle(np.exp(1j * (ours[..., 1] - keras_out[..., 1]))))[likely]
    assert likely.any() and ang.max() < 1e-4
    # NMS map: equal wherever both keep a peak (a tie may flip by float rounding)
    assert np.abs(ours[..., 3] - keras_out[..., 3]).mean() < 1e-5
    fast = enhance.leader_minutiae(g)
    os.environ["BIO_FINGERPRINT_LEADER_BACKEND"] = "keras"
    try:
        ref = enhance.leader_minutiae(g)
    finally:
        del os.environ["BIO_FINGERPRINT_LEADER_BACKEND"]
    assert len(fast) >= 15 and fast.shape == ref.shape
    assert np.array_equal(fast[:, [0, 1, 3, 4]], ref[:, [0, 1, 3, 4]])
    assert np.abs(np.angle(np.exp(1j * (fast[:, 2] - ref[:, 2])))).max() < 1e-4



def test_torch_leader_shortcuts_equal_the_layers_they_replace():
    """The phase convolution of an up-sampled map, the convolution taken at chosen pixels only and the
    inverted-bottleneck rows taken in blocks give the plain layers' values, borders included."""
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    import torch

    from bio_fingerprint.engine import enhance, leader_torch

    enhance._pyfing()
    net = leader_torch.get_model()
    g = torch.Generator().manual_seed(3)
    half = torch.randn(1, 4, 18, 10, generator=g).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for name in ("head_conv_pos", "head_conv_dir", "head_conv_typ"):
            full = net.conv(name, net.up(half))
            if name == "head_conv_pos":
                assert torch.allclose(net.conv_up(name, half), full, atol=1e-5)
            iy = torch.tensor([0, 1, 17, 35, 20, 35])
            ix = torch.tensor([0, 19, 5, 0, 10, 19])
            assert torch.allclose(net.conv_at_up(name, half, iy, ix), full[0][:, iy, ix].t(), atol=1e-5)
        # enc1_1: 32 channels expanded to 128, blocks of 2048 pixels: 5000 pixels span three blocks
        x_in = torch.randn(5000, 32, generator=g)
        xd = torch.randn(5000, 32, generator=g)
        blocked = net._ibc_rows("enc1_1", x_in, xd)
        leader_torch.BLOCK_FLOATS, saved = 1 << 30, leader_torch.BLOCK_FLOATS
        try:
            whole = net._ibc_rows("enc1_1", x_in, xd)
        finally:
            leader_torch.BLOCK_FLOATS = saved
        assert blocked.shape == (5000, 64) and torch.allclose(blocked, whole, atol=1e-5)
