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
    p = softmax(clf.remembered_logits(images)).astype(np.float64)
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


RANDOM_MAPS = 8
"""Random maps in a baseline: enough that one lucky or unlucky map does not decide the verdict (one did, on
the cat photo, making saliency and occlusion look worse than random); 16 curves of `steps` + 1 images."""
VERDICTS = ("better than every random map", "within the random maps' range", "worse than every random map")


@dataclass(frozen=True)
class RandomBaseline:
    """Deletion and insertion curves of several random maps for one image and target: what a map must beat.

    It depends on the model, the image, the target (and contrast), the steps and the fill, not on the method or
    its seed, so one baseline serves every panel (the page caches it beside the maps).
    """

    curves: dict[str, tuple[Curve, ...]]
    target: int
    contrast: int | None
    steps: int
    fill: str

    def check_fits(self, att: Attribution, steps: int, fill: str) -> None:
        """ValueError unless this baseline was made for the map's target and contrast, steps and fill."""
        made = (self.target, self.contrast, self.steps, self.fill)
        if made != (att.target, att.contrast, steps, fill):
            raise ValueError(f"the random baseline is for (target, contrast, steps, fill) {made}, not this map's")

    def aucs(self, mode: str) -> np.ndarray:
        return np.array([c.auc for c in self.curves[mode]])

    def range(self, mode: str) -> tuple[float, float]:
        aucs = self.aucs(mode)
        return float(aucs.min()), float(aucs.max())

    def mean_curve(self, mode: str) -> Curve:
        curves = self.curves[mode]
        return Curve(mode, curves[0].fractions, np.mean([c.probabilities for c in curves], axis=0))

    def verdict(self, mode: str, auc: float) -> str:
        """Better than every random map, within their range, or worse than every one (lower deletion is better)."""
        low, high = self.range(mode)
        better, worse = (auc < low, auc > high) if mode == "deletion" else (auc > high, auc < low)
        return VERDICTS[0] if better else VERDICTS[2] if worse else VERDICTS[1]


def random_baseline(
    clf: Classifier,
    pixels: np.ndarray,
    target: int,
    contrast: int | None = None,
    steps: int = 20,
    fill: str = "blur",
    maps: int = RANDOM_MAPS,
) -> RandomBaseline:
    """The curves of `maps` random maps (seeds 0..maps-1, fixed: the baseline is the same for every panel)."""
    steps, fill = STEPS.check(steps), FILL.check(fill)
    randoms = [random_map(pixels.shape[:2], seed=seed) for seed in range(maps)]
    curves = {
        mode: tuple(curve(clf, pixels, r, target, mode, steps, fill, contrast) for r in randoms) for mode in MODES
    }
    return RandomBaseline(curves, target, contrast, steps, fill)


def baseline_for(att: Attribution, steps: int = 20, fill: str = "blur") -> RandomBaseline:
    """The random baseline for the image, target and contrast of `att`."""
    request = check_attribution(att)
    pixels = request.clf.input_image(request.image)
    return random_baseline(request.clf, pixels, att.target, att.contrast, steps, fill)


def evaluate(
    att: Attribution, steps: int = 20, fill: str = "blur", baseline: RandomBaseline | None = None
) -> dict[str, Any]:
    """Deletion and insertion AUCs of `att` beside those of several random maps, with verdicts and curves.

    `baseline` (from `baseline_for`, computed once per image and target) is shared by every map of the image;
    without it, one is computed. Per mode: `{mode}_auc`, `random_{mode}_auc` (the random maps' mean),
    `random_{mode}_range` (their lowest and highest), and `verdicts[mode]`. The curves follow the target's
    probability, less the contrast class's for a contrastive map.
    """
    steps, fill = STEPS.check(steps), FILL.check(fill)
    request = check_attribution(att)
    clf = request.clf
    pixels = clf.input_image(request.image)
    baseline = baseline or random_baseline(clf, pixels, att.target, att.contrast, steps, fill)
    baseline.check_fits(att, steps, fill)
    versus = "" if att.contrast is None else f" - p({att.contrast_label})"
    out: dict[str, Any] = {"curves": {}, "score": f"p({att.label}){versus}", "verdicts": {}, "random_maps": 0}
    for mode in MODES:
        c = curve(clf, pixels, att.heatmap, att.target, mode=mode, steps=steps, fill=fill, contrast=att.contrast)
        out[f"{mode}_auc"] = c.auc
        out[f"random_{mode}_auc"] = float(baseline.aucs(mode).mean())
        out[f"random_{mode}_range"] = baseline.range(mode)
        out["verdicts"][mode] = baseline.verdict(mode, c.auc)
        out["curves"][mode] = c
        out["curves"][f"random_{mode}"] = baseline.mean_curve(mode)
        out["curves"][f"random_{mode}_all"] = baseline.curves[mode]
        out["random_maps"] = len(baseline.curves[mode])
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
