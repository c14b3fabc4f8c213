"""Occlusion (Zeiler & Fergus, 2014) through Captum's `Occlusion`: slide a grey square, record the score drop."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from captum.attr import Occlusion as CaptumOcclusion

from whylabel.explainers import blindspots
from whylabel.explainers.base import Explainer, Job, Param
from whylabel.explainers.forward import IMAGES_PER_CALL, Counter, logits, single_torch_thread
from whylabel.explainers.progressive import Estimate
from whylabel.explainers.registry import register

GREY = 128
PREVIEW_ABOVE = 400
"""Passes from which a sweep shows a coarse preview first (400: about 2 s on EfficientNet-Lite0 here)."""


@register
class Occlusion(Explainer):
    name = "occlusion"
    runs_module = False
    title = "Occlusion"
    paper = "Zeiler & Fergus (2014), Visualizing and Understanding Convolutional Networks"
    paper_url = "https://arxiv.org/abs/1311.2901"
    how_to_read = (
        "A grey square is slid over the image; each pixel shows the average drop in the target's logit "
        "when a square covering it is greyed out. Red: hiding it lowers the score (evidence for the class); "
        "blue: hiding it raises the score. Resolution is limited by the window and stride."
    )
    params = (
        Param(
            "window", 16, "Side of the grey square, in model-input pixels.", low=1, high=512, at_most_input_size=True
        ),
        Param(
            "stride",
            16,
            "Step between square positions, in pixels (at most the window).",
            low=1,
            high=512,
            at_most_input_size=True,
            at_most="window",
        ),
    )

    @classmethod
    def warnings(cls, heatmap: np.ndarray, extras: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
        return blindspots.weak_fill(extras.get("weak_fill_share"), "grey")

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        window, stride = job.params["window"], job.params["stride"]
        height, width = job.pixels.shape[:2]
        counter = Counter(job, evaluations(width, height, window, stride) + 1)
        heatmap, evaluated = self.sweep(job, window, stride, counter)
        return heatmap, {"evaluations": evaluated, **counter.reuse(), "weak_fill_share": weak_share(job)}

    def estimates(self, job: Job) -> Iterator[Estimate]:
        """A coarse preview (the stride doubled), then the map asked for, sharing every window they have in common.

        The preview's windows are a subset of the fine sweep's when the window is at least twice the stride
        (window 16, stride 8: 197 of the 730 passes), and the counter keeps their scores, so the preview
        costs no pass the map asked for would not make anyway. Only for sweeps of PREVIEW_ABOVE passes or
        more: a smaller one is its own first estimate, in about a second.
        """
        window, stride = job.params["window"], job.params["stride"]
        size = min(job.pixels.shape[:2])
        coarse = (min(max(window, 2 * stride), size), min(2 * stride, size))
        height, width = job.pixels.shape[:2]
        fine_passes = evaluations(width, height, window, stride) + 1
        coarse_passes = evaluations(width, height, *coarse) + 1
        if fine_passes < PREVIEW_ABOVE or coarse == (window, stride) or coarse_passes * 3 > fine_passes:
            heatmap, extras = self.compute(job)
            yield Estimate(heatmap, extras, extras["evaluations"], extras["evaluations"], final=True)
            return
        shared = coarse[0] == window  # same window: the preview's windows are among the fine sweep's
        counter = Counter(job, fine_passes if shared else coarse_passes + fine_passes)
        weak = weak_share(job)
        preview, done = self.sweep(job, *coarse, counter)
        extras = {"evaluations": done, **counter.reuse(), "weak_fill_share": weak}
        yield Estimate(preview, extras, done, counter.total, preview=True)
        heatmap, _ = self.sweep(job, window, stride, counter)
        extras = {"evaluations": counter.done, **counter.reuse(), "weak_fill_share": weak}
        yield Estimate(heatmap, extras, counter.done, counter.total, final=True)

    def sweep(self, job: Job, window: int, stride: int, counter: Counter) -> tuple[np.ndarray, int]:
        """Captum's occlusion map for one window and stride, and the passes it took."""
        x = torch.from_numpy(job.pixels.astype(np.float32))[None]  # (1, H, W, 3) pixels: the engine normalises
        before = counter.done
        with single_torch_thread():
            attribution = CaptumOcclusion(lambda batch: logits(job, batch, counter)).attribute(
                x,
                target=job.target,
                sliding_window_shapes=(window, window, 3),
                strides=(stride, stride, 3),
                baselines=float(GREY),
                perturbations_per_eval=IMAGES_PER_CALL,
            )
        return attribution[0].mean(dim=-1).numpy(), counter.done - before


def weak_share(job: Job) -> float:
    """The share of the image the grey square leaves almost as it was (see `blindspots`)."""
    return blindspots.weak_share(job.pixels, np.full(job.pixels.shape, GREY, np.float32))


def evaluations(width: int, height: int, window: int, stride: int) -> int:
    """Positions of the square: Captum places it every `stride` pixels, the last one overhanging the edge if need be."""
    return (1 + -(-(width - window) // stride)) * (1 + -(-(height - window) // stride))
