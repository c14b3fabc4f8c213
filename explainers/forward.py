"""Batched forward passes for perturbation methods, with progress counted in images."""

from __future__ import annotations

import numpy as np
import torch

from explainers.base import Job

BATCH_SIZE = 8
"""Images per forward pass: small batches run fastest on a CPU for these models."""


class Counter:
    """Counts evaluated images against an expected total and reports the fraction done."""

    def __init__(self, job: Job, total: int) -> None:
        self.job, self.total, self.done = job, max(total, 1), 0

    def add(self, n: int) -> None:
        self.done += n
        self.job.progress(min(self.done / self.total, 1.0))


def probabilities(job: Job, images: np.ndarray, counter: Counter) -> np.ndarray:
    """Softmax probabilities (N, classes) for model-view pixel arrays (N, H, W, 3), in small batches."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), BATCH_SIZE):
            chunk = images[start : start + BATCH_SIZE]
            out.append(job.clf.module(job.clf.to_tensor(chunk)).float().softmax(-1).numpy())
            counter.add(len(chunk))
    return np.concatenate(out).astype(np.float64)
