"""bio_shared.images: EXIF orientation, refusals, size and pixel limits, decompression bombs, helpers and
real samples of the one safe decoder."""

from __future__ import annotations

import csv
import io
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from bio_shared.errors import BioError, PayloadTooLarge, Unprocessable, UnsupportedMedia
from bio_shared.images import (
    ALLOWED_FORMATS,
    check_size,
    decode_image,
    encode_png,
    fit_rgb,
    resize_max_side,
    to_uint8,
)
from bio_testing.images import PNG_SIGNATURE, bomb_png, encode, gray_array, rgb_array
from bio_testing.shared import check_rgb_downscale, check_rgb_guards, check_rgb_kept, decode_file


def expect_error(data: bytes, cls: type[BioError], status: int, code: str, **kw) -> BioError:
    with pytest.raises(cls) as info:
        decode_image(data, **kw)
    assert info.value.status_code == status
    assert info.value.code == code
    return info.value




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
