"""One image's part of an audit: its prediction and its map, reduced to what comparing many maps needs.

A map is kept as a `GRID` x `GRID` share of the positive evidence (cells summing to 1): the audit asks where
a class's evidence lies, not how much of it there is, so maps of bright and dark images, or of confident and
unsure predictions, compare on one footing. Evidence against the class (negative values) is left out of the
grid; it is not what a class is predicted by.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from whylabel import explainers, models
from whylabel.audit import localise

GRID = 16
"""Cells a side of the reduced map: a mark of a sixteenth of the image's side still fills a cell."""
THUMB = 64
"""Pixels a side of the thumbnails the report and the page show."""
DEFAULT_METHOD = "saliency"
"""The audit's method where the model gives gradients (`audit.default_method`; occlusion where it does not):
on the trained demos it found the marked images and gave no false flag, at 2 ms a digit; integrated gradients
and Grad-CAM gave false flags and SmoothGrad found none (bench.audit; docs/audit.md)."""


@dataclass
class Item:
    """One image of an audit: what the model predicted and where its evidence for that class lies."""

    file: str
    group: str
    predicted: int
    label: str
    confidence: float
    grid: np.ndarray
    """(GRID, GRID) float64 share of the positive evidence for the predicted class; sums to 1."""
    thumb: bytes = b""
    """A PNG of the model's view, `THUMB` pixels a side."""
    evidence: bool = True
    """False when the map held no evidence for the class at all (its grid is then uniform)."""
    localisation: dict[str, Any] = field(default_factory=dict)
    """With a box: "mass" (relevance mass accuracy) and "pointing" (the pointing game), see `localise`."""


def evidence_grid(heatmap: np.ndarray, size: int = GRID) -> tuple[np.ndarray, bool]:
    """The positive part of a map, averaged over `size` x `size` cells and divided by its sum (uniform if none)."""
    positive = np.clip(np.asarray(heatmap, dtype=np.float32), 0, None)
    cells = Image.fromarray(positive, mode="F").resize((size, size), Image.Resampling.BOX)
    grid = np.asarray(cells, dtype=np.float64).clip(0, None)
    total = grid.sum()
    if not np.isfinite(total) or total <= 0:
        return np.full((size, size), 1.0 / size**2), False
    return grid / total, True


def thumbnail(pixels: np.ndarray, size: int = THUMB) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).resize((size, size), Image.Resampling.LANCZOS).save(out, format="PNG")
    return out.getvalue()


def map_image(
    clf: models.Classifier,
    img: Image.Image,
    file: str,
    group: str = "",
    method: str = DEFAULT_METHOD,
    seed: int = 0,
    box: tuple[float, float, float, float] | None = None,
    **params: Any,
) -> Item:
    """The image's prediction and its `method` map for the predicted class, reduced to an `Item`."""
    pixels = clf.input_image(img)
    top = clf.predict_view(pixels, k=1).top[0]
    att = explainers.explain(clf, img, method, target=top[0], seed=seed, **params)
    grid, found = evidence_grid(att.heatmap)
    item = Item(file, group, top[0], top[1], top[2], grid, thumbnail(pixels), found)
    if box is not None:
        item.localisation = localise.scores(att.heatmap, localise.view_box(clf, img, box))
    return item
