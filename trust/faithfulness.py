"""Deletion and insertion curves (Petsiuk et al., 2018, RISE): does the map rank the pixels the model uses?

Deletion hides the pixels in order of attribution, most positive first, and records the target's
probability after each of `steps` equal steps: a faithful map makes it fall fast (low area under the
curve). Insertion starts from the fully hidden image and reveals pixels in the same order: a faithful map
makes it rise fast (high area). Ties (flat tiles in occlusion, LIME or SHAP maps) are broken by a fixed
random order rather than raster order, which would favour the top rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from whylabel.explainers.base import Attribution, Param, shown
from whylabel.explainers.explain import Request
from whylabel.explainers.forward import softmax
from whylabel.explainers.hide import FILL, hidden_image, hide
from whylabel.models import Classifier

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
    images = hide(pixels, ~changed if mode == "deletion" else changed, hidden_image(pixels, fill))
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


def evaluate(att: Attribution, steps: int = 20, fill: str = "blur") -> dict[str, Any]:
    """Deletion and insertion AUCs of `att` and of a random map (seeded like `att`), with the curves.

    The curves follow the target's probability, less the contrast class's for a contrastive map.
    """
    steps, fill = STEPS.check(steps), FILL.check(fill)
    request = check_attribution(att)
    clf = request.clf
    pixels = clf.input_image(request.image)
    maps = {"": att.heatmap, "random_": random_map(pixels.shape[:2], seed=request.seed)}
    versus = "" if att.contrast is None else f" - p({att.contrast_label})"
    out: dict[str, Any] = {"curves": {}, "score": f"p({att.label}){versus}"}
    for prefix, heatmap in maps.items():
        for mode in MODES:
            c = curve(clf, pixels, heatmap, att.target, mode=mode, steps=steps, fill=fill, contrast=att.contrast)
            out[f"{prefix}{mode}_auc"] = c.auc
            out["curves"][f"{prefix}{mode}"] = c
    return out


def check_attribution(att: Any) -> Request:
    """The request behind `att`; ValueError unless it is an Attribution that `explainers.explain` made."""
    if not isinstance(att, Attribution) or not isinstance(att.request, Request):
        raise ValueError(f"att must be an Attribution from explainers.explain; got {shown(att)}")
    last = len(att.request.clf.labels) - 1
    for what, index in (("target", att.target), ("contrast", att.contrast)):
        if index is not None and not 0 <= index <= last:
            raise ValueError(f"the map's {what} {index} is outside this model's labels: valid indices are 0..{last}")
    return att.request
