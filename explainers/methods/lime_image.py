"""LIME over superpixels (Ribeiro et al., 2016) with the `lime` package's `lime_image`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from lime import lime_image
from sklearn.metrics import pairwise_distances

from whylabel.explainers import blindspots, watched
from whylabel.explainers.base import Explainer, Job, Param
from whylabel.explainers.forward import Counter, raw_probabilities
from whylabel.explainers.hide import fill_param, hidden_image, hide_segments
from whylabel.explainers.progressive import STABLE_OVERLAP, Estimate, growing, overlap
from whylabel.explainers.registry import register
from whylabel.explainers.superpixels import ALGORITHMS, segment

CHUNK = 16
"""Perturbed images built at a time; the engine splits them into its own batches."""
FIRST_SAMPLES = 100
"""Samples behind LIME's first estimate (about half a second on EfficientNet-Lite0 here), and the samples each
later estimate adds until a quarter more is more (`progressive.growing`): a refit costs milliseconds, so the
stopping rule is checked every 100 samples of the default budget."""


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
        Param("segmentation", "felzenszwalb", "Superpixel algorithm (scikit-image).", choices=ALGORITHMS),
        Param(
            "n_segments",
            100,
            "Approximate number of superpixels (Felzenszwalb's scale is set from it).",
            low=2,
            high=500,
        ),
        Param("samples", 500, "Most perturbed images the surrogate is fitted on.", low=10, high=10000),
        Param(
            "features",
            10,
            "Superpixels the surrogate keeps (lime's num_features, the K of the paper): the K it weighs most, "
            "refitted; the others get 0.",
            low=1,
            high=500,
        ),
        fill_param("blur"),
        Param(
            "watch",
            "top class",
            "Whose maps must settle before LIME stops adding samples: the top class's (any other class then costs "
            "no new forward pass, and a map still moving when it stops says so) or the top 5 classes' and the one "
            "asked (every map the prediction bars offer has settled; more samples).",
            choices=tuple(watched.CHOICES),
        ),
    )

    @classmethod
    def warnings(cls, heatmap: np.ndarray, extras: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
        return [
            *blindspots.weak_fill(extras.get("weak_fill_share"), params["fill"]),
            *blindspots.poor_fit(extras.get("r2")),
            *blindspots.unsettled(
                extras.get("own_overlap"), STABLE_OVERLAP, params["watch"], extras["evaluations"] < params["samples"]
            ),
        ]

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        *_, last = self.estimates(job)  # every estimate, to the whole budget: lime's own explanation
        return last.heatmap, last.extras

    def estimates(self, job: Job) -> Iterator[Estimate]:
        """Maps from the first FIRST_SAMPLES samples, then more (`progressive.growing`) up to `samples`, one draw.

        The samples are lime's own draw for the whole budget (the same random numbers from the same generator
        as `LimeImageExplainer.explain_instance`), evaluated a chunk at a time with whylabel's one hiding
        mechanism and with no Python loop per image (lime 0.2.0.1 deep-copies and masks each image in Python,
        a third of the model's time per image here). Each estimate fits lime's own surrogate
        (`LimeBase.explain_instance_with_data`) to the rows so far, so the last one is exactly lime's
        explanation of all of them for the same hidden image (a test compares them).
        """
        p = job.params
        segments = segment(np.asarray(job.pixels), p["segmentation"], p["n_segments"], job.seed)
        hidden = hidden_image(job.pixels, p["fill"], segments)
        weak = blindspots.weak_share(job.pixels, hidden, segments)
        surrogate = Surrogate.draw(segments, p["samples"], p["features"], job.seed)
        counter, scores = Counter(job, p["samples"]), list[np.ndarray]()
        image = raw_probabilities(job, job.pixels[None], counter)[0]  # sample 0: the image itself
        classes = watched.classes(job, image, watched.CHOICES[p["watch"]])
        own = watched.asked_is_watched(job, classes)  # the map asked for is among the watched: fitted once
        before = None
        for n in growing(FIRST_SAMPLES, p["samples"]):
            for start in range(sum(len(chunk) for chunk in scores), n, CHUNK):
                rows = surrogate.data[start : min(start + CHUNK, n)]
                scores.append(raw_probabilities(job, hide_segments(job.pixels, segments, rows, hidden), counter))
            every = np.concatenate(scores)
            heatmap, r2 = surrogate.fit(job.versus(every), job.target, n)
            maps = np.stack([heatmap if own and c == job.target else surrogate.fit(every, c, n)[0] for c in classes])
            extras = {"segments": segments, "r2": r2, "n_superpixels": surrogate.n_features, "evaluations": n}
            if not own and before is not None:  # the rule did not watch this map: how far it still moved
                extras["own_overlap"] = overlap(before, heatmap)
            extras.update(weak_fill_share=weak, **counter.reuse())
            yield Estimate(heatmap, extras, n, p["samples"], final=n == p["samples"], watched=maps)
            before = heatmap


@dataclass(frozen=True)
class Surrogate:
    """lime's samples for the whole budget and its surrogate, fitted to the first n of them for any class."""

    lime: lime_image.LimeImageExplainer
    segments: np.ndarray
    data: np.ndarray
    """(samples, superpixels) 0/1: which superpixels each sample shows (the first shows them all)."""
    distances: np.ndarray
    features: int

    @classmethod
    def draw(cls, segments: np.ndarray, samples: int, features: int, seed: int) -> Surrogate:
        """lime's own draw: the same random numbers from the same generator as `explain_instance`."""
        lime = lime_image.LimeImageExplainer(random_state=seed)  # its generator, surrogate and selection
        n_features = int(segments.max()) + 1
        data = lime.random_state.randint(0, 2, samples * n_features).reshape((samples, n_features))
        data[0, :] = 1
        distances = pairwise_distances(data, data[:1], metric="cosine").ravel()
        return cls(lime, segments, data, distances, min(features, n_features))

    @property
    def n_features(self) -> int:
        return self.data.shape[1]

    def fit(self, labels: np.ndarray, label: int, n: int) -> tuple[np.ndarray, float]:
        """lime's own surrogate for column `label` of `labels` over the first n samples: the map and its R²."""
        _, local, r2, _ = self.lime.base.explain_instance_with_data(
            self.data[:n], labels, self.distances[:n], label, self.features, self.lime.feature_selection
        )
        weights = np.zeros(self.n_features)
        for feature, weight in local:
            weights[feature] = weight
        return weights[self.segments], float(r2)
