"""What hidden pixels become when a method or a metric removes them."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from explainers.base import Param

FILLS = ("blur", "grey", "black")
FILL = Param("fill", "blur", "What hidden pixels become.", choices=FILLS)


def hidden_value(image: np.ndarray, fill: str) -> np.ndarray:
    """A float32 image to put where pixels are hidden: a heavily blurred copy (sigma = side / 8), grey or black.

    The blur keeps each region's average colour but removes its detail, so a hidden region does not look
    like an unusual grey square to the model.
    """
    fill = FILL.check(fill)
    image = np.asarray(image, dtype=np.float32)
    if fill == "blur":
        sigma = min(image.shape[:2]) / 8
        return np.stack([gaussian_filter(image[..., c], sigma, mode="nearest") for c in range(3)], axis=-1)
    return np.full_like(image, 128.0 if fill == "grey" else 0.0)
