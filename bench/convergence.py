"""Are LIME's and SHAP's defaults converged? Top-10 superpixel overlap across seeds, and against a big budget.

LIME samples at random, so a converged budget gives the same top-10 superpixels whatever the seed.
SHAP's Partition explainer is deterministic (the seed only breaks exact ties), so agreement across seeds
says nothing about it; instead its top-10 superpixels at each budget are compared with those of a run
with many more evaluations. Both use the same SLIC superpixels (LIME's default segmentation); a
superpixel's SHAP value is the sum over its pixels (Shapley values add up).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from typing import Any

import numpy as np
from PIL import Image

from whylabel import explainers
from whylabel.explainers.superpixels import segment
from whylabel.models import Classifier

TOP = 10
GOAL = 0.8


def overlap(a: set[int], b: set[int]) -> float:
    return len(a & b) / max(len(a), 1)


def top_superpixels(values: np.ndarray, k: int = TOP) -> set[int]:
    return {int(i) for i in np.argsort(-values, kind="stable")[:k]}


def per_superpixel(heatmap: np.ndarray, segments: np.ndarray) -> np.ndarray:
    return np.bincount(segments.ravel(), weights=heatmap.ravel().astype(np.float64))


def lime_tops(clf: Classifier, img: Image.Image, samples: int, seeds: Iterable[int]) -> list[set[int]]:
    tops = []
    for seed in seeds:
        att = explainers.explain(clf, img, "lime", seed=seed, samples=samples)
        weights = per_superpixel(att.heatmap, att.extras["segments"]) / np.bincount(att.extras["segments"].ravel())
        tops.append(top_superpixels(weights))
    return tops


def shap_top(clf: Classifier, img: Image.Image, evaluations: int, segments: np.ndarray, seed: int = 0) -> set[int]:
    att = explainers.explain(clf, img, "shap", seed=seed, evaluations=evaluations)
    return top_superpixels(per_superpixel(att.heatmap, segments))


def mean_pairwise(tops: list[set[int]]) -> float:
    return statistics.mean(overlap(a, b) for a, b in itertools.combinations(tops, 2))


def lime_sweep(
    clf: Classifier, images: list[Image.Image], budgets: list[int], seeds: list[int]
) -> list[dict[str, Any]]:
    rows = []
    for samples in budgets:
        scores = [mean_pairwise(lime_tops(clf, img, samples, seeds)) for img in images]
        rows.append({"evaluations": samples, "mean_overlap": statistics.mean(scores), "min_overlap": min(scores)})
    return rows


def shap_sweep(
    clf: Classifier, images: list[Image.Image], budgets: list[int], reference: int, seeds: list[int]
) -> list[dict[str, Any]]:
    defaults = explainers.get("lime").resolve({}, clf.input_size)
    segmented = [segment(clf.input_image(img), "slic", defaults["n_segments"], 0) for img in images]
    references = [shap_top(clf, img, reference, seg) for img, seg in zip(images, segmented, strict=True)]
    rows = []
    for evaluations in budgets:
        vs_reference, across_seeds = [], []
        for img, seg, ref in zip(images, segmented, references, strict=True):
            tops = [shap_top(clf, img, evaluations, seg, seed) for seed in seeds[:2]]
            vs_reference.append(overlap(tops[0], ref))
            across_seeds.append(mean_pairwise(tops))
        rows.append(
            {
                "evaluations": evaluations,
                "mean_overlap": statistics.mean(vs_reference),
                "min_overlap": min(vs_reference),
                "across_seeds": statistics.mean(across_seeds),
            }
        )
    return rows


def fewest(rows: list[dict[str, Any]], goal: float = GOAL) -> int | None:
    """The smallest budget whose mean overlap reaches the goal and stays there for every bigger budget."""
    ok = [row["mean_overlap"] >= goal for row in rows]
    for i, row in enumerate(rows):
        if all(ok[i:]):
            return int(row["evaluations"])
    return None
