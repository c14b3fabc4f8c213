"""Deletion and insertion curves (Petsiuk et al., 2018, RISE): does the map rank the pixels the model uses?

Deletion hides the pixels in order of attribution, most positive first, and records the target's
probability after each of `steps` equal steps: a faithful map makes it fall fast (low area under the
curve). Insertion starts from the fully hidden image and reveals pixels in the same order: a faithful map
makes it rise fast (high area). Ties (flat tiles in occlusion, LIME or SHAP maps) are broken by a fixed
random order rather than raster order, which would favour the top rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explainers.base import Param
from explainers.fill import FILL, hidden_value
from explainers.forward import softmax
from models import Classifier

MODES = ("deletion", "insertion")
MODE = Param("mode", "deletion", "Hide the pixels (deletion) or reveal them (insertion).", choices=MODES)
STEPS = Param("steps", 20, "Equal steps from none to all pixels; one batch of steps + 1 images.", low=1, high=100)


@dataclass(frozen=True)
class Curve:
    """The target's probability after each step, from 0 to all pixels removed (or revealed)."""

    mode: str
    fractions: np.ndarray
    probabilities: np.ndarray

    @property
    def auc(self) -> float:
        """Area under the curve over fractions 0..1 (trapezoids)."""
        p, x = self.probabilities, self.fractions
        return float(np.sum((p[1:] + p[:-1]) / 2 * np.diff(x)))


def ranking(heatmap: np.ndarray, seed: int = 0) -> np.ndarray:
    """Flat pixel indices from most to least positive attribution; ties in a fixed random order."""
    tie_break = np.random.default_rng(seed).permutation(heatmap.size)
    return np.lexsort((tie_break, -heatmap.ravel().astype(np.float64)))


def curve(
    clf: Classifier,
    pixels: np.ndarray,
    heatmap: np.ndarray,
    target: int,
    mode: str = "deletion",
    steps: int = 20,
    fill: str = "blur",
    contrast: int | None = None,
) -> Curve:
    """The deletion or insertion curve of `heatmap` for model-view `pixels`: one batch of `steps` + 1 images.

    The score is the target's probability, less the `contrast` class's when one is given.
    """
    mode, steps, fill = MODE.check(mode), STEPS.check(steps), FILL.check(fill)
    if heatmap.shape != pixels.shape[:2]:
        raise ValueError(f"heatmap shape {heatmap.shape} does not match the image {pixels.shape[:2]}")
    order = ranking(heatmap)
    counts = np.round(np.linspace(0, order.size, steps + 1)).astype(int)
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    changed = rank.reshape(heatmap.shape)[None] < counts[:, None, None]  # (steps + 1, H, W)
    image, hidden = np.asarray(pixels, np.float32), hidden_value(pixels, fill)
    start, end = (image, hidden) if mode == "deletion" else (hidden, image)
    images = np.where(changed[..., None], end, start)
    p = softmax(clf.engine().logits(images)).astype(np.float64)
    probabilities = p[:, target] - (0.0 if contrast is None else p[:, contrast])
    return Curve(mode=mode, fractions=counts / order.size, probabilities=probabilities)


def random_map(shape: tuple[int, int], seed: int = 0, tiles: int = 14) -> np.ndarray:
    """Uniform noise in square tiles (`tiles` across the shorter side): the baseline a real map must beat.

    Tiles, not single pixels: hiding scattered single pixels destroys fine texture everywhere at once, so a
    per-pixel random order makes the score fall faster than any spatially coherent map, and "beats random"
    would then mean little. Tiles 16 px wide on a 224-px input are as coarse as the occlusion and superpixel maps.
    """
    height, width = shape
    side = max(1, round(min(shape) / tiles))
    coarse = np.random.default_rng(seed).random((-(-height // side), -(-width // side)))
    return np.repeat(np.repeat(coarse, side, axis=0), side, axis=1)[:height, :width].astype(np.float32)
