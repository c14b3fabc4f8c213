"""What a map cannot show, said on the map: the measurements behind `Attribution.warnings` and their wording.

A perturbation method learns about a region only by hiding it; where its fill leaves a region almost as it was
(a near-flat superpixel replaced by its own mean colour, a flat area blurred, a grey wall greyed), the score
cannot move, so evidence there is invisible to the map however the model uses it. Other warnings say when a
map's own numbers disown it. The thresholds, stated in docs/known-answers.md:
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

WEAK_CHANGE = 8.0
"""Mean absolute change per channel (of 255) below which a fill leaves a region as it was."""
WEAK_AREA = 0.01
"""Share of the image such regions must cover for a warning: about a 22-pixel square at 224 x 224."""
WINDOW = 8
"""Without segments, a pixel's change is averaged over this square around it (a region, not a lone pixel)."""
LOW_R2 = 0.25
"""A LIME surrogate whose weighted R² on its samples is below this fits the model badly near the image."""
LARGE_GAP = 0.1
"""An Integrated Gradients map whose sum misses the score change by more than this share of it."""

WHERE = {
    "mean": "near-flat superpixels, replaced by their own mean colour",
    "blur": "flat areas, which blurring leaves as they are",
    "grey": "areas already close to mid-grey",
    "black": "areas already close to black",
}


def weak_share(pixels: np.ndarray, hidden: np.ndarray, segments: np.ndarray | None = None) -> float:
    """The share of the image in regions that hiding with `hidden` changes by less than WEAK_CHANGE.

    Regions are the superpixels when `segments` is given (LIME hides whole superpixels), else WINDOW-pixel
    neighbourhoods (SHAP's rectangles and occlusion's squares hide areas, not single pixels).
    """
    change = np.abs(np.asarray(pixels, np.float32) - np.asarray(hidden, np.float32)).mean(axis=-1)
    if segments is None:
        local = uniform_filter(change, size=WINDOW, mode="nearest")
    else:
        local = (np.bincount(segments.ravel(), change.ravel()) / np.maximum(np.bincount(segments.ravel()), 1))[segments]
    return float((local < WEAK_CHANGE).mean())


def weak_fill(share: float | None, fill: str, role: str = "fill") -> list[str]:
    """The warning for a fill (or a baseline: `role`) that leaves `share` of the image as it was, if that is
    WEAK_AREA or more."""
    if share is None or share < WEAK_AREA:
        return []
    return [
        f"Blind spot: the {fill} {role} changes {share:.0%} of the image by less than {WEAK_CHANGE:.0f}/255 "
        f"({WHERE[fill]}); evidence there cannot move the score, so this map cannot show it. Try another {role}."
    ]


def zero_map(heatmap: np.ndarray) -> list[str]:
    if np.any(heatmap):
        return []
    return [
        "The map is zero everywhere: the method found nothing that moves the score (the score may not depend "
        "on this image here, or its gradient vanishes). It says nothing about where the evidence lies."
    ]


def poor_fit(r2: float | None) -> list[str]:
    if r2 is None or r2 >= LOW_R2:
        return []
    return [
        f"Poor fit: LIME's linear surrogate explains only R² = {r2:.2f} of the model's scores on its samples "
        f"(warned below {LOW_R2}); the map is a weak summary. More samples or fewer superpixels may help."
    ]


def unsettled(overlap: float | None, threshold: float, watch: str, stopped_early: bool) -> list[str]:
    """A map whose own top 10% still moved when a rule watching other maps stopped early (LIME's `watch`)."""
    if overlap is None or overlap >= threshold or not stopped_early:
        return []
    whose = "the top class's map" if watch == "top class" else "the maps it watches"
    advice = " Set watch to 'top 5' to stop only when this map has settled too." if watch == "top class" else ""
    return [
        f"Not settled: LIME stopped adding samples when {whose} settled, and this map's own top 10% still moved "
        f"(only {overlap:.0%} in common with the estimate before; settled is {threshold:.0%}).{advice}"
    ]


def completeness_gap(relative_gap: float | None) -> list[str]:
    if relative_gap is None or relative_gap <= LARGE_GAP:
        return []
    return [
        f"Incomplete: the map's values miss the score change by {relative_gap:.0%} of it (warned above "
        f"{LARGE_GAP:.0%}); the path integral is poorly approximated. More steps narrow the gap."
    ]
