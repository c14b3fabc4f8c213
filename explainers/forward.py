"""Batched forward passes for perturbation methods, through the model's fast engine, with progress counted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from whylabel.explainers.base import Job
from whylabel.models.memory import digest

IMAGES_PER_CALL = 16
"""Images a perturbation method hands over per call (Captum's occlusion windows, SHAP's masks). Fixed, not the
engine's calibrated batch size, which is timed anew in each process: occlusion sums each call's score drops
in float32, and SHAP's Partition explainer expands its tree a call at a time, so the grouping would change
the maps. The engine splits each call into its own batches."""


class Counter:
    """Counts the images a request scores against an expected total, reports the fraction done, and keeps their logits.

    Each image a request needs is counted once, however often it is asked for: the stages of a progressive map
    share their evaluations (SHAP's search at a larger budget repeats the smaller one's first; occlusion's coarse
    preview is a subset of the fine sweep's windows). Its logits come from the classifier's memory when an
    earlier request ran it (another target or contrast: `reused`), from the engine otherwise.
    """

    def __init__(self, job: Job, total: int) -> None:
        self.job, self.total, self.done, self.reused = job, max(total, 1), 0, 0
        self.seen: dict[bytes, np.ndarray] = {}

    def reuse(self) -> dict[str, int]:
        """The extras that say how much was reused: images from earlier maps, and forward passes run."""
        return {"reused": self.reused, "ran": self.done - self.reused}

    def add(self, n: int, reused: int = 0) -> None:
        self.done += n
        self.reused += reused
        self.job.progress(min(self.done / self.total, 1.0))


def probabilities(job: Job, images: np.ndarray, counter: Counter) -> np.ndarray:
    """Softmax probabilities (N, classes) for model-view pixel arrays (N, H, W, 3), in the engine's batches.

    With a contrast class, each column less the contrast's: column `target` is p(target) - p(contrast).
    """
    return job.versus(raw_probabilities(job, images, counter))


def raw_logits(job: Job, images: np.ndarray, counter: Counter) -> np.ndarray:
    """The logits (N, classes) of model-view pixel arrays (N, H, W, 3), every class and no contrast, counted."""
    return counted(counter, np.asarray(images), lambda x: x)


def raw_probabilities(job: Job, images: np.ndarray, counter: Counter) -> np.ndarray:
    """Softmax probabilities (N, classes) with no contrast taken off: `probabilities` is `job.versus` of these."""
    return counted(counter, np.asarray(images), lambda x: softmax(x).astype(np.float64))


def logits(job: Job, batch: torch.Tensor, counter: Counter) -> torch.Tensor:
    """Logits for a (N, H, W, 3) batch of pixel values, as a tensor: a `forward_func` for Captum.

    With a contrast class, each column less the contrast's, as in `Job.model`.
    """
    return torch.from_numpy(counted(counter, batch.detach().numpy(), job.versus))


def counted(counter: Counter, images: np.ndarray, scores: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`scores` of the images' logits, each image counted and run at most once (see `Counter`).

    Images are known by a digest of their values (`models.memory.digest`), so two images share logits only
    when every value is the same.
    """
    keys = [digest(image) for image in images]
    unseen: dict[bytes, int] = {}  # each image new to this request, by its first row in this batch
    for i, key in enumerate(keys):
        if key not in counter.seen:
            unseen.setdefault(key, i)
    if unseen:
        clf = counter.job.clf
        rows, ran = clf.memory.rows(list(unseen), images[list(unseen.values())], clf.engine().logits)
        counter.seen.update(zip(unseen, rows, strict=True))
        counter.add(len(unseen), reused=len(unseen) - ran)
    return scores(np.stack([counter.seen[key] for key in keys]))


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
