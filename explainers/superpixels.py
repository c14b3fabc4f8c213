"""Superpixels from scikit-image, labelled 0..n-1 as LIME and SHAP expect."""

from __future__ import annotations

import numpy as np
from skimage.segmentation import felzenszwalb, quickshift, slic

ALGORITHMS = ("slic", "quickshift", "felzenszwalb")


def segment(pixels: np.ndarray, algorithm: str, n_segments: int, seed: int) -> np.ndarray:
    """An int (H, W) map of superpixel ids 0..n-1 for uint8 (H, W, 3) pixels.

    `n_segments` steers SLIC directly; quickshift and Felzenszwalb get a scale derived from it,
    so the three give superpixels of similar size.
    """
    size = min(pixels.shape[:2])
    side = max(size / max(n_segments, 1) ** 0.5, 1.0)
    if algorithm == "slic":
        labels = slic(pixels, n_segments=n_segments, compactness=10, sigma=1, start_label=0)
    elif algorithm == "quickshift":
        kernel = max(side / 8, 1.0)
        labels = quickshift(pixels, kernel_size=kernel, max_dist=kernel * 4, ratio=0.5, rng=seed)
    elif algorithm == "felzenszwalb":
        labels = felzenszwalb(pixels, scale=side * 3, sigma=0.5, min_size=max(int(side * side / 3), 1))
    else:
        raise ValueError(f"segmentation must be one of {', '.join(ALGORITHMS)}; got {algorithm!r}")
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)
