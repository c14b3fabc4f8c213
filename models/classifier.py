"""The `Classifier`: a torch module with its preprocessing and labels."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from whylabel.models.engine import BACKENDS, Engine, build, check_batch_size
from whylabel.models.locks import module_lock
from whylabel.models.memory import Memory


@dataclass(frozen=True)
class Prediction:
    """Top-k classes and the full probability vector for one image."""

    top: list[tuple[int, str, float]]
    probs: np.ndarray


@dataclass(eq=False)
class Classifier:
    """A classifier and exactly how it sees an image.

    `crop` is the fraction of the shorter side kept (a centred square) before the
    square is resized to `input_size`; 1.0 keeps the whole shorter side.
    """

    name: str
    module: torch.nn.Module
    labels: list[str]
    input_size: int
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    crop: float = 0.875
    resample: int = Image.Resampling.BICUBIC
    weights_path: str | None = None
    backend: str | None = None
    """Forward backend for perturbation batches: "auto" (onnxruntime if it matches torch), "onnxruntime"
    or "torch"; None reads $WHYLABEL_BACKEND, default "auto"."""
    batch_size: int | None = None
    """Images per engine batch; None times a few sizes when the engine is built and takes the fastest."""
    _mean: torch.Tensor = field(init=False, repr=False)
    _std: torch.Tensor = field(init=False, repr=False)
    _engine: Engine | None = field(init=False, repr=False, default=None)
    _engine_lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    memory: Memory = field(init=False, repr=False, default_factory=Memory)
    """The logits the engine has computed, by image: what a second target or contrast reuses (`models.memory`)."""
    gradients = True
    """Whether the model gives gradients (and hooks, and weights to re-draw); an ONNX graph does not."""

    def __post_init__(self) -> None:
        _check_preprocessing(self)
        self.module.eval()
        self._mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1)

    def input_image(self, img: Image.Image) -> np.ndarray:
        """The uint8 (H, W, 3) pixels the model sees: centre crop, then resize."""
        img = img.convert("RGB")
        left, top, side = self.crop_box(img)
        # Cut out the whole pixels the square touches first: resizing with a box alone lets the filter
        # reach pixels outside the box, which the crop is meant to drop.
        x0, y0 = math.floor(left + 1e-6), math.floor(top + 1e-6)
        x1, y1 = math.ceil(left + side - 1e-6), math.ceil(top + side - 1e-6)
        square = img.crop((x0, y0, x1, y1))
        box = (max(left - x0, 0.0), max(top - y0, 0.0), min(left + side - x0, x1 - x0), min(top + side - y0, y1 - y0))
        size = (self.input_size, self.input_size)
        if box == (0, 0, *square.size) and square.size == size:
            return np.asarray(square, dtype=np.uint8).copy()
        return np.asarray(square.resize(size, self.resample, box=box), dtype=np.uint8)

    def crop_box(self, img: Image.Image) -> tuple[float, float, float]:
        """The centred square the model sees, in the image's pixels: left, top and side."""
        width, height = img.size
        side = min(width, height) * self.crop
        return (width - side) / 2, (height - side) / 2, side

    def to_tensor(self, pixels: np.ndarray) -> torch.Tensor:
        """Normalised (N, 3, H, W) model input for model-view pixels (H, W, 3) or (N, H, W, 3)."""
        array = np.asarray(pixels)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[-1] != 3:
            raise ValueError(f"pixels must be (H, W, 3) or (N, H, W, 3), got shape {array.shape}")
        x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(0, 3, 1, 2)
        return (x / 255.0 - self._mean) / self._std

    def engine(self) -> Engine:
        """The fast forward engine for batches of perturbed inputs, built and calibrated on first use."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = build(self, self.backend, self.batch_size)
            return self._engine

    def remembered_logits(self, images: np.ndarray) -> np.ndarray:
        """The engine's logits for (N, H, W, 3) images, computed only for those this classifier has not run."""
        return self.memory.logits(images, self.engine().logits)[0]

    def logits(self, pixels: np.ndarray) -> torch.Tensor:
        """Logits for model-view pixels, without gradients."""
        with module_lock(self.module), torch.inference_mode():
            return self.module(self.to_tensor(pixels)).float()

    def predict(self, img: Image.Image, k: int = 5) -> Prediction:
        """Top-k labels with softmax probabilities for an image."""
        return self.predict_view(self.input_image(img), k)

    def predict_view(self, pixels: np.ndarray, k: int = 5) -> Prediction:
        """Top-k labels with softmax probabilities for model-view pixels (H, W, 3), such as an edited view."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        logits = self.logits(pixels)
        if not torch.isfinite(logits).all():
            raise ValueError(f"{self.name} returned NaN or infinite scores for this image; it cannot be explained")
        probs = logits.softmax(-1)[0].numpy()
        order = np.argsort(-probs, kind="stable")[: min(k, len(probs))]
        top = [(int(i), self.labels[i], float(probs[i])) for i in order]
        return Prediction(top=top, probs=probs)

    def resolve_target(self, target: int | str | None, img: Image.Image | None) -> int:
        """A class index from an index, a label or None (the top-1 class of `img`)."""
        if target is None:
            if img is None:
                raise ValueError("no image to take the top-1 class from")
            return self.predict(img, k=1).top[0][0]
        if isinstance(target, str):
            if target not in self.labels:
                raise ValueError(f"unknown label {target!r}; valid labels are {_preview(self.labels)}")
            return self.labels.index(target)
        if isinstance(target, bool) or not isinstance(target, int | np.integer):
            raise ValueError(
                f"target must be a class index from 0 to {len(self.labels) - 1}, a label or None; got {target!r}"
            )
        if not 0 <= int(target) < len(self.labels):
            raise ValueError(f"target {target} is outside the labels: valid indices are 0..{len(self.labels) - 1}")
        return int(target)


def from_module(
    module: torch.nn.Module,
    labels: Sequence[str],
    input_size: int,
    mean: Sequence[float] = (0.485, 0.456, 0.406),
    std: Sequence[float] = (0.229, 0.224, 0.225),
    crop: float = 0.875,
    name: str = "custom",
    backend: str | None = None,
    batch_size: int | None = None,
) -> Classifier:
    """Wrap any torch module that maps (N, 3, input_size, input_size) to logits."""
    if not isinstance(module, torch.nn.Module):
        raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    return Classifier(
        name=name,
        module=module,
        labels=[str(label) for label in labels],
        input_size=input_size,
        mean=_triple(mean, "mean"),
        std=_triple(std, "std"),
        crop=crop,
        backend=backend,
        batch_size=batch_size,
    )


def _triple(values: Sequence[float], what: str) -> tuple[float, float, float]:
    if len(values) != 3:
        raise ValueError(f"{what} needs three values (R, G, B), got {len(values)}")
    a, b, c = (float(v) for v in values)
    return (a, b, c)


def _check_preprocessing(clf: Classifier) -> None:
    if isinstance(clf.input_size, bool) or not isinstance(clf.input_size, int) or clf.input_size < 1:
        raise ValueError(f"input_size must be a positive int, got {clf.input_size!r}")
    if not 0 < clf.crop <= 1:
        raise ValueError(f"crop must be in (0, 1], got {clf.crop}")
    if any(s <= 0 for s in clf.std):
        raise ValueError(f"std values must be positive, got {clf.std}")
    if not clf.labels:
        raise ValueError("labels must not be empty")
    if clf.backend is not None and clf.backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {clf.backend!r}")
    if clf.batch_size is not None:
        check_batch_size(clf.batch_size)


def _preview(labels: list[str], n: int = 8) -> str:
    shown = ", ".join(repr(label) for label in labels[:n])
    return f"{shown}, ... ({len(labels)} in all)" if len(labels) > n else shown
