"""Batched forward passes for perturbation methods, through the model's fast engine, with progress counted."""

from __future__ import annotations

import numpy as np
import torch

from explainers.base import Job


class Counter:
    """Counts evaluated images against an expected total and reports the fraction done."""

    def __init__(self, job: Job, total: int) -> None:
        self.job, self.total, self.done = job, max(total, 1), 0

    def add(self, n: int) -> None:
        self.done += n
        self.job.progress(min(self.done / self.total, 1.0))


def probabilities(job: Job, images: np.ndarray, counter: Counter) -> np.ndarray:
    """Softmax probabilities (N, classes) for model-view pixel arrays (N, H, W, 3), in the engine's batches."""
    out = softmax(job.clf.engine().logits(np.asarray(images))).astype(np.float64)
    counter.add(len(out))
    return out


def logits(job: Job, batch: torch.Tensor, counter: Counter) -> torch.Tensor:
    """Logits for a (N, H, W, 3) batch of pixel values, as a tensor: a `forward_func` for Captum.

    Captum builds each batch with torch ops, so this uses the engine's quiet session (see `onnx_run`)."""
    counter.add(len(batch))
    return torch.from_numpy(job.clf.engine().logits(batch.detach().numpy(), quiet=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
