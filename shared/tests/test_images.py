"""bio_shared.images: the one safe decoder (formats, bit depths, alpha, EXIF, limits, bombs)."""

from __future__ import annotations

import csv
import io
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from bio_shared.errors import BioError, PayloadTooLarge, Unprocessable, UnsupportedMedia
from bio_shared.images import (
    ALLOWED_FORMATS,
    DecodedImage,
    check_size,
    decode_image,
    encode_png,
    fit_rgb,
    resize_max_side,
    to_uint8,
)
from bio_testing.shared import check_rgb_downscale, check_rgb_guards, check_rgb_kept, decode_file

RNG = np.random.default_rng(20240601)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def rgb_array(h: int = 40, w: int = 48) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def gray_array(h: int = 40, w: int = 48) -> np.ndarray:
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def bomb_png(width: int, height: int, rows: int | None = None) -> bytes:
    """A 1-bit grayscale PNG whose header claims width x height.

    ``rows=None`` compresses the full (all-zero) image: a genuine decompression bomb, tiny on disk.
    ``rows=n`` stores only n rows: the header still says width x height.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b""
    for _ in range(height if rows is None else rows):
        idat += comp.compress(row)
    idat += comp.flush()
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


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


class TestExifOrientation:
    @staticmethod
    def jpeg_with_orientation(orientation: int, fmt: str = "JPEG") -> tuple[bytes, np.ndarray]:
        arr = np.zeros((32, 64, 3), np.uint8)  # 64 wide, 32 tall; left half black, right half white
        arr[:, 32:] = 255
        exif = Image.Exif()
        exif[0x0112] = orientation
        return encode(Image.fromarray(arr), fmt, exif=exif), arr

    def test_orientation_6_rotates(self) -> None:
        data, _ = self.jpeg_with_orientation(6)
        assert Image.open(io.BytesIO(data)).getexif()[0x0112] == 6
        out = decode_image(data)
        assert out.shape == (64, 32, 3)  # rotated: now 32 wide, 64 tall
        assert (out.width, out.height) == (32, 64)
        # Orientation 6 = display rotated 90 degrees clockwise: the left (black) half goes to the top.
        assert out.pixels[:28].mean() < 20
        assert out.pixels[36:].mean() > 235

    def test_orientation_8_rotates_the_other_way(self) -> None:
        data, _ = self.jpeg_with_orientation(8)
        out = decode_image(data, mode="gray")
        assert out.shape == (64, 32)
        assert out.pixels[:28].mean() > 235 and out.pixels[36:].mean() < 20

    def test_orientation_3_flips(self) -> None:
        data, _ = self.jpeg_with_orientation(3)
        out = decode_image(data, mode="gray")
        assert out.shape == (32, 64)
        assert out.pixels[:, :28].mean() > 235 and out.pixels[:, 36:].mean() < 20

    def test_orientation_1_unchanged(self) -> None:
        data, _ = self.jpeg_with_orientation(1)
        out = decode_image(data, mode="gray")
        assert out.shape == (32, 64)
        assert out.pixels[:, :28].mean() < 20

    def test_orientation_in_tiff_and_png(self) -> None:
        for fmt in ("TIFF", "PNG"):
            data, _ = self.jpeg_with_orientation(6, fmt)
            assert decode_image(data).shape == (64, 32, 3), fmt

    def test_orientation_of_16bit_png(self) -> None:
        arr = np.zeros((20, 40), np.uint16)
        arr[:, 20:] = 65535
        exif = Image.Exif()
        exif[0x0112] = 6
        out = decode_image(encode(Image.fromarray(arr), "PNG", exif=exif), mode="gray")
        assert out.shape == (40, 20)
        assert out.source_mode == "I;16"
        assert out.pixels[:18].max() == 0 and out.pixels[22:].min() == 255

    def test_broken_exif_does_not_reject_image(self) -> None:
        arr = np.full((20, 20, 3), 90, np.uint8)
        data = encode(Image.fromarray(arr), "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f garbage")
        out = decode_image(data)
        assert out.shape == (20, 20, 3)


# -- refusals ----------------------------------------------------------------------------------------------


class TestRefusals:
    def test_not_an_image(self) -> None:
        err = expect_error(b"this is plain text, certainly not an image\n" * 4, UnsupportedMedia, 415,
                           "not_an_image")
        assert "not a supported image" in err.message

    @pytest.mark.parametrize("blob", [
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n",
        b'{"image": "nope"}' * 3,
        b"PK\x03\x04" + b"\x00" * 60,
        bytes(range(256)),
    ])
    def test_other_files_are_not_images(self, blob: bytes) -> None:
        expect_error(blob, UnsupportedMedia, 415, "not_an_image")

    def test_pdf_made_by_pillow(self) -> None:
        expect_error(encode(Image.new("RGB", (32, 32)), "PDF"), UnsupportedMedia, 415, "not_an_image")

    @pytest.mark.parametrize("fmt", ["ICO", "TGA", "PCX", "SGI", "DDS", "ICNS", "QOI"])
    def test_disallowed_formats(self, fmt: str) -> None:
        data = encode(Image.new("RGB", (32, 32), (1, 2, 3)), fmt)
        assert Image.open(io.BytesIO(data)).format == fmt  # Pillow could decode it...
        err = expect_error(data, UnsupportedMedia, 415, "unsupported_format")  # ...but we refuse
        assert err.details == {"allowed": sorted(ALLOWED_FORMATS)}

    def test_empty_file(self) -> None:
        err = expect_error(b"", Unprocessable, 422, "empty_file")
        assert "empty" in err.message

    def test_too_many_bytes(self) -> None:
        data = encode(Image.fromarray(rgb_array()), "PNG")
        err = expect_error(data, PayloadTooLarge, 413, "payload_too_large", max_bytes=len(data) - 1)
        assert err.details == {"limit_bytes": len(data) - 1}
        assert decode_image(data, max_bytes=len(data)).shape == (40, 48, 3)  # the limit itself is allowed

    def test_check_size(self) -> None:
        check_size(b"x", 1)
        with pytest.raises(PayloadTooLarge):
            check_size(b"xx", 1)
        with pytest.raises(Unprocessable):
            check_size(b"", 1)

    def test_truncated_jpeg(self) -> None:
        data = encode(Image.fromarray(rgb_array(64, 64)), "JPEG")
        for cut in (len(data) // 2, len(data) - 2, 700):
            expect_error(data[:cut], Unprocessable, 422, "corrupt_image")

    def test_truncated_png(self) -> None:
        data = encode(Image.fromarray(rgb_array(64, 64)), "PNG")
        for cut in (len(data) // 2, len(data) - 200, 60):
            err = expect_error(data[:cut], Unprocessable, 422, "corrupt_image")
            assert err.details and "reason" in err.details

    def test_truncated_tiff_webp_bmp(self) -> None:
        arr = rgb_array(64, 64)
        for fmt in ("TIFF", "WEBP", "BMP"):
            data = encode(Image.fromarray(arr), fmt)
            expect_error(data[: len(data) // 2], Unprocessable, 422, "corrupt_image")
    def test_png_truncated_right_after_ihdr_is_corrupt_not_unsupported(self) -> None:
        data = encode(Image.fromarray(rgb_array(64, 64)), "PNG")
        assert data[12:16] == b"IHDR"
        cut = 8 + 25 + 4  # signature + complete IHDR chunk + the length field of the next chunk
        expect_error(data[:cut], Unprocessable, 422, "corrupt_image")

    def test_png_bad_crc(self) -> None:
        data = bytearray(encode(Image.fromarray(rgb_array(64, 64)), "PNG"))
        idat = data.index(b"IDAT")
        data[idat + 40] ^= 0xFF  # corrupt the compressed data: CRC and zlib stream both break
        expect_error(bytes(data), Unprocessable, 422, "corrupt_image")
    def test_tiff_with_rational_strip_offsets_is_corrupt(self) -> None:
        data = bytearray(encode(Image.fromarray(gray_array(32, 32)), "TIFF"))
        assert data[:4] == b"II*\x00"
        ifd = struct.unpack_from("<I", data, 4)[0]
        (count,) = struct.unpack_from("<H", data, ifd)
        for i in range(count):
            entry = ifd + 2 + 12 * i
            tag, typ = struct.unpack_from("<HH", data, entry)
            if tag == 273:  # StripOffsets: LONG/SHORT -> RATIONAL (type 5)
                struct.pack_into("<H", data, entry + 2, 5)
                break
        else:  # pragma: no cover
            pytest.fail("no StripOffsets tag")
        expect_error(bytes(data), Unprocessable, 422, "corrupt_image")

    def test_corrupt_inputs_never_escape_as_non_bio_errors(self) -> None:
        """Light fuzz (fixed seed): flipped header bytes must give a BioError, never another exception."""
        rng = np.random.default_rng(7)
        sources = [encode(Image.fromarray(rgb_array(24, 24)), fmt) for fmt in ("PNG", "JPEG", "BMP", "GIF", "WEBP")]
        for data in sources:
            for _ in range(150):
                b = bytearray(data)
                for _ in range(int(rng.integers(1, 4))):
                    b[int(rng.integers(0, min(len(b), 200)))] = int(rng.integers(0, 256))
                try:
                    decode_image(bytes(b))
                except BioError as exc:
                    assert 400 <= exc.status_code < 500

    def test_image_too_small(self) -> None:
        data = encode(Image.new("RGB", (15, 100)), "PNG")
        err = expect_error(data, Unprocessable, 422, "image_too_small")
        assert "15x100" in err.message
        assert decode_image(encode(Image.new("RGB", (16, 16)), "PNG")).shape == (16, 16, 3)
        assert decode_image(data, min_side=8).shape == (100, 15, 3)

    def test_pixel_limit_boundary(self) -> None:
        data = encode(Image.new("L", (100, 100)), "PNG")
        assert decode_image(data, max_pixels=10_000).shape == (100, 100, 3)
        err = expect_error(data, PayloadTooLarge, 413, "too_many_pixels", max_pixels=9_999)
        assert err.details == {"width": 100, "height": 100, "limit_pixels": 9_999}


class TestDecompressionBomb:
    def test_header_only_bomb(self) -> None:
        data = bomb_png(30_000, 30_000, rows=4)
        assert len(data) < 1_000
        assert Image.open(io.BytesIO(data)).size == (30_000, 30_000)
        tracemalloc.start()
        try:
            start = time.perf_counter()
            err = expect_error(data, PayloadTooLarge, 413, "too_many_pixels")
            elapsed = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert err.details == {"width": 30_000, "height": 30_000, "limit_pixels": 40_000_000}
        assert peak < 5_000_000, f"decoder allocated {peak} bytes for a refused image"
        assert elapsed < 1.0

    def test_real_compressed_bomb(self) -> None:
        # 10000 x 10000 1-bit pixels (100 Mpx, 300 MB once converted to RGB) in a few kilobytes.
        data = bomb_png(10_000, 10_000)
        assert len(data) < 150_000
        tracemalloc.start()
        try:
            expect_error(data, PayloadTooLarge, 413, "too_many_pixels")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 5_000_000

    def test_bomb_in_other_formats(self) -> None:
        # A GIF and a BMP whose headers claim huge sizes: refused from the header alone.
        gif = bytearray(encode(Image.new("P", (20, 20)), "GIF"))
        struct.pack_into("<HH", gif, 6, 60_000, 60_000)  # logical screen
        with pytest.raises(BioError) as info:
            decode_image(bytes(gif))
        assert info.value.status_code in (413, 422)
        bmp = bytearray(encode(Image.new("RGB", (20, 20)), "BMP"))
        struct.pack_into("<ii", bmp, 18, 50_000, 50_000)
        expect_error(bytes(bmp), PayloadTooLarge, 413, "too_many_pixels")

    def test_pillow_bomb_limit_disabled_in_favour_of_ours(self) -> None:
        # Our limit is the only one: a 41 Mpx image is refused by us (413), not by Pillow's warning.
        data = bomb_png(6_500, 6_500, rows=2)
        expect_error(data, PayloadTooLarge, 413, "too_many_pixels", max_pixels=40_000_000)
        assert Image.MAX_IMAGE_PIXELS is None


# -- helpers -----------------------------------------------------------------------------------------------


class TestHelpers:
    def test_encode_png_round_trip(self) -> None:
        for arr in (gray_array(), rgb_array()):
            png = encode_png(arr)
            assert png.startswith(PNG_SIGNATURE)
            back = decode_image(png, mode="gray" if arr.ndim == 2 else "rgb")
            np.testing.assert_array_equal(back.pixels, arr)

    def test_resize_max_side(self) -> None:
        arr = rgb_array(100, 200)
        small = resize_max_side(arr, 50)
        assert small.shape == (25, 50, 3) and small.dtype == np.uint8
        assert resize_max_side(arr, 200) is arr
        assert resize_max_side(arr, 500) is arr
        assert resize_max_side(gray_array(300, 30), 100).shape == (100, 10)
        assert resize_max_side(gray_array(1000, 1), 10).shape == (10, 1)  # never a zero side

    def test_to_uint8_modes(self) -> None:
        for mode in ("RGB", "L", "RGBA", "LA", "CMYK", "YCbCr", "I", "F", "I;16", "1", "P", "HSV"):
            img = Image.new(mode, (4, 3))
            assert to_uint8(img, "rgb").shape == (3, 4, 3), mode
            assert to_uint8(img, "gray").shape == (3, 4), mode
            assert to_uint8(img, "gray").dtype == np.uint8


# -- real samples ------------------------------------------------------------------------------------------


@pytest.mark.data
class TestRealSamples:
    def test_fvc2002_fingerprint_tiff(self, data_dir: Path) -> None:
        data = (data_dir / "fingerprints/fvc2002/DB1_B/101_1.tif").read_bytes()
        out = decode_image(data, mode="gray")
        assert out.format == "TIFF" and out.source_mode == "L"
        assert out.shape == (374, 388)  # DB1: 388 x 374
        assert 30 < out.pixels.mean() < 250 and out.pixels.std() > 10  # a print, not a flat field
        np.testing.assert_array_equal(out.pixels, np.asarray(Image.open(data_dir / "fingerprints/fvc2002/DB1_B/101_1.tif")))

    def test_whole_fvc2002_b_sets(self, data_dir: Path) -> None:
        shapes = {"DB1_B": (374, 388), "DB2_B": (560, 296)}
        for db, shape in shapes.items():
            files = sorted((data_dir / "fingerprints/fvc2002" / db).glob("*.tif"))
            assert len(files) == 80
            for f in files[::9]:
                assert decode_image(f.read_bytes(), mode="gray").shape == shape, f

    def test_same_print_in_png_bmp_and_tiff_decodes_identically(self, data_dir: Path) -> None:
        fp = data_dir / "fingerprints"
        tif = decode_image((fp / "fvc2002/DB1_B/102_1.tif").read_bytes(), mode="gray").pixels
        png = decode_image((fp / "sourceafis/probe.png").read_bytes(), mode="gray")
        bmp = decode_image((fp / "sourceafis/probe.bmp").read_bytes(), mode="gray")
        jpg = decode_image((fp / "sourceafis/probe.jpeg").read_bytes(), mode="gray")
        assert png.source_mode == "RGBA"  # opaque alpha: compositing must not change anything
        np.testing.assert_array_equal(png.pixels, tif)
        np.testing.assert_array_equal(bmp.pixels, tif)
        assert jpg.shape == tif.shape
        assert np.abs(jpg.pixels.astype(int) - tif).mean() < 5

    def test_wsq_is_not_accepted(self, data_dir: Path) -> None:
        data = (data_dir / "fingerprints/sourceafis/wsq-original.wsq").read_bytes()
        expect_error(data, UnsupportedMedia, 415, "not_an_image")

    def test_face_32bit_png(self, data_dir: Path) -> None:
        path = data_dir / "faces/face_recognition/test_images/32bit.png"
        out = decode_image(path.read_bytes())
        assert out.format == "PNG" and out.source_mode == "RGBA"
        assert out.shape == (1200, 626, 3)
        rgba = np.asarray(Image.open(path))
        # every alpha is 255 in this sample: compositing on white must leave the colours as they are
        np.testing.assert_array_equal(out.pixels, rgba[..., :3])

    def test_face_jpegs(self, data_dir: Path) -> None:
        base = data_dir / "faces/face_recognition"
        obama = decode_image((base / "test_images/obama.jpg").read_bytes())
        assert obama.shape == (1137, 910, 3) and obama.format == "JPEG"
        small = decode_image((base / "examples/obama_small.jpg").read_bytes(), mode="gray")
        assert small.shape == (240, 320)

    def test_every_listed_face_decodes(self, data_dir: Path) -> None:
        base = data_dir / "faces/face_recognition"
        with open(base / "truth.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) >= 20
        for row in rows:
            path = base / row["image"]
            img = Image.open(path)
            out = decode_image(path.read_bytes())
            assert out.pixels.ndim == 3 and out.pixels.shape[2] == 3
            assert sorted(out.shape[:2]) == sorted(img.size), row["image"]

    def test_rgba_face_png_composited(self, data_dir: Path) -> None:
        path = data_dir / "faces/face_recognition/examples/lin-manuel-miranda.png"
        rgba = np.asarray(Image.open(path).convert("RGBA")).astype(np.float64)
        out = decode_image(path.read_bytes()).pixels.astype(np.float64)
        alpha = rgba[..., 3:] / 255.0
        expected = rgba[..., :3] * alpha + 255.0 * (1 - alpha)
        assert np.abs(out - expected).max() <= 1.0


def test_tiff_plugin_available() -> None:
    assert TiffImagePlugin.TiffImageFile.format == "TIFF"


# -- fit_rgb: the normalisation of the three face services (once, for all of them) ----------------------


@pytest.mark.parametrize("rel", ["test_images/biden.jpg", "examples/obama-1080p.jpg"])
def test_fit_rgb_caps_the_longer_side_and_keeps_the_aspect(data_dir, rel):
    check_rgb_downscale(fit_rgb, decode_file(data_dir / "faces" / "face_recognition" / rel), 512)


def test_fit_rgb_returns_small_photos_unchanged(data_dir):
    check_rgb_kept(fit_rgb, decode_file(data_dir / "faces" / "face_recognition" / "examples" / "obama_small.jpg"), 1024)


def test_fit_rgb_keeps_an_image_already_at_max_side(data_dir):
    rgb = decode_file(data_dir / "face_parsing" / "celebamask-hq" / "parsenet_test_img" / "0.jpg")  # 512 x 512
    assert np.array_equal(fit_rgb(rgb, 512), rgb)
    assert fit_rgb(rgb, 256).shape == (256, 256, 3)


def test_fit_rgb_refuses_anything_but_rgb_and_a_non_positive_max_side():
    check_rgb_guards(fit_rgb)
