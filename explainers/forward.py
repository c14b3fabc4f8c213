"""Batched forward passes for perturbation methods, through the model's fast engine, with progress counted."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from whylabel.explainers.base import Job

IMAGES_PER_CALL = 16
"""Images a perturbation method hands over per call (Captum's occlusion windows, SHAP's masks). Fixed, not the
engine's calibrated batch size, which is timed anew in each process: occlusion sums each call's score drops
in float32, and SHAP's Partition explainer expands its tree a call at a time, so the grouping would change
the maps. The engine splits each call into its own batches."""


class Counter:
    """Counts evaluated images against an expected total and reports the fraction done.

    With `remember`, it also keeps each image's scores by its content, so an image a run has already shown
    the model is not shown again: the stages of a progressive map share their evaluations (SHAP's search at a
    larger budget repeats the smaller one's first; occlusion's coarse preview is a subset of the fine sweep's
    windows). Only images the model really saw count as done.
    """

    def __init__(self, job: Job, total: int, remember: bool = False) -> None:
        self.job, self.total, self.done = job, max(total, 1), 0
        self.memory: dict[bytes, np.ndarray] | None = {} if remember else None

    def add(self, n: int) -> None:
        self.done += n
        self.job.progress(min(self.done / self.total, 1.0))


def probabilities(job: Job, images: np.ndarray, counter: Counter) -> np.ndarray:
    """Softmax probabilities (N, classes) for model-view pixel arrays (N, H, W, 3), in the engine's batches.

    With a contrast class, each column less the contrast's: column `target` is p(target) - p(contrast).
    """
    return counted(
        counter, np.asarray(images), lambda x: job.versus(softmax(job.clf.engine().logits(x)).astype(np.float64))
    )


def logits(job: Job, batch: torch.Tensor, counter: Counter) -> torch.Tensor:
    """Logits for a (N, H, W, 3) batch of pixel values, as a tensor: a `forward_func` for Captum.

    With a contrast class, each column less the contrast's, as in `Job.model`.
    """
    scores = counted(counter, batch.detach().numpy(), lambda x: job.versus(job.clf.engine().logits(x)))
    return torch.from_numpy(scores)


def counted(counter: Counter, images: np.ndarray, scores: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`scores(images)`, counted; with the counter's memory, computed only for images it has not seen.

    Images are known by a SHA-1 digest of their bytes (about 0.3 ms for a 224 x 224 image, a tenth of one forward
    pass here), so two images share scores only when every value is the same.
    """
    if counter.memory is None:
        out = scores(images)
        counter.add(len(out))
        return out
    keys = [hashlib.sha1(np.ascontiguousarray(image).data).digest() for image in images]
    new: dict[bytes, int] = {}  # each unseen image's first row in this batch
    for i, key in enumerate(keys):
        if key not in counter.memory:
            new.setdefault(key, i)
    if new:
        rows = list(new.values())
        counter.memory.update(zip(new, scores(images[rows]), strict=True))
        counter.add(len(rows))
    return np.stack([counter.memory[key] for key in keys])


@contextmanager
def single_torch_thread() -> Iterator[None]:
    """Run this thread's torch ops on one thread, for code that does small torch work between engine runs.

    On two cores, torch's worker threads and onnxruntime's busy-waiting ones slow each other down many
    times over. With OpenMP (the CPU wheels), the thread count is per calling thread, so other sessions'
    threads keep theirs; were it global, they would only run slower for a moment, not differently.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
