"""Fuzzing open_image: whatever the bytes, an RGB image or a models.ImageError, and never anything else."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from whylabel import models

pytestmark = pytest.mark.filterwarnings(r"ignore::UserWarning:PIL\..*")  # Pillow's notes on corrupt files

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
MAGIC = [
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"\xff\xd8\xff\xdb",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"RIFF\x00\x00\x00\x00WEBPVP8L",
    b"RIFF\x00\x00\x00\x00WEBPVP8X",
]
"""The signatures Pillow recognises the six formats by, so the bytes behind them reach each decoder."""
MODES_BY_FORMAT = {
    "PNG": ("L", "LA", "RGB", "RGBA", "P", "I;16"),
    "JPEG": ("L", "RGB", "CMYK"),
    "WEBP": ("L", "LA", "RGB", "RGBA", "P"),
    "GIF": ("L", "P", "RGB"),
    "BMP": ("L", "P", "RGB", "RGBA"),
    "TIFF": ("L", "LA", "RGB", "RGBA", "P", "I;16", "CMYK"),
}
"""The modes each format can store (WebP converts the others to RGB or RGBA as it saves)."""
LOSSLESS = ("PNG", "BMP", "TIFF", "WEBP-lossless")
BYTES_PER_PIXEL = {"L": 1, "P": 1, "LA": 2, "I;16": 2, "RGB": 3, "RGBA": 4, "CMYK": 4}


def opens_or_refuses(data: bytes) -> Image.Image | None:
    """The opened image (checked to be RGB), or None for a refusal; any other exception fails the test."""
    try:
        img = models.open_image(data)
    except models.ImageError as err:
        message = str(err)
        assert message and "\n" not in message and "Traceback" not in message
        return None
    assert isinstance(img, Image.Image) and img.mode == "RGB"
    assert img.width >= 1 and img.height >= 1
    np.asarray(img)  # the pixels are really there
    return img


def encode(img: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "WEBP-lossless":
        img.save(buffer, "WEBP", lossless=True)
    else:
        img.save(buffer, fmt)
    return buffer.getvalue()


def random_image(mode: str, width: int, height: int, seed: int, flat: bool) -> Image.Image:
    """Noise (or one colour) in `mode`; palette images get a random palette."""
    rng = np.random.default_rng(seed)
    size = BYTES_PER_PIXEL[mode]
    raw = rng.bytes(size) * (width * height) if flat else rng.bytes(size * width * height)
    img = Image.frombytes(mode, (width, height), raw)
    if mode == "P":
        img.putpalette(rng.bytes(768))
    return img


SAMPLES = {
    fmt: encode(random_image(mode, 9, 7, seed=1, flat=False), fmt)
    for fmt, mode in [("PNG", "RGBA"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"), ("WEBP", "RGB")]
}
"""One small valid file per format, for the mutation test."""


# --- junk --------------------------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_open_or_are_refused(data):
    opens_or_refuses(data)


@FUZZ
@given(st.sampled_from(MAGIC), st.binary(max_size=2048))
def test_random_bytes_behind_a_real_signature_open_or_are_refused(magic, rest):
    opens_or_refuses(magic + rest)


@FUZZ
@given(
    st.sampled_from(sorted(SAMPLES)),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    st.one_of(st.none(), st.integers(1, 10**6)),
)
def test_damaged_real_files_open_or_are_refused(fmt, changes, cut):
    """Bytes changed (headers included) and the end cut off: the decoders' own error paths."""
    data = bytearray(SAMPLES[fmt])
    for position, value in changes:
        data[position % len(data)] = value
    opens_or_refuses(bytes(data[: None if cut is None else cut % len(data) + 1]))


# --- valid images ------------------------------------------------------------------------------------------------


@st.composite
def valid_files(draw: st.DrawFn) -> tuple[str, Image.Image, bytes]:
    fmt = draw(st.sampled_from([*MODES_BY_FORMAT, "WEBP-lossless"]))
    mode = draw(st.sampled_from(MODES_BY_FORMAT[fmt.removesuffix("-lossless")]))
    width, height = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    img = random_image(mode, width, height, draw(st.integers(0, 2**32 - 1)), draw(st.booleans()))
    return fmt, img, encode(img, fmt)


@FUZZ
@given(valid_files())
def test_every_valid_image_opens_as_rgb_of_the_same_size(case):
    fmt, img, data = case
    assert Image.open(io.BytesIO(data)).size == img.size  # the file is what was drawn

    got = opens_or_refuses(data)

    assert got is not None, f"a valid {img.mode} {fmt} of {img.size} was refused"
    assert got.size == img.size
    pixels = np.asarray(got)
    if fmt in LOSSLESS and img.mode == "RGB":
        np.testing.assert_array_equal(pixels, np.asarray(img))
    if fmt in LOSSLESS and img.mode == "L":
        np.testing.assert_array_equal(pixels, np.repeat(np.asarray(img)[..., None], 3, axis=-1))
    if fmt in ("PNG", "TIFF") and img.mode == "I;16":
        # 16-bit values v become round(v * 255 / 65535) = round(v / 257), never a tie
        grey = np.round(np.asarray(img, dtype=np.float64) / 257).astype(np.uint8)
        np.testing.assert_array_equal(pixels, np.repeat(grey[..., None], 3, axis=-1))


@FUZZ
@given(valid_files(), st.integers(1, 10**6))
def test_a_valid_image_cut_short_opens_or_is_refused(case, cut):
    _, _, data = case
    assume(len(data) > 1)
    opens_or_refuses(data[: cut % (len(data) - 1) + 1])
