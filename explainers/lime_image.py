"""LIME over superpixels (Ribeiro et al., 2016) with the `lime` package's `lime_image`."""

from __future__ import annotations

from typing import Any

import numpy as np
from lime import lime_image

from explainers.base import Explainer, Job, Param
from explainers.forward import BATCH_SIZE, Counter, probabilities
from explainers.registry import register
from explainers.superpixels import ALGORITHMS, segment

lime_image.tqdm = iter  # lime 0.2.0.1 always prints a tqdm bar; our own progress callback replaces it

HIDE_COLOURS: dict[str, int | None] = {"mean": None, "grey": 128, "black": 0}


@register
class Lime(Explainer):
    name = "lime"
    title = "LIME"
    paper = 'Ribeiro, Singh & Guestrin (2016), "Why Should I Trust You?"'
    paper_url = "https://arxiv.org/abs/1602.04938"
    how_to_read = (
        "The image is cut into superpixels (outlined). LIME hides random subsets of them, records the "
        "target's probability, and fits a weighted linear model; each superpixel is coloured by its weight. "
        "Red: showing it raises the probability; blue: it lowers it. R² says how well the linear surrogate "
        "fits the model near this image: a low R² means the map is a poor summary."
    )
    stochastic = True
    score = "probability"
    params = (
        Param("segmentation", "slic", "Superpixel algorithm (scikit-image).", choices=ALGORITHMS),
        Param("n_segments", 50, "Approximate number of superpixels.", low=2, high=500),
        Param("samples", 500, "Perturbed images the surrogate is fitted on.", low=10, high=10000),
        Param("hide_colour", "mean", "Fill for hidden superpixels.", choices=tuple(HIDE_COLOURS)),
    )

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        p = job.params
        segments = segment(np.asarray(job.pixels), p["segmentation"], p["n_segments"], job.seed)
        counter = Counter(job, p["samples"])
        explanation = lime_image.LimeImageExplainer(random_state=job.seed).explain_instance(
            np.array(job.pixels),
            lambda images: probabilities(job, images, counter),
            labels=(job.target,),
            top_labels=None,
            hide_color=HIDE_COLOURS[p["hide_colour"]],
            num_features=int(segments.max()) + 1,
            num_samples=p["samples"],
            batch_size=BATCH_SIZE,
            segmentation_fn=lambda _: segments,
            random_seed=job.seed,
        )
        weights = np.zeros(int(segments.max()) + 1)
        for feature, weight in explanation.local_exp[job.target]:
            weights[feature] = weight
        extras = {"segments": segments, "r2": float(explanation.score), "n_superpixels": len(weights)}
        return weights[segments], extras
