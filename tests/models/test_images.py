"""open_image: every common format and mode becomes RGB; anything else is refused with a plain ImageError."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

import models
from models import images

RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8)


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def rgb_array(data: bytes) -> np.ndarray:
    img = models.open_image(data)
    assert isinstance(img, Image.Image)
    assert img.mode == "RGB"
    return np.asarray(img)


# --- formats ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True})],
)
def test_lossless_formats_round_trip_exactly(fmt, options):
    np.testing.assert_array_equal(rgb_array(encode(Image.fromarray(PIXELS), fmt, **options)), PIXELS)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_lossy_formats_decode_close_to_the_original(fmt):
    smooth = np.zeros((32, 48, 3), dtype=np.uint8)
    smooth[..., 0] = np.linspace(0, 255, 48, dtype=np.uint8)
    smooth[..., 1] = 90
    smooth[..., 2] = np.linspace(255, 0, 32, dtype=np.uint8)[:, None]

    got = rgb_array(encode(Image.fromarray(smooth), fmt, quality=95))

    assert got.shape == smooth.shape
    assert np.abs(got.astype(int) - smooth).mean() < 4


def test_gif_gives_the_first_frame_of_an_animation():
    red, blue = Image.new("RGB", (5, 4), (255, 0, 0)), Image.new("RGB", (5, 4), (0, 0, 255))
    data = encode(red, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2

    got = rgb_array(data)

    assert got.shape == (4, 5, 3)
    assert (got == (255, 0, 0)).all()


def test_greyscale_becomes_three_equal_channels():
    grey = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    got = rgb_array(encode(Image.fromarray(grey, mode="L"), "PNG"))
    for channel in range(3):
        np.testing.assert_array_equal(got[..., channel], grey)


def test_rgba_is_composited_on_white():
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (0, 0, 0, 0)  # fully transparent black -> white
    rgba[0, 1] = (10, 20, 30, 255)  # opaque -> unchanged
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    rgba[1] = (200, 0, 0, 0)  # transparent red -> white

    got = rgb_array(encode(Image.fromarray(rgba, mode="RGBA"), "PNG"))

    assert tuple(got[0, 0]) == (255, 255, 255)
    assert tuple(got[0, 1]) == (10, 20, 30)
    assert np.abs(got[0, 2].astype(int) - 127).max() <= 1
    assert (got[1] == 255).all()


def test_greyscale_with_alpha_is_composited_on_white():
    la = Image.new("LA", (2, 1), (0, 0))
    la.putpixel((1, 0), (40, 255))
    got = rgb_array(encode(la, "PNG"))
    assert tuple(got[0, 0]) == (255, 255, 255)
    assert tuple(got[0, 1]) == (40, 40, 40)


def test_palette_image():
    palette_img = Image.fromarray(PIXELS).quantize(colors=8)
    assert palette_img.mode == "P"
    expected = np.asarray(palette_img.convert("RGB"))
    np.testing.assert_array_equal(rgb_array(encode(palette_img, "PNG")), expected)


def test_palette_transparency_becomes_white():
    palette_img = Image.new("P", (3, 1), 0)
    palette_img.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    palette_img.putpixel((1, 0), 1)
    data = encode(palette_img, "PNG", transparency=0)

    got = rgb_array(data)

    assert tuple(got[0, 0]) == (255, 255, 255)
    assert tuple(got[0, 1]) == (200, 10, 10)


def test_16_bit_greyscale_is_scaled_to_8_bits():
    deep = np.array([[0, 32896, 65535]], dtype=np.uint16)
    img = Image.fromarray(deep)
    data = encode(img, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")

    got = rgb_array(data)

    assert [int(v) for v in got[0, :, 0]] == [0, 128, 255]
    assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()


def test_dark_16_bit_image_stays_dark():
    deep = np.array([[0, 255, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(deep), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")

    got = rgb_array(data)

    assert [int(v) for v in got[0, :, 0]] == [0, 1, 255]


def test_cmyk_jpeg_becomes_rgb():
    data = encode(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"

    got = rgb_array(data)

    assert got.shape == (8, 8, 3)
    assert got.min() >= 250  # no ink is white


def test_exif_orientation_is_applied():
    stored = Image.new("RGB", (4, 2), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = encode(stored, "JPEG", exif=exif.tobytes())

    img = models.open_image(data)

    assert img.size == (2, 4)
    assert img.mode == "RGB"


def test_exif_rotation_moves_the_pixels():
    stored = np.zeros((16, 32, 3), dtype=np.uint8)
    stored[:, :16] = (255, 0, 0)  # left half red
    stored[:, 16:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(stored), "JPEG", exif=exif.tobytes(), quality=95, subsampling=0)

    got = rgb_array(data).astype(int)

    assert got.shape == (32, 16, 3)
    # Turned a quarter clockwise, the left (red) half is on top and the right (blue) half below.
    assert got[:12, :, 0].mean() > 200 and got[:12, :, 2].mean() < 50
    assert got[20:, :, 2].mean() > 200 and got[20:, :, 0].mean() < 50


# --- sources ---------------------------------------------------------------------------------------------------


def test_bytes_paths_and_binary_files_all_work(tmp_path):
    data = encode(Image.fromarray(PIXELS), "PNG")
    path = tmp_path / "pixels.png"
    path.write_bytes(data)

    with open(path, "rb") as handle:
        from_handle = models.open_image(handle)
    results = [
        models.open_image(data),
        models.open_image(bytearray(data)),
        models.open_image(memoryview(data)),
        models.open_image(str(path)),
        models.open_image(path),
        models.open_image(io.BytesIO(data)),
        from_handle,
    ]

    for img in results:
        assert img.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(img), PIXELS)


def test_missing_path_text_file_and_wrong_type_are_image_errors(tmp_path):
    with pytest.raises(models.ImageError, match="Could not read"):
        models.open_image(tmp_path / "missing.png")
    with pytest.raises(models.ImageError, match="binary"):
        models.open_image(io.StringIO("not bytes"))
    with pytest.raises(models.ImageError, match="int"):
        models.open_image(42)


# --- refusals --------------------------------------------------------------------------------------------------


def jpeg_bytes() -> bytes:
    return encode(Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"hello, this is plain text\n" * 20, id="text"),
        pytest.param(
            b"<!DOCTYPE html><html><head><title>x</title></head><body><img src=a.png></body></html>", id="html"
        ),
        pytest.param(jpeg_bytes()[:30], id="jpeg-header-only"),
        pytest.param(jpeg_bytes()[:1000], id="truncated-jpeg"),
        pytest.param(encode(Image.fromarray(PIXELS), "PNG")[:-30], id="truncated-png"),
        pytest.param(np.random.default_rng(7).bytes(4096), id="random"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, id="png-signature-only"),
    ],
)
def test_refusals_are_plain_image_errors(data):
    with pytest.raises(models.ImageError) as info:
        models.open_image(data)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert message.strip()
    assert "Traceback" not in message


def test_image_error_is_a_value_error():
    assert issubclass(models.ImageError, ValueError)


def png_claiming(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose IHDR is patched to claim width x height (with a correct CRC)."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.fixture
def no_decoding(monkeypatch):
    """Records every attempt to decode pixel data."""
    calls = []
    original = ImageFile.ImageFile.load

    def load(self):
        calls.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return calls


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(("width", "height"), [(12_000, 9_000), (40_000, 40_000)])
def test_huge_claimed_size_is_refused_without_decoding(no_decoding, width, height):
    data = png_claiming(width, height)
    assert len(data) < 100
    assert width * height > images.MAX_PIXELS

    with pytest.raises(models.ImageError, match="too large"):
        models.open_image(data)
    assert no_decoding == []


def test_the_patched_header_is_otherwise_valid():
    assert Image.open(io.BytesIO(png_claiming(7, 3))).size == (7, 3)


def test_size_limit_is_max_pixels(monkeypatch, no_decoding):
    monkeypatch.setattr(images, "MAX_PIXELS", 50)

    assert models.open_image(encode(Image.new("RGB", (10, 5)), "PNG")).size == (10, 5)
    assert (10, 5) in no_decoding  # the fixture does see decoding
    no_decoding.clear()
    with pytest.raises(models.ImageError, match="too large"):
        models.open_image(encode(Image.new("RGB", (10, 6)), "PNG"))
    assert no_decoding == []
