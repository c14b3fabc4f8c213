"""Stability over seeds: re-run the same request with several seeds and compare the maps.

Always computed, never assumed: a method flagged as using no randomness gets exactly 1.0 because its maps are
equal, and a test holds every such flag to that.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection
from typing import Any

import numpy as np

from whylabel.explainers.base import Progress, shown
from whylabel.explainers.explain import Request, check_request, check_seed, run
from whylabel.trust.agreement import rank_correlation, top_overlap
from whylabel.trust.progress import listed, share

MAX_SEEDS = 20
"""Seeds one stability check may run: each is a full run of the method."""
SEEDS = (0, 1, 2)


def stability_details(
    request: Request, seeds: Collection[int] = SEEDS, progress: Progress | None = None
) -> dict[str, Any]:
    """The maps of several seeds: their mean, per-pixel spread, mean pairwise Spearman and top-10% overlap.

    Maps that are identical to the last bit score exactly 1.0 (Spearman of a constant map is undefined).
    """
    check_request(request)
    seeds = check_seeds(seeds)
    maps = np.stack([run(request.with_seed(s), share(progress, i, len(seeds))).heatmap for i, s in enumerate(seeds)])
    pairs = list(itertools.combinations(range(len(maps)), 2))
    same = [bool(np.array_equal(maps[i], maps[j])) for i, j in pairs]
    return {
        "mean": maps.mean(axis=0),
        "disagreement": maps.std(axis=0),
        "spearman": pairwise(maps, pairs, same, rank_correlation),
        "top10_overlap": pairwise(maps, pairs, same, top_overlap),
        "identical": all(same),
    }


def pairwise(maps: np.ndarray, pairs: list, same: list[bool], score: Callable[..., float]) -> float:
    """The mean of `score` over the pairs of maps; 1.0 for a pair that is identical to the last bit."""
    return float(np.mean([1.0 if eq else score(maps[i], maps[j]) for eq, (i, j) in zip(same, pairs, strict=True)]))


def stability(request: Request, seeds: Collection[int] = SEEDS, progress: Progress | None = None) -> float:
    """The mean pairwise Spearman correlation of the seeds' maps, clipped to [0, 1]; 1.0 for identical maps."""
    details = stability_details(request, seeds, progress)
    return min(max(details["spearman"], 0.0), 1.0)


def check_seeds(seeds: Collection[int]) -> list[int]:
    """The seeds as ints: 2 to MAX_SEEDS of them, at least two different; ValueError stating the range."""
    items = listed(seeds, MAX_SEEDS)
    if items is None or len(items) < 2:
        raise ValueError(f"seeds must be a list of 2 to {MAX_SEEDS} seeds; got {shown(seeds)}")
    chosen = [check_seed(seed) for seed in items]
    if len(set(chosen)) < 2:
        raise ValueError(f"stability needs at least two different seeds; got {chosen!r}")
    return chosen
