"""What hidden pixels become when a method or a metric removes them."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

FILLS = ("blur", "grey", "black")


def hidden_value(image: np.ndarray, fill: str) -> np.ndarray:
    """A float32 image to put where pixels are hidden: a heavily blurred copy (sigma = side / 8), grey or black.

    The blur keeps each region's average colour but removes its detail, so a hidden region does not look
    like an unusual grey square to the model.
    """
    image = np.asarray(image, dtype=np.float32)
    if fill == "blur":
        sigma = min(image.shape[:2]) / 8
        return np.stack([gaussian_filter(image[..., c], sigma, mode="nearest") for c in range(3)], axis=-1)
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}; got {fill!r}")
    return np.full_like(image, 128.0 if fill == "grey" else 0.0)
