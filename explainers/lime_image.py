"""LIME over superpixels (Ribeiro et al., 2016) with the `lime` package's `lime_image`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from lime import lime_image

from whylabel.explainers.base import Explainer, Job, Param
from whylabel.explainers.forward import Counter, probabilities
from whylabel.explainers.hide import fill_param, hidden_image, hide_segments
from whylabel.explainers.registry import register
from whylabel.explainers.superpixels import ALGORITHMS, segment

CHUNK = 16
"""Perturbed images built at a time; the engine splits them into its own batches."""


class VectorisedLimeImageExplainer(lime_image.LimeImageExplainer):
    """`lime_image` with its sampling loop vectorised; everything else is lime's own code.

    lime 0.2.0.1 builds each perturbed image in Python (a deep copy, then one mask per hidden superpixel)
    and prints a tqdm bar it cannot silence: about 0.5 ms per sample here, a third of the model's time
    per image on the fast engine. This draws the same random numbers from the same generator, so for the
    same hidden image the explanation is identical to lime's for the same seed (a test checks it), and
    builds each chunk of images with whylabel's one hiding mechanism (`hide_segments`), in float32 as the
    engine takes them. The hidden image is ours (`hidden`, from the `fill`), not lime's `hide_color`.
    """

    def __init__(self, hidden: np.ndarray, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden = hidden

    def data_labels(
        self,
        image: np.ndarray,
        fudged_image: np.ndarray,
        segments: np.ndarray,
        classifier_fn: Callable[[np.ndarray], np.ndarray],
        num_samples: int,
        batch_size: int = CHUNK,
    ) -> tuple[np.ndarray, np.ndarray]:
        n_features = np.unique(segments).shape[0]
        data = self.random_state.randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
        data[0, :] = 1
        labels = [
            classifier_fn(hide_segments(image, segments, data[start : start + batch_size], self.hidden))
            for start in range(0, num_samples, batch_size)
        ]
        return data, np.concatenate(labels)


@register
class Lime(Explainer):
    name = "lime"
    runs_module = False
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
        Param(
            "n_segments",
            40,
            "Approximate number of superpixels (SLIC gives 22-31 on the gallery photos).",
            low=2,
            high=500,
        ),
        Param("samples", 400, "Perturbed images the surrogate is fitted on.", low=10, high=10000),
        fill_param("mean"),
    )

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        p = job.params
        segments = segment(np.asarray(job.pixels), p["segmentation"], p["n_segments"], job.seed)
        counter = Counter(job, p["samples"])
        hidden = hidden_image(job.pixels, p["fill"], segments)
        explanation = VectorisedLimeImageExplainer(hidden, random_state=job.seed).explain_instance(
            np.array(job.pixels),
            lambda images: probabilities(job, images, counter),
            labels=(job.target,),
            top_labels=None,
            hide_color=0,  # lime's own fill is unused: `hidden` is
            num_features=int(segments.max()) + 1,
            num_samples=p["samples"],
            batch_size=CHUNK,
            segmentation_fn=lambda _: segments,
            random_seed=job.seed,
        )
        weights = np.zeros(int(segments.max()) + 1)
        for feature, weight in explanation.local_exp[job.target]:
            weights[feature] = weight
        extras = {"segments": segments, "r2": float(explanation.score), "n_superpixels": len(weights)}
        extras["evaluations"] = counter.done
        return weights[segments], extras
