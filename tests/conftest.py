"""Shared fixtures for the `models` and `explainers` tests: tiny torch models, synthetic images, real models."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from whylabel import models
from whylabel.models import Classifier

# The benchmark is not part of the package (the wheel leaves it out): it runs from a checkout, as
# `python -m bench.run` does from the repository root, so the tests of it and the browser tests that reuse its
# helpers import it from there. Appended, so the installed `whylabel` comes first; ruff bans the rooms' old names.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.append(ROOT)

# The engine cache of this run only, shared with the servers and CLIs the tests start: tests neither read nor
# fill the user's ~/.cache/whylabel. Tests of the cache itself point it at their own folders.
os.environ["WHYLABEL_CACHE"] = tempfile.mkdtemp(prefix="whylabel-test-cache-")
# No result store (`store.results`): a test that computes a map twice, or in a fresh process, must compute it,
# not read the first back. Tests of the store give it a folder of their own.
os.environ["WHYLABEL_RESULTS"] = "off"

LABELS = ("cat", "dog", "fish")


class TinyConv(torch.nn.Module):
    """A tiny CNN for any input size: conv, ReLU, 2x2 average pool, linear."""

    def __init__(self, n_classes: int = len(LABELS), seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(2)
        self.head = torch.nn.Linear(16, n_classes)
        self.act = torch.nn.ReLU()  # a module, once per pass: what guided backprop needs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.act(self.conv(x))).flatten(1))


class Linear(torch.nn.Module):
    """logits = W @ flatten(x) (+ b): additive in the pixels, its input gradient is W."""

    def __init__(self, size: int, n_classes: int = len(LABELS), bias: bool = True, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc = torch.nn.Linear(3 * size * size, n_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))

    def weights(self, target: int, size: int) -> np.ndarray:
        """The (3, size, size) weights of one class, in the layout of the model input."""
        return self.fc.weight[target].detach().numpy().reshape(3, size, size).astype(np.float64)


class Flaky(torch.nn.Module):
    """Wraps a module and raises RuntimeError on its `fail_on`-th forward call (1-based; 0 never)."""

    def __init__(self, inner: torch.nn.Module, fail_on: int) -> None:
        super().__init__()
        self.inner, self.fail_on, self.calls = inner, fail_on, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError(f"boom on call {self.calls}")
        return self.inner(x)


class Counting(torch.nn.Module):
    """Wraps a module and counts the images it is shown."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.images = inner, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images += len(x)
        return self.inner(x)


class TopLeftBrightness(torch.nn.Module):
    """The logit of class 0 is the mean brightness of the top-left quadrant; the other classes are constant."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        brightness = x[:, :, : height // 2, : width // 2].mean(dim=(1, 2, 3))
        zero = torch.zeros_like(brightness)
        return torch.stack([10 * (brightness - 0.5), zero, zero], dim=-1)


def quadrant_scene(size: int = 32) -> tuple[Image.Image, np.ndarray]:
    """Bright texture in the top-left quadrant (the one the model uses) and a bright decoy in the bottom-right."""
    rng = np.random.default_rng(0)
    half = size // 2
    pixels = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    pixels[:half, :half] = rng.integers(190, 256, (half, half, 3))
    pixels[:half, :half, 2] = 40  # yellowish
    pixels[half:, half:] = rng.integers(190, 256, (half, half, 3))
    pixels[half:, half:, 0] = 40  # cyan decoy, just as bright
    inside = np.zeros((size, size), dtype=bool)
    inside[:half, :half] = True
    return Image.fromarray(pixels), inside


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    """A random RGB image."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture
def tiny_clf() -> Classifier:
    """A 16-px, 3-class CNN that sees the whole image (crop=1.0)."""
    return models.from_module(TinyConv(), LABELS, 16, crop=1.0, name="tiny")


@pytest.fixture
def noise_image():
    """Factory: `noise_image(width, height, seed=0)` -> random RGB PIL image."""
    return noise


@pytest.fixture
def tiny():
    """The tiny-model classes, for tests that build their own classifier."""

    class Builders:
        TinyConv = TinyConv
        Linear = Linear
        Flaky = Flaky
        Counting = Counting
        TopLeftBrightness = TopLeftBrightness
        quadrant_scene = staticmethod(quadrant_scene)
        labels = LABELS

    return Builders


@pytest.fixture(scope="session")
def lite0() -> Classifier:
    """The real efficientnet_lite0 (loaded once per session; use read-only)."""
    return models.load("efficientnet_lite0")


@pytest.fixture(autouse=True)
def same_torch_threads():
    """Each test starts with the process's thread count: the batch runner sets it (`--threads`), and gradient
    maps depend on it bit for bit, so a test that left it at 1 would change later tests' maps."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
