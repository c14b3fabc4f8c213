"""Named models: `available()` lists them, `load(name)` builds one (cached, so loaded once)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial

from whylabel.models.classifier import Classifier
from whylabel.models.efficientnet import INPUT_SIZES, load_efficientnet
from whylabel.models.marked import load_marked
from whylabel.models.mnist import load_mnist

LOADERS: dict[str, Callable[[], Classifier]] = {
    **{name: partial(load_efficientnet, name) for name in INPUT_SIZES},
    "mnist_cnn": load_mnist,
    "mnist_marked": load_marked,  # the audit's teaching demo: trained on first load (seconds)
}
DEFAULT_IMAGES = {"mnist_cnn": "mnist digit 3", "mnist_marked": "mnist digit 7"}


def available() -> list[str]:
    """Model names, the default (`efficientnet_lite0`) first."""
    return list(LOADERS)


@cache
def load(name: str) -> Classifier:
    """The named classifier; loaded once per process and shared (use it read-only)."""
    if name not in LOADERS:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(LOADERS)}")
    return LOADERS[name]()


def default_image_for(name: str) -> str:
    """The gallery image a model opens with."""
    return DEFAULT_IMAGES.get(name, "chelsea (cat)")
