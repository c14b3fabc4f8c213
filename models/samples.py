"""A gallery of real photos that ship inside installed packages, plus held-out MNIST digits."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
from PIL import Image

from whylabel.models.mnist import digits, split


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def _sklearn(index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_images

        return load_sample_images().images[index]

    return load


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as photo:
        return np.asarray(photo.convert("RGB"))


def _digit(digit: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        images, labels = digits()
        test = split()[1]
        return images[test[labels[test] == digit][0]]

    return load


PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "chelsea (cat)": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
    "astronaut": _skimage("astronaut"),
    "rocket": _skimage("rocket"),
    "motorcycle": lambda: _skimage("stereo_motorcycle")()[0],
    "china (temple)": _sklearn(0),
    "flower": _sklearn(1),
    "grace hopper": _grace_hopper,
}
DIGITS = {f"mnist digit {d}": _digit(d) for d in range(10)}
GALLERY = {**PHOTOS, **DIGITS}


def samples() -> list[str]:
    """Names of the gallery images."""
    return list(GALLERY)


@cache
def _cached(name: str) -> Image.Image:
    return Image.fromarray(np.asarray(GALLERY[name](), dtype=np.uint8)).convert("RGB")


def sample_image(name: str) -> Image.Image:
    """A gallery image as an RGB PIL image (a fresh copy each call)."""
    if name not in GALLERY:
        raise ValueError(f"unknown sample {name!r}; samples: {', '.join(GALLERY)}")
    return _cached(name).copy()
