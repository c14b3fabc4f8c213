"""Occlusion (Zeiler & Fergus, 2014) through Captum's `Occlusion`: slide a grey square, record the score drop."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from captum.attr import Occlusion as CaptumOcclusion

from whylabel.explainers.base import Explainer, Job, Param
from whylabel.explainers.forward import IMAGES_PER_CALL, Counter, logits, single_torch_thread
from whylabel.explainers.registry import register

GREY = 128


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
            "window", 32, "Side of the grey square, in model-input pixels.", low=1, high=512, at_most_input_size=True
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

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        window, stride = job.params["window"], job.params["stride"]
        x = torch.from_numpy(job.pixels.astype(np.float32))[None]  # (1, H, W, 3) pixels: the engine normalises
        counter = Counter(job, evaluations(x.shape[2], x.shape[1], window, stride) + 1)
        with single_torch_thread():
            attribution = CaptumOcclusion(lambda batch: logits(job, batch, counter)).attribute(
                x,
                target=job.target,
                sliding_window_shapes=(window, window, 3),
                strides=(stride, stride, 3),
                baselines=float(GREY),
                perturbations_per_eval=IMAGES_PER_CALL,
            )
        return attribution[0].mean(dim=-1).numpy(), {"evaluations": counter.done}


def evaluations(width: int, height: int, window: int, stride: int) -> int:
    """Positions of the square: Captum places it every `stride` pixels, the last one overhanging the edge if need be."""
    return (1 + -(-(width - window) // stride)) * (1 + -(-(height - window) // stride))
