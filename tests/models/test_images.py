"""open_image: every common format and mode becomes RGB; anything else is refused with a plain ImageError."""

from __future__ import annotations

import io
import struct
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from whylabel import models
from whylabel.models import images

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


def test_float_image_with_nan_and_inf_is_scaled_on_its_finite_values():
    values = np.array([[0.0, 0.5, 1.0, np.nan, np.inf, -np.inf]], dtype=np.float32)
    data = encode(Image.fromarray(values, mode="F"), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "F"

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy "invalid value" warning either
        got = rgb_array(data)

    # finite values span 0..1 -> 0..255; NaN and -inf take the lowest finite value, +inf the highest
    assert [int(v) for v in got[0, :, 0]] == [0, 128, 255, 0, 255, 0]


# --- sizes -----------------------------------------------------------------------------------------------------

FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]
LOSSLESS = {"PNG": {}, "BMP": {}, "TIFF": {}, "WEBP": {"lossless": True}}
COLOUR = (200, 40, 90)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_1x1_image_opens(fmt):
    got = rgb_array(encode(Image.new("RGB", (1, 1), COLOUR), fmt, **LOSSLESS.get(fmt, {})))

    assert got.shape == (1, 1, 3)
    if fmt in LOSSLESS:
        assert tuple(got[0, 0]) == COLOUR


def flat_classifier(input_size: int, crop: float) -> models.Classifier:
    return models.from_module(torch.nn.Identity(), ["only"], input_size, crop=crop)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", [(1, 5000), (5000, 1), (1, 1), (3, 4000)])
def test_long_thin_strips_open_and_reach_the_model_square(fmt, size):
    data = encode(Image.new("RGB", size, COLOUR), fmt, **LOSSLESS.get(fmt, {}))

    img = models.open_image(data)

    assert img.size == size and img.mode == "RGB"
    colour = np.asarray(img)[0, 0]
    assert (np.asarray(img) == colour).all()
    if fmt in LOSSLESS:
        assert tuple(colour) == COLOUR
    for input_size, crop in [(16, 1.0), (224, 0.875)]:
        square = flat_classifier(input_size, crop).input_image(img)
        assert square.shape == (input_size, input_size, 3) and square.dtype == np.uint8
        np.testing.assert_array_equal(square, np.broadcast_to(colour, square.shape))  # a flat image stays flat


def test_a_6000x4000_photo_opens_at_full_size_without_a_warning():
    stored = Image.linear_gradient("L").resize((6000, 4000)).convert("RGB")
    data = encode(stored, "JPEG", quality=90)
    assert images.MAX_PIXELS > 6000 * 4000

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning (or any other) would fail here
        img = models.open_image(data)

    assert img.size == (6000, 4000) and img.mode == "RGB"


def test_sizes_we_accept_never_set_off_pillows_warning():
    """Pillow warns above Image.MAX_IMAGE_PIXELS: our limit is at or under it, so nothing needs silencing."""
    assert images.MAX_PIXELS <= Image.MAX_IMAGE_PIXELS


def test_pillows_hard_limit_is_a_too_large_image_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    data = encode(Image.new("RGB", (30, 10)), "PNG")  # 300 pixels: over twice Pillow's limit
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))

    with pytest.raises(models.ImageError, match="too large"):
        models.open_image(data)


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


def test_unreadable_sources_are_image_errors(tmp_path):
    handle = open(tmp_path / "x.png", "wb+")  # noqa: SIM115  (closed on purpose before reading)
    handle.close()
    with pytest.raises(models.ImageError, match="Could not read"):
        models.open_image(handle)
    with pytest.raises(models.ImageError, match="Could not read"):
        models.open_image(str(tmp_path / "nul\x00.png"))
    with pytest.raises(models.ImageError, match="Could not read"):
        models.open_image(tmp_path)  # a folder


# --- refusals --------------------------------------------------------------------------------------------------


