"""bio_shared.images: formats, bit depths and alpha layouts of the one safe decoder (limits, EXIF and bombs:
test_images_limits.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bio_shared.errors import BioError
from bio_shared.images import (
    DecodedImage,
    decode_image,
)
from bio_testing.images import encode, gray_array, rgb_array


def expect_error(data: bytes, cls: type[BioError], status: int, code: str, **kw) -> BioError:
    with pytest.raises(cls) as info:
        decode_image(data, **kw)
    assert info.value.status_code == status
    assert info.value.code == code
    return info.value


# -- formats and layouts -----------------------------------------------------------------------------------


class TestFormats:
    def test_jpeg_rgb(self) -> None:
        # A smooth image so JPEG loss stays small and comparable.
        yy, xx = np.mgrid[0:64, 0:80]
        arr = np.stack([xx * 3, yy * 3, (xx + yy) * 2], axis=2).astype(np.uint8)
        out = decode_image(encode(Image.fromarray(arr), "JPEG", quality=95))
        assert isinstance(out, DecodedImage)
        assert out.format == "JPEG"
        assert out.source_mode == "RGB"
        assert out.pixels.dtype == np.uint8
        assert out.shape == (64, 80, 3)
        assert (out.width, out.height) == (80, 64)
        assert np.abs(out.pixels.astype(int) - arr).mean() < 3

    def test_jpeg_to_gray(self) -> None:
        arr = np.full((32, 32, 3), (200, 100, 50), np.uint8)
        out = decode_image(encode(Image.fromarray(arr), "JPEG", quality=95), mode="gray")
        assert out.shape == (32, 32)
        expected = round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)  # ITU-R 601-2 luma, as Pillow's "L"
        assert abs(int(out.pixels.mean()) - expected) <= 2

    def test_grayscale_jpeg(self) -> None:
        arr = np.full((24, 30), 77, np.uint8)
        out = decode_image(encode(Image.fromarray(arr), "JPEG"), mode="rgb")
        assert out.source_mode == "L"
        assert out.shape == (24, 30, 3)
        assert np.abs(out.pixels.astype(int) - 77).max() <= 2

    def test_cmyk_jpeg(self) -> None:
        img = Image.new("CMYK", (20, 20), (0, 255, 255, 0))  # pure red in CMYK
        out = decode_image(encode(img, "JPEG", quality=95))
        assert out.source_mode == "CMYK"
        assert out.shape == (20, 20, 3)
        r, g, b = out.pixels.reshape(-1, 3).mean(axis=0)
        assert r > 200 and g < 60 and b < 60

    def test_png_8bit_gray_exact(self) -> None:
        arr = gray_array()
        data = encode(Image.fromarray(arr), "PNG")
        gray = decode_image(data, mode="gray")
        assert gray.format == "PNG" and gray.source_mode == "L"
        np.testing.assert_array_equal(gray.pixels, arr)
        rgb = decode_image(data, mode="rgb")
        assert rgb.shape == arr.shape + (3,)
        for c in range(3):
            np.testing.assert_array_equal(rgb.pixels[:, :, c], arr)

    def test_png_rgb_exact(self) -> None:
        arr = rgb_array()
        out = decode_image(encode(Image.fromarray(arr), "PNG"))
        np.testing.assert_array_equal(out.pixels, arr)

    def test_png_16bit_gray_scaled(self) -> None:
        values = np.array([0, 257, 128 * 257, 200 * 257, 65535, 65535 // 2], dtype=np.uint16)
        arr = np.resize(values, (16, 18)).astype(np.uint16)
        img = Image.fromarray(arr)
        data = encode(img, "PNG")
        assert Image.open(io.BytesIO(data)).mode.startswith("I")  # Pillow reads it back as 16-bit
        out = decode_image(data, mode="gray")
        assert out.source_mode.startswith("I")
        assert out.pixels.dtype == np.uint8
        expected = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(out.pixels, expected)
        assert out.pixels.max() == 255 and out.pixels.min() == 0
        # Full-range 16-bit data must not saturate: the mid value lands mid-scale.
        assert 127 <= int(expected.flat[5]) <= 128

    def test_png_16bit_gray_low_values_are_not_clipped_to_white(self) -> None:
        # A dark 16-bit image (values below 256) stays dark: 16-bit semantics, not 8-bit.
        arr = np.full((20, 20), 200, np.uint16)
        out = decode_image(encode(Image.fromarray(arr), "PNG"), mode="gray")
        assert out.source_mode == "I;16"
        assert int(out.pixels.max()) == 1  # 200 / 257 rounds to 1

    def test_png_16bit_to_rgb_replicates_channels(self) -> None:
        arr = np.full((20, 20), 65535, np.uint16)
        out = decode_image(encode(Image.fromarray(arr), "PNG"), mode="rgb")
        assert out.shape == (20, 20, 3)
        assert (out.pixels == 255).all()

    def test_png_rgba_composited_on_white(self) -> None:
        arr = np.zeros((20, 20, 4), np.uint8)
        arr[:10] = (255, 0, 0, 0)  # fully transparent red -> white
        arr[10:, :10] = (0, 0, 255, 255)  # opaque blue -> blue
        arr[10:, 10:] = (255, 0, 0, 128)  # half-transparent red over white -> pink
        out = decode_image(encode(Image.fromarray(arr, "RGBA"), "PNG"))
        assert out.source_mode == "RGBA"
        assert out.shape == (20, 20, 3)
        assert (out.pixels[:10] == 255).all()
        assert (out.pixels[10:, :10] == (0, 0, 255)).all()
        pink = out.pixels[15, 15].astype(int)
        assert pink[0] == 255 and abs(pink[1] - 127) <= 1 and abs(pink[2] - 127) <= 1

    def test_png_rgba_gray_mode_composited(self) -> None:
        arr = np.zeros((20, 20, 4), np.uint8)  # transparent black everywhere
        out = decode_image(encode(Image.fromarray(arr, "RGBA"), "PNG"), mode="gray")
        assert out.shape == (20, 20)
        assert (out.pixels == 255).all()  # on white, not black

    def test_png_la_composited(self) -> None:
        arr = np.zeros((20, 20, 2), np.uint8)
        arr[..., 0] = 10
        arr[:10, :, 1] = 255  # top opaque dark, bottom transparent
        out = decode_image(encode(Image.fromarray(arr, "LA"), "PNG"), mode="gray")
        assert out.source_mode == "LA"
        assert (out.pixels[:10] == 10).all()
        assert (out.pixels[10:] == 255).all()

    def test_png_gray_with_trns_composited(self) -> None:
        arr = np.zeros((20, 20), np.uint8)
        arr[:, 10:] = 100
        data = encode(Image.fromarray(arr), "PNG", transparency=0)  # value 0 is transparent
        out = decode_image(data, mode="gray")
        assert (out.pixels[:, :10] == 255).all()
        assert (out.pixels[:, 10:] == 100).all()

    def test_palette_png_with_transparency(self) -> None:
        img = Image.new("P", (24, 24), 0)
        palette = [0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9)
        img.putpalette(palette)
        px = img.load()
        for y in range(24):
            for x in range(24):
                px[x, y] = 1 if x < 12 else (2 if y < 12 else 0)
        data = encode(img, "PNG", transparency=0)  # index 0 (black) is transparent
        out = decode_image(data)
        assert out.source_mode == "P"
        assert (out.pixels[:, :12] == (255, 0, 0)).all()
        assert (out.pixels[:12, 12:] == (0, 255, 0)).all()
        assert (out.pixels[12:, 12:] == 255).all()  # transparent -> white, not black

    def test_palette_png_without_transparency(self) -> None:
        arr = rgb_array(16, 16) // 64 * 64  # few colours: palette conversion is lossless
        img = Image.fromarray(arr).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
        data = encode(img, "PNG")
        out = decode_image(data)
        np.testing.assert_array_equal(out.pixels, np.asarray(img.convert("RGB")))

    def test_gif_with_transparency(self) -> None:
        img = Image.new("P", (20, 20), 0)
        img.putpalette([0, 0, 0, 10, 200, 30] + [0] * (256 * 3 - 6))
        img.paste(1, (0, 0, 10, 20))
        out = decode_image(encode(img, "GIF", transparency=0))
        assert out.format == "GIF"
        assert (out.pixels[:, :10] == (10, 200, 30)).all()
        assert (out.pixels[:, 10:] == 255).all()

    def test_tiff_8bit(self) -> None:
        arr = gray_array()
        out = decode_image(encode(Image.fromarray(arr), "TIFF"), mode="gray")
        assert out.format == "TIFF" and out.source_mode == "L"
        np.testing.assert_array_equal(out.pixels, arr)

    def test_tiff_8bit_compressed(self) -> None:
        arr = rgb_array()
        for compression in ("tiff_lzw", "tiff_adobe_deflate", "packbits"):
            out = decode_image(encode(Image.fromarray(arr), "TIFF", compression=compression))
            np.testing.assert_array_equal(out.pixels, arr)

    @pytest.mark.parametrize("dtype", ["<u2", ">u2"])
    def test_tiff_16bit(self, dtype: str) -> None:
        arr = np.resize(np.array([0, 257, 1000, 40000, 65535], np.uint16), (20, 21)).astype(dtype)
        out = decode_image(encode(Image.fromarray(arr), "TIFF"), mode="gray")
        assert out.source_mode.startswith("I;16")
        expected = np.clip(np.rint(arr.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(out.pixels, expected)

    def test_tiff_float_unit_range(self) -> None:
        arr = np.linspace(0.0, 1.0, 20 * 25, dtype=np.float32).reshape(20, 25)
        out = decode_image(encode(Image.fromarray(arr), "TIFF"), mode="gray")
        assert out.source_mode == "F"
        expected = np.clip(np.rint(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(out.pixels, expected)

    def test_tiff_float_any_range_is_stretched(self) -> None:
        arr = np.linspace(-50.0, 950.0, 20 * 25, dtype=np.float32).reshape(20, 25)
        out = decode_image(encode(Image.fromarray(arr), "TIFF"), mode="rgb")
        assert out.shape == (20, 25, 3)
        assert out.pixels.min() == 0 and out.pixels.max() == 255
        assert np.all(np.diff(out.pixels[:, :, 0].ravel().astype(int)) >= 0)  # order preserved

    def test_tiff_float_constant_image(self) -> None:
        arr = np.full((20, 20), 7.5, np.float32)
        out = decode_image(encode(Image.fromarray(arr), "TIFF"), mode="gray")
        assert out.pixels.dtype == np.uint8 and out.shape == (20, 20)

    def test_tiff_32bit_integer(self) -> None:
        arr = np.resize(np.array([0, 1000, 65535], np.int32), (20, 20)).astype(np.int32)
        out = decode_image(encode(Image.fromarray(arr), "TIFF"), mode="gray")
        assert out.source_mode == "I"
        assert set(np.unique(out.pixels).tolist()) == {0, 4, 255}

    def test_tiff_32bit_integer_wide_range_stretched(self) -> None:
        arr = np.resize(np.array([0, 1_000_000, 2_000_000], np.int32), (20, 20)).astype(np.int32)
        out = decode_image(encode(Image.fromarray(arr), "TIFF"), mode="gray")
        assert set(np.unique(out.pixels).tolist()) == {0, 128, 255}

    def test_webp_lossless_and_alpha(self) -> None:
        arr = rgb_array()
        out = decode_image(encode(Image.fromarray(arr), "WEBP", lossless=True))
        assert out.format == "WEBP"
        np.testing.assert_array_equal(out.pixels, arr)
        rgba = np.zeros((20, 20, 4), np.uint8)
        rgba[:, :10] = (0, 0, 0, 255)
        out = decode_image(encode(Image.fromarray(rgba, "RGBA"), "WEBP", lossless=True))
        assert (out.pixels[:, :10] == 0).all()
        assert (out.pixels[:, 10:] == 255).all()

    def test_webp_lossy(self) -> None:
        arr = np.full((32, 32, 3), 120, np.uint8)
        out = decode_image(encode(Image.fromarray(arr), "WEBP", quality=90))
        assert out.shape == (32, 32, 3)
        assert np.abs(out.pixels.astype(int) - 120).max() <= 3

    def test_bmp(self) -> None:
        arr = rgb_array()
        out = decode_image(encode(Image.fromarray(arr), "BMP"))
        assert out.format == "BMP"
        np.testing.assert_array_equal(out.pixels, arr)

    def test_ppm(self) -> None:
        arr = rgb_array()
        out = decode_image(encode(Image.fromarray(arr), "PPM"))
        assert out.format == "PPM"
        np.testing.assert_array_equal(out.pixels, arr)

    def test_1bit_image(self) -> None:
        arr = np.zeros((20, 20), bool)
        arr[:, 10:] = True
        out = decode_image(encode(Image.fromarray(arr), "PNG"), mode="gray")
        assert (out.pixels[:, :10] == 0).all() and (out.pixels[:, 10:] == 255).all()
