"""Open user images as RGB PIL images, with a plain message for anything we cannot read."""

from __future__ import annotations

import io
import os
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

MAX_PIXELS = 89_478_485
"""Images that claim more pixels than this are refused before decoding. It is Pillow's own warning threshold
(`Image.MAX_IMAGE_PIXELS`), so an image we accept never sets off its DecompressionBombWarning and nothing needs
silencing (`warnings.catch_warnings` changes process-wide state, which is not safe with concurrent sessions)."""
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
"""The only Pillow decoders tried: other plugins (EPS runs Ghostscript, for one) never see an upload."""
READABLE = "JPEG, PNG, WebP, GIF, BMP or TIFF"
REASON_CHARS = 100


class ImageError(ValueError):
    """A file that is not an image whylabel can read; the message says why in one plain line."""


def open_image(source: bytes | str | os.PathLike[str] | BinaryIO) -> Image.Image:
    """Read bytes, a path or a binary file into an RGB image (EXIF orientation applied).

    Any file that is not a readable image raises ImageError, and nothing else: the size in the header is
    checked against MAX_PIXELS before any pixel is decoded or allocated.
    """
    data = _read_bytes(source)
    if not data:
        raise ImageError("The file is empty.")
    img = _open_header(data)
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ImageError(_too_big_message(width, height))
    return _decode(img)


def _open_header(data: bytes) -> Image.Image:
    """The image with only its header read: size and mode are known, no pixel is decoded."""
    try:
        return Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as err:
        raise ImageError(_too_big_message()) from err
    except Exception as err:
        raise ImageError(f"This file is not an image whylabel can read ({READABLE}).") from err


def _decode(img: Image.Image) -> Image.Image:
    """The first frame's pixels, turned upright and made RGB."""
    try:
        img.seek(0)
        img.load()
        ImageOps.exif_transpose(img, in_place=True)  # in place: a 24-Mpx copy less
        return _to_rgb(img)
    except Image.DecompressionBombError as err:
        raise ImageError(_too_big_message()) from err
    except MemoryError as err:
        raise ImageError("The image is too large to decode in the memory available.") from err
    except Exception as err:
        raise ImageError(f"The image could not be decoded; it may be truncated or damaged{_reason(err)}.") from err


def _read_bytes(source: bytes | str | os.PathLike[str] | BinaryIO) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | os.PathLike):
        try:
            with open(source, "rb") as handle:
                return handle.read()
        except OSError as err:
            raise ImageError(f"Could not read {os.fspath(source)!r}: {err.strerror or err}.") from err
        except ValueError as err:  # e.g. a NUL byte in the path
            raise ImageError(f"Could not read {os.fspath(source)!r}{_reason(err)}.") from err
    if hasattr(source, "read"):
        try:
            data = source.read()
        except (OSError, ValueError) as err:  # a closed or unreadable file
            raise ImageError(f"Could not read the file{_reason(err)}.") from err
        if not isinstance(data, bytes | bytearray):
            raise ImageError("The file must be opened in binary mode.")
        return bytes(data)
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
    finite = array[np.isfinite(array)]
    low, high = float(finite.min(initial=0)), float(finite.max(initial=1))
    array = np.nan_to_num(array, nan=low, posinf=high, neginf=low)
    # 16-bit modes always span 0..65535; a 32-bit "I" image is read as 16-bit when it goes past 255.
    top = 65535.0 if img.mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
    if img.mode == "F":
        array, top = array - low, max(high - low, 1e-12)
    return Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")


def _reason(err: BaseException) -> str:
    """The error's own words, on one short line in brackets, or nothing when it has none."""
    text = " ".join(str(err).split()).rstrip(".")
    if len(text) > REASON_CHARS:
        text = text[: REASON_CHARS - 3].rstrip() + "..."
    return f" ({text})" if text else ""


def _too_big_message(width: int | None = None, height: int | None = None) -> str:
    size = f" ({width} x {height})" if width and height else ""
    return f"The image is too large{size}: at most {MAX_PIXELS:,} pixels are accepted."
