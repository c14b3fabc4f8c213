"""SmoothGrad (Smilkov et al., 2017): saliency averaged over noisy copies of the image, through Captum."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from captum.attr import NoiseTunnel, Saliency

from whylabel.explainers.base import Explainer, Job, Param
from whylabel.explainers.registry import register

BATCH = 8
"""Noisy copies per forward and backward pass."""


@register
class SmoothGrad(Explainer):
    name = "smoothgrad"
    title = "SmoothGrad"
    paper = "Smilkov, Thorat, Kim, Viégas & Wattenberg (2017), SmoothGrad: removing noise by adding noise"
    paper_url = "https://arxiv.org/abs/1706.03825"
    how_to_read = (
        "Gradient saliency averaged over noisy copies of the image: the largest absolute gradient over the "
        "colour channels, smoothed. Unsigned, like saliency; less speckled, because noise that only one copy "
        "shows averages out. The noise level is a fraction of the input's value range."
    )
    signed = False
    stochastic = True
    default_on = False
    params = (
        Param("noise", 0.15, "Noise standard deviation, as a fraction of the input's range.", low=0.0, high=1.0),
        Param("samples", 25, "Noisy copies averaged.", low=1, high=500),
    )

    @classmethod
    def uses_randomness(cls, params: Mapping[str, Any]) -> bool:
        return params["noise"] > 0  # no noise, no draw: plain saliency

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        x = job.tensor()
        spread = float(x.max() - x.min()) or 1.0  # before requires_grad: a plain number, no autograd warning
        x.requires_grad_(True)
        samples = job.params["samples"]
        with torch.random.fork_rng():
            torch.manual_seed(job.seed)
            grads = NoiseTunnel(Saliency(job.model(passes=-(-samples // BATCH)))).attribute(
                x,
                nt_type="smoothgrad",
                nt_samples=samples,
                nt_samples_batch_size=BATCH,
                stdevs=job.params["noise"] * spread,
                target=job.target,
                abs=True,
            )
        job.progress(1.0)
        return grads.detach()[0].amax(dim=0).numpy(), {}