def jpeg_bytes() -> bytes:
    return encode(Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")


SVG = b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" viewBox="0 0 10 10">
  <rect width="10" height="10" fill="red"/>
</svg>
"""


def minimal_pdf() -> bytes:
    """A one-page PDF with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


PDF = minimal_pdf()
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\nshowpage\n%%EOF\n"


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
        pytest.param(SVG, id="svg"),
        pytest.param(PDF, id="pdf"),
        pytest.param(EPS, id="eps"),
        pytest.param(b"GIF89a" + b"\x00" * 30, id="gif-signature-only"),
        pytest.param(encode(Image.fromarray(PIXELS), "TIFF")[:-40], id="truncated-tiff"),
        pytest.param(encode(Image.fromarray(PIXELS), "WEBP")[:-10], id="truncated-webp"),
    ],
)
def test_refusals_are_plain_one_line_image_errors(data):
    with pytest.raises(models.ImageError) as info:
        models.open_image(data)
    assert isinstance(info.value, ValueError)
    assert_plain(str(info.value))


def assert_plain(message: str) -> None:
    """One short line of plain words: no traceback, no line breaks, no Python object reprs."""
    assert message.strip() == message and message
    assert "\n" not in message and "\r" not in message
    assert "Traceback" not in message and "<" not in message
    assert len(message) <= 200


def test_a_truncated_jpeg_says_so_on_one_line():
    with pytest.raises(models.ImageError, match=r"^The image could not be decoded; it may be truncated") as info:
        models.open_image(jpeg_bytes()[:1000])
    assert_plain(str(info.value))


def test_svg_and_pdf_are_what_they_claim_to_be():
    """The refusals above are of real documents, not of junk that merely starts like one."""
    import xml.etree.ElementTree as ElementTree

    assert ElementTree.fromstring(SVG).tag == "{http://www.w3.org/2000/svg}svg"
    assert PDF.startswith(b"%PDF-1.") and PDF.rstrip().endswith(b"%%EOF")
    offset = int(PDF.rsplit(b"startxref", 1)[1].split()[0])
    assert PDF[offset:].startswith(b"xref")


def test_other_pillow_formats_are_not_tried():
    """Only the six formats are decoded: an EPS (which Pillow would hand to Ghostscript) is refused unread."""
    assert Image.open(io.BytesIO(EPS)).format == "EPS"  # Pillow itself would take it
    with pytest.raises(models.ImageError, match="not an image whylabel can read"):
        models.open_image(EPS)


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


