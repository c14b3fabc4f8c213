"""What each trust metric is, which way is better, and what it needs: read by the page, the record and the audit."""

from __future__ import annotations

from dataclasses import dataclass

FORWARD = "forward passes"
"""The model's scores for edited images: any model that classifies, gradients or not."""
WEIGHTS = "randomisable weights"
"""Copies of the model with weights re-drawn: a model whose parameters whylabel can reach."""
METHOD = "what the method needs"
"""Re-runs of the method itself: gradients for gradient methods, forward passes for the others."""


@dataclass(frozen=True)
class Metric:
    """One score of a map: its name in records, a title, which way is better, and what computing it needs."""

    name: str
    title: str
    higher_is_better: bool
    needs: tuple[str, ...]
    paper: str
    about: str

    @property
    def better(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


DELETION = Metric(
    "deletion_auc",
    "Deletion AUC",
    False,
    (FORWARD,),
    "Petsiuk, Das & Saenko (2018), RISE",
    "Area under the target's probability as pixels are hidden in the map's order: a faithful map falls fast.",
)
INSERTION = Metric(
    "insertion_auc",
    "Insertion AUC",
    True,
    (FORWARD,),
    "Petsiuk, Das & Saenko (2018), RISE",
    "Area under the target's probability as pixels are revealed in the map's order: a faithful map rises fast.",
)
SANITY = Metric(
    "sanity",
    "Sanity check (|Spearman| with the randomised model's map)",
    False,
    (WEIGHTS, METHOD),
    "Adebayo et al. (2018), Sanity Checks for Saliency Maps",
    "Rank correlation between the maps of the trained and the fully randomised model: near 0 passes.",
)
STABILITY = Metric(
    "stability",
    "Stability over seeds (mean pairwise Spearman)",
    True,
    (METHOD,),
    "",
    "How alike the maps of several seeds rank the pixels: 1 for the same ranking, near 0 for noise.",
)
AGREEMENT = Metric(
    "agreement",
    "Agreement between methods (Spearman)",
    True,
    (),
    "",
    "Rank correlation between two methods' maps: methods that disagree cannot all be faithful.",
)
METRICS = {metric.name: metric for metric in (DELETION, INSERTION, SANITY, STABILITY, AGREEMENT)}
