"""SHAP (Lundberg & Lee, 2017): Shapley values with the `shap` package's Partition explainer and an image masker."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np
import shap

from whylabel.explainers import blindspots
from whylabel.explainers.base import Explainer, Job, Param
from whylabel.explainers.forward import IMAGES_PER_CALL, Counter, probabilities
from whylabel.explainers.hide import PLAIN_FILLS, fill_param, hidden_image
from whylabel.explainers.progressive import Estimate, doubling
from whylabel.explainers.registry import register

CONTEXTS = {"shown": 1, "both": None}
"""The `context` choices, as shap's `fixed_context`."""
FIRST_AT_LEAST = 40
"""The smallest first-estimate budget worth showing: below it, SHAP's coarsest split says little."""


class ImageMasker(shap.maskers.Image):
    """SHAP's image masker with its partition tree cached per image shape.

    The tree depends only on the shape, yet `shap.maskers.Image` rebuilds it for every masker: about
    0.65 s for a 224 x 224 x 3 image here, a third of a default SHAP panel. It is read-only, so one
    copy per shape is shared.
    """

    def build_partition_tree(self) -> None:
        self.clustering = partition_tree(tuple(self.input_shape))


@cache
def partition_tree(shape: tuple[int, ...]) -> np.ndarray:
    tree = shap.maskers.Image(np.zeros(shape), shape).clustering
    tree.flags.writeable = False
    return tree


@register
class Shap(Explainer):
    name = "shap"
    runs_module = False
    title = "SHAP"
    paper = "Lundberg & Lee (2017), A Unified Approach to Interpreting Model Predictions"
    paper_url = "https://arxiv.org/abs/1705.07874"
    how_to_read = (
        "Shapley values estimated by SHAP's Partition explainer: the image is split recursively into "
        "rectangles, hidden regions are replaced by a blurred copy, and each region gets its share of the "
        "change in the target's probability. By default a region's share is measured with the rest of the "
        "image shown (what hiding it costs); values add up to f(image) - f(fully hidden). Blocky, because the "
        "budget of evaluations decides how finely the image is split."
    )
    score = "probability"
    params = (
        Param("evaluations", 300, "Model evaluations SHAP may spend (max_evals).", low=10, high=20000),
        Param(
            "context",
            "shown",
            "How a region's share is measured: with its sibling region shown (shap's fixed_context=1: one "
            "evaluation pair per split, so the budget splits the image finely), or both shown and hidden "
            "(exact Owen values: each level doubles the evaluations a split costs).",
            choices=tuple(CONTEXTS),
        ),
        fill_param("blur", PLAIN_FILLS),
    )

    @classmethod
    def warnings(cls, heatmap: np.ndarray, extras: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
        return blindspots.weak_fill(extras.get("weak_fill_share"), params["fill"])

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        return Search(job, Counter(job, job.params["evaluations"])).run(job.params["evaluations"])

    def estimates(self, job: Job) -> Iterator[Estimate]:
        """SHAP values at a quarter of the budget, then half, then all of it.

        The earlier stages are previews, never taken as converged: with the stopping rule and exact Owen values
        at 1,500 evaluations, SHAP stopped short of its budget on a known-answer case (a 32-px patch) with under
        0.7 of its map on the evidence, and on four gallery photos the rule never stopped it early anyway.

        Each stage is the same search run further: shap's Partition explainer expands the same regions in the
        same order whatever its budget (ties broken the same way), so a larger budget's search begins with
        the smaller one's evaluations, and the counter keeps their scores. A stage costs only the
        evaluations it adds, and the stages share one explainer (building one costs 0.2 s here).
        """
        budget = job.params["evaluations"]
        search = Search(job, Counter(job, budget))
        for n in doubling(max(budget // 4, FIRST_AT_LEAST), budget):
            heatmap, extras = search.run(n)
            extras.update(evaluations=search.counter.done, **search.counter.reuse())
            yield Estimate(heatmap, extras, search.counter.done, budget, final=n == budget, preview=n < budget)


class Search:
    """One image's Partition search, set up once (the fill, the masker, the explainer) and run to any budget."""

    def __init__(self, job: Job, counter: Counter) -> None:
        self.job, self.counter = job, counter
        self.image = np.asarray(job.pixels, dtype=np.float32)
        hidden = hidden_image(self.image, job.params["fill"])
        masker = ImageMasker(hidden, self.image.shape)
        self.explainer = shap.Explainer(self.predict, masker, algorithm="partition", seed=job.seed)
        self.weak = blindspots.weak_share(self.image, hidden)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return probabilities(self.job, np.asarray(images), self.counter)[:, [self.job.target]]

    def run(self, budget: int) -> tuple[np.ndarray, dict[str, Any]]:
        """SHAP values with `budget` evaluations, and their base value."""
        before = self.counter.done
        with fixed_tie_breaks():
            result = self.explainer(
                self.image[None],
                max_evals=budget,
                batch_size=IMAGES_PER_CALL,
                fixed_context=CONTEXTS[self.job.params["context"]],
                silent=True,
            )
        values = np.asarray(result.values)[0, ..., 0].sum(axis=-1)
        base = float(np.asarray(result.base_values).ravel()[0])
        extras = {"base_value": base, "evaluations": self.counter.done - before, "weak_fill_share": self.weak}
        extras.update(self.counter.reuse())
        return values, extras


TIE_BREAKS = threading.Lock()


@contextmanager
def fixed_tie_breaks() -> Iterator[None]:
    """numpy's global generator seeded with a constant for one SHAP search, then put back as it was.

    shap's Partition explainer breaks ties between equally important regions with `np.random.randn()` (its `seed`
    is not passed on to it), so on an image where regions tie, which one it refined first, and so the map, changed
    from run to run with whatever state other code had left that generator in: for one seed as for several, in a
    method that uses no randomness. The lock keeps two SHAP runs from drawing from it in turn.
    """
    with TIE_BREAKS:
        state = np.random.get_state()
        np.random.seed(0)
        try:
            yield
        finally:
            np.random.set_state(state)
