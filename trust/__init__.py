"""How far a map can be trusted: faithfulness against a random map, the randomisation sanity check, stability
over seeds and agreement between methods. Each metric declares which way is better and what it needs
(`METRICS`); verdicts and their rules live here, not in the page.

May import: whylabel.explainers, whylabel.models, whylabel.store. It runs methods and their randomised copies;
explainers never import it.
"""

from whylabel.trust.agreement import agreement, rank_correlation, top_overlap
from whylabel.trust.faithfulness import (
    RANDOM_MAPS,
    RandomBaseline,
    baseline_for,
    curve,
    evaluate,
    random_baseline,
    random_map,
)
from whylabel.trust.metrics import METRICS, Metric
from whylabel.trust.sanity import (
    PASS_BELOW,
    Verdict,
    cascade_depths,
    layers_top_down,
    randomised,
    sanity,
    sanity_cascade,
    verdict,
)
from whylabel.trust.stability import stability, stability_details

__all__ = [
    "METRICS",
    "PASS_BELOW",
    "RANDOM_MAPS",
    "Metric",
    "RandomBaseline",
    "Verdict",
    "agreement",
    "baseline_for",
    "cascade_depths",
    "curve",
    "evaluate",
    "layers_top_down",
    "random_baseline",
    "random_map",
    "randomised",
    "rank_correlation",
    "sanity",
    "sanity_cascade",
    "stability",
    "stability_details",
    "top_overlap",
    "verdict",
]