def gif_claiming(width: int, height: int) -> bytes:
    """A valid 1x1 GIF whose screen and image descriptors claim width x height (16 bits each)."""
    data = bytearray(encode(Image.new("P", (1, 1)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    descriptor = data.index(b"\x2c", 13)  # after the header and the logical screen descriptor
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def bmp_claiming(width: int, height: int) -> bytes:
    """A valid 1x1 BMP whose BITMAPINFOHEADER claims width x height (32 bits each)."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "BMP"))
    assert struct.unpack("<I", data[14:18])[0] >= 40  # an info header with the size at 18..26
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A valid 1x1 baseline JPEG whose SOF0 segment claims width x height (16 bits each)."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def tiff_claiming(width: int, height: int) -> bytes:
    """A valid 1x1 little-endian TIFF whose ImageWidth and ImageLength tags claim width x height."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "TIFF"))
    assert data[:4] == b"II*\x00"
    ifd = struct.unpack("<I", data[4:8])[0]
    patched = set()
    for entry in range(struct.unpack("<H", data[ifd : ifd + 2])[0]):
        at = ifd + 2 + 12 * entry
        tag, kind = struct.unpack("<HH", data[at : at + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength
            value = width if tag == 256 else height
            data[at + 8 : at + 12] = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
            patched.add(tag)
    assert patched == {256, 257}
    return bytes(data)


def webp_claiming(width: int, height: int) -> bytes:
    """A valid 1x1 lossless WebP whose VP8L header claims width x height (14 bits each: at most 16384)."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "WEBP", lossless=True))
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    bits = struct.unpack("<I", data[21:25])[0] & ~((1 << 28) - 1)
    data[21:25] = struct.pack("<I", bits | (width - 1) | (height - 1) << 14)
    return bytes(data)


CLAIMING = {
    "PNG": png_claiming,
    "GIF": gif_claiming,
    "BMP": bmp_claiming,
    "JPEG": jpeg_claiming,
    "TIFF": tiff_claiming,
    "WEBP": webp_claiming,
}
BOMBS = [
    pytest.param("PNG", 12_000, 9_000, id="png-just-over-the-limit"),
    pytest.param("PNG", 40_000, 40_000, id="png"),
    pytest.param("PNG", 100_000, 100_000, id="png-10-gigapixels"),
    pytest.param("GIF", 65_000, 65_000, id="gif"),
    pytest.param("BMP", 65_000, 65_000, id="bmp"),
    pytest.param("BMP", 1_000_000, 1_000_000, id="bmp-1-terapixel"),
    pytest.param("JPEG", 65_000, 65_000, id="jpeg"),
    pytest.param("JPEG", 12_000, 9_000, id="jpeg-just-over-the-limit"),
    pytest.param("TIFF", 65_000, 65_000, id="tiff"),
    pytest.param("WEBP", 16_384, 16_384, id="webp-largest-it-can-claim"),
]


@pytest.fixture
def allocations(monkeypatch):
    """Records the size of every image Pillow's core allocates (new, fill, map_buffer)."""
    sizes: list[tuple[int, int]] = []
    for name in ("new", "fill", "map_buffer"):
        original = getattr(Image.core, name)

        def spy(*args, _original=original, **kwargs):
            size = args[1] if len(args) > 1 else None
            if isinstance(size, tuple):
                sizes.append(size)
            return _original(*args, **kwargs)

        monkeypatch.setattr(Image.core, name, spy)
    return sizes


@pytest.mark.parametrize(("fmt", "width", "height"), BOMBS)
def test_huge_claimed_size_is_refused_without_decoding_or_allocating(no_decoding, allocations, fmt, width, height):
    data = CLAIMING[fmt](width, height)
    assert len(data) < 1000
    assert width * height > images.MAX_PIXELS
    models.open_image(encode(Image.new("RGB", (2, 2)), fmt))  # plugins imported, caches warm: not measured
    no_decoding.clear()
    allocations.clear()

    tracemalloc.start()
    try:
        with warnings.catch_warnings(), pytest.raises(models.ImageError, match="too large") as info:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # Pillow warns; we refuse
            models.open_image(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert no_decoding == []
    assert all(w * h <= 256 * 256 for w, h in allocations)  # a palette at most, never the claimed pixels
    assert peak < 1_000_000  # bytes; one byte per claimed pixel would be over 100 MB
    assert_plain(str(info.value))
    if width * height <= 2 * Image.MAX_IMAGE_PIXELS:  # under Pillow's own hard limit, we see and state the size
        assert f"({width} x {height})" in str(info.value)


@pytest.mark.parametrize("fmt", CLAIMING)
def test_the_patched_headers_are_otherwise_valid(fmt):
    header = Image.open(io.BytesIO(CLAIMING[fmt](7, 3)))
    assert (header.format, header.size) == (fmt, (7, 3))


def test_size_limit_is_max_pixels(monkeypatch, no_decoding):
    monkeypatch.setattr(images, "MAX_PIXELS", 50)

    assert models.open_image(encode(Image.new("RGB", (10, 5)), "PNG")).size == (10, 5)
    assert (10, 5) in no_decoding  # the fixture does see decoding
    no_decoding.clear()
    with pytest.raises(models.ImageError, match="too large"):
        models.open_image(encode(Image.new("RGB", (10, 6)), "PNG"))
    assert no_decoding == []
