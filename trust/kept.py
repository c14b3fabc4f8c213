"""The random baseline and a map's faithfulness scores with the result store (`store.results`): computed once
per image, target and contrast (the baseline) or per map (the scores), then read back."""

from __future__ import annotations

from typing import Any

from whylabel.explainers.base import Attribution
from whylabel.explainers.kept import request_key
from whylabel.store import results
from whylabel.trust.faithfulness import Curve, RandomBaseline, baseline_for, evaluate

results.keeps(Curve)
results.keeps(RandomBaseline)


def baseline(att: Attribution, keep: bool = True) -> RandomBaseline:
    """The random maps' curves for the map's image, target and contrast (`trust.baseline_for`), kept."""
    name = request_key(att.request, "baseline", per_method=False) if keep and att.request is not None else None
    return results.kept(name, lambda: baseline_for(att))[0]


def scores(att: Attribution, random: RandomBaseline | None = None, keep: bool = True) -> dict[str, Any]:
    """Deletion and insertion scores of a map against the random baseline (`trust.evaluate`), kept."""
    random = random or baseline(att, keep)
    name = request_key(att.request, "scores") if keep and att.request is not None else None
    return results.kept(name, lambda: evaluate(att, baseline=random))[0]
