"""Open user images as RGB PIL images, with a plain message for anything we cannot read."""

from __future__ import annotations

import io
import os
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

MAX_PIXELS = 100_000_000
"""Images that claim more pixels than this are refused before decoding."""


class ImageError(ValueError):
    """A file that is not an image whylabel can read; the message says why in plain words."""


def open_image(source: bytes | str | os.PathLike[str] | BinaryIO) -> Image.Image:
    """Read bytes, a path or a binary file into an RGB image (EXIF orientation applied)."""
    data = _read_bytes(source)
    if not data:
        raise ImageError("The file is empty.")
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise ImageError(_too_big_message()) from err
    except Exception as err:
        raise ImageError("This file is not an image whylabel can read (JPEG, PNG, WebP, GIF, BMP or TIFF).") from err
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ImageError(_too_big_message(width, height))
    try:
        img.seek(0)
        img.load()
        img = ImageOps.exif_transpose(img) or img
        return _to_rgb(img)
    except Exception as err:
        raise ImageError(f"The image could not be decoded; it may be truncated or damaged ({err}).") from err


def _read_bytes(source: bytes | str | os.PathLike[str] | BinaryIO) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | os.PathLike):
        try:
            with open(source, "rb") as handle:
                return handle.read()
        except OSError as err:
            raise ImageError(f"Could not read {os.fspath(source)!r}: {err.strerror or err}.") from err
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, bytes):
            raise ImageError("The file must be opened in binary mode.")
        return data
    raise ImageError(f"Expected bytes, a path or a binary file, got {type(source).__name__}.")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        img = _scale_to_8bit(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _scale_to_8bit(img: Image.Image) -> Image.Image:
    array = np.asarray(img, dtype=np.float64)
    # 16-bit modes always span 0..65535; a 32-bit "I" image is read as 16-bit when it goes past 255.
    top = 65535.0 if img.mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
    if img.mode == "F":
        low, high = float(array.min(initial=0)), float(array.max(initial=1))
        array, top = array - low, max(high - low, 1e-12)
    return Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")


def _too_big_message(width: int | None = None, height: int | None = None) -> str:
    size = f" ({width} x {height})" if width and height else ""
    return f"The image is too large{size}: at most {MAX_PIXELS:,} pixels are accepted."
