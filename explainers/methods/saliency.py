"""Vanilla gradient saliency (Simonyan et al., 2013) through Captum's `Saliency`."""

from __future__ import annotations

from typing import Any

import numpy as np
from captum.attr import Saliency as CaptumSaliency

from whylabel.explainers.base import Explainer, Job
from whylabel.explainers.registry import register


@register
class Saliency(Explainer):
    name = "saliency"
    title = "Saliency"
    paper = "Simonyan, Vedaldi & Zisserman (2013), Deep Inside Convolutional Networks"
    paper_url = "https://arxiv.org/abs/1312.6034"
    how_to_read = (
        "How much a tiny change to each pixel would change the target's logit: the largest absolute "
        "gradient over the three colour channels. Unsigned, so it shows sensitivity, not whether a pixel "
        "speaks for or against the class. Often noisy; bright pixels are where the model is locally sensitive."
    )
    signed = False

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        x = job.tensor().requires_grad_(True)
        grads = CaptumSaliency(job.model()).attribute(x, target=job.target, abs=True)
        job.progress(1.0)
        return grads.detach()[0].amax(dim=0).numpy(), {}
