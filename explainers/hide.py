"""Hide regions of an image with a fill: the one mechanism LIME, SHAP, the trust metrics and edits share.

A fill says what hidden pixels become; one vocabulary for every user, each taking the fills it can honour:
- `blur`: a heavily blurred copy of the image (sigma = side / 8): each region keeps its average colour but
  loses its detail, so a hidden region does not look like an unusual grey square to the model;
- `mean`: each region's own mean colour (a superpixel's, given the segments; the whole image's otherwise);
- `grey`: mid-grey (128); `black`: 0.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from whylabel.explainers.base import Param

FILLS = ("blur", "mean", "grey", "black")
"""Every fill, in the order a page offers them."""
PLAIN_FILLS = ("blur", "grey", "black")
"""The fills that need no regions: for pixel masks (SHAP's rectangles, deletion curves, baselines)."""
FILL_HELP = "What hidden pixels become: a blurred copy, each region's mean colour, grey or black."


def fill_param(default: str, choices: tuple[str, ...] = FILLS) -> Param:
    """The `fill` parameter of a method or metric: one name and one vocabulary everywhere."""
    return Param("fill", default, FILL_HELP, choices=choices)


FILL = fill_param("blur", PLAIN_FILLS)


def hidden_image(pixels: np.ndarray, fill: str, segments: np.ndarray | None = None) -> np.ndarray:
    """A float32 (H, W, 3) image to put where pixels are hidden, for uint8 or float (H, W, 3) `pixels`."""
    fill = fill_param(fill).check(fill)
    image = np.asarray(pixels, dtype=np.float32)
    if fill == "blur":
        sigma = min(image.shape[:2]) / 8
        return np.stack([gaussian_filter(image[..., c], sigma, mode="nearest") for c in range(3)], axis=-1)
    if fill == "mean":
        return region_means(image, segments)
    return np.full_like(image, 128.0 if fill == "grey" else 0.0)


def region_means(image: np.ndarray, segments: np.ndarray | None) -> np.ndarray:
    """Each pixel replaced by its region's mean colour (the image's mean colour without segments)."""
    if segments is None:
        return np.broadcast_to(image.reshape(-1, 3).mean(axis=0), image.shape).astype(np.float32)
    flat = segments.ravel()
    counts = np.bincount(flat)
    sums = np.stack([np.bincount(flat, image[..., c].ravel()) for c in range(3)], axis=-1)
    return (sums / np.maximum(counts, 1)[:, None])[segments].astype(np.float32)


def hide(pixels: np.ndarray, shown: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Float32 images (N, H, W, 3): `pixels` where `shown` (N, H, W) is True, `hidden` elsewhere.

    One masked copy per batch, not a Python loop over images or regions.
    """
    shown = np.asarray(shown, dtype=bool)
    out = np.empty((*shown.shape, 3), np.float32)
    out[:] = hidden
    np.copyto(out, np.asarray(pixels, dtype=np.float32), where=shown[..., None])
    return out


def hide_segments(pixels: np.ndarray, segments: np.ndarray, keep: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Float32 images (N, H, W, 3) showing the superpixels that `keep` (N, n_segments) marks, the rest hidden."""
    return hide(pixels, np.asarray(keep, dtype=bool)[:, segments], hidden)
