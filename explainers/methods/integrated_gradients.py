"""Integrated Gradients (Sundararajan et al., 2017) through Captum, with its completeness gap reported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from captum.attr import IntegratedGradients as CaptumIntegratedGradients

from whylabel.explainers import blindspots
from whylabel.explainers.base import Explainer, Job, Param
from whylabel.explainers.hide import hidden_image
from whylabel.explainers.registry import register

BASELINES = ("black", "blur", "noise")
BATCH = 16
"""Points on the path per forward and backward pass."""


@register
class IntegratedGradients(Explainer):
    name = "integrated_gradients"
    title = "Integrated Gradients"
    paper = "Sundararajan, Taly & Yan (2017), Axiomatic Attribution for Deep Networks"
    paper_url = "https://arxiv.org/abs/1703.01365"
    how_to_read = (
        "Gradients averaged along a straight path from a baseline image (black, blurred or noise) to the "
        "image, times the difference between the two, summed over colour channels. The values add up to "
        "f(image) - f(baseline) for the target's logit; the caption states how far they miss (the completeness "
        "gap). Red: moving from the baseline to this pixel raised the score; blue: lowered it."
    )
    default_on = False
    params = (
        Param("baseline", "black", "The image the path starts from.", choices=BASELINES),
        Param("steps", 200, "Points on the path; fewer leave a larger completeness gap.", low=2, high=1000),
    )

    @classmethod
    def uses_randomness(cls, params: Mapping[str, Any]) -> bool:
        return params["baseline"] == "noise"  # the noise image is drawn from the seed

    @classmethod
    def warnings(cls, heatmap: np.ndarray, extras: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
        gap = blindspots.completeness_gap(extras.get("relative_gap"))
        if params["baseline"] == "noise":
            return gap
        return [*blindspots.weak_fill(extras.get("weak_fill_share"), params["baseline"], "baseline"), *gap]

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        x = job.tensor()
        start = baseline_pixels(np.asarray(job.pixels), job.params["baseline"], job.seed)
        baseline = job.clf.to_tensor(start)
        steps = job.params["steps"]
        attribution = CaptumIntegratedGradients(job.model(passes=-(-steps // BATCH))).attribute(
            x, baselines=baseline, target=job.target, n_steps=steps, internal_batch_size=BATCH
        )
        job.progress(1.0)
        with torch.no_grad():
            scores = job.model()(torch.cat([x, baseline]))[:, job.target].float()
        change = float(scores[0] - scores[1])
        gap = float(attribution.sum()) - change
        extras = {"completeness_gap": gap, "score_change": change, "relative_gap": abs(gap) / max(abs(change), 1e-12)}
        extras["weak_fill_share"] = blindspots.weak_share(job.pixels, start)
        return attribution.detach()[0].sum(dim=0).numpy(), extras


def baseline_pixels(pixels: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """The path's starting image, in model-view pixels: black, heavily blurred, or uniform noise (seeded)."""
    if kind == "noise":
        return np.random.default_rng(seed).uniform(0, 255, pixels.shape).astype(np.float32)
    return hidden_image(pixels, kind)
