"""Progressive maps: a first estimate within about a second, then refinements until the map stops moving.

A method that can refine (LIME adds samples to the same fit, occlusion goes from coarse to fine, SHAP grows
its budget) yields `Estimate`s from `Explainer.estimates`; `explain.run` hands each one to the caller as an
`Attribution` whose `stage` says which it is, and stops by the rule below. Every other method yields once.

The stopping rule: after each refinement, compare the top 10% of pixels (by attribution) with the previous
estimate's; when at least `STABLE_OVERLAP` of them are shared, the map has converged and no more work is
done. A method's budget parameter (LIME's samples, SHAP's evaluations) is then the most it may spend. A method
whose estimates carry `watched` maps (LIME: one per class of `explainers.watched`) stops when every one of them
is stable, so where it stops does not depend on the class asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

TOP_FRACTION = 0.1
STABLE_OVERLAP = 0.9
"""Share of the top-10% pixels two successive estimates must have in common for the map to count as converged."""


@dataclass(frozen=True)
class Estimate:
    """One map a method has so far: the map, its extras, and the evaluations spent out of the most planned."""

    heatmap: np.ndarray
    extras: dict[str, Any]
    evaluations: int
    planned: int
    final: bool = False
    """The last estimate the method can give (its whole budget spent)."""
    preview: bool = False
    """A coarser or cheaper map shown while the real one is computed: never taken as converged."""
    watched: np.ndarray | None = None
    """(classes, H, W) maps whose stability decides convergence instead of `heatmap`'s (see `explainers.watched`)."""


@dataclass(frozen=True)
class Stage:
    """Which estimate a map is: its number, the evaluations it used, and whether it is the converged map."""

    number: int
    evaluations: int
    planned: int
    converged: bool
    overlap: float | None = None
    """Top-10% overlap with the previous estimate (None for the first)."""
    reused: int = 0
    """Images whose logits came from an earlier map of this image (another class): no forward pass for them."""
    ran: int | None = None
    """Forward passes this request ran (None where the method does not say)."""
    watched: int = 0
    """Classes whose maps the stopping rule watched (0: this map's own)."""

    def label(self) -> str:
        return self.stage_label() + self.reuse_label()

    def reuse_label(self) -> str:
        if not self.reused:
            return ""
        if self.ran == 0:
            return "; every image reused from an earlier map of this image: no new forward pass"
        return f"; {self.reused} of them reused from earlier maps of this image"

    def stage_label(self) -> str:
        if self.converged and self.number == 1 and self.planned == self.evaluations:
            return f"computed in one go ({self.evaluations} evaluation{'' if self.evaluations == 1 else 's'})"
        whose = {0: "", 1: " of the top class's map"}.get(self.watched, f" of each of {self.watched} classes' maps")
        if self.converged and self.overlap is not None and self.overlap < STABLE_OVERLAP:  # the budget ran out
            moved = f"top 10%{whose} still moving ({self.overlap:.0%} in common with the estimate before)"
            return f"whole budget spent: {self.evaluations} evaluations; {moved}"
        if self.converged:
            rule = "" if self.overlap is None else f"; top 10%{whose} stable at {self.overlap:.0%}"
            return f"converged: {self.evaluations} of at most {self.planned} evaluations{rule}"
        if self.number == 1:
            return f"first estimate: {self.evaluations} of at most {self.planned} evaluations, refining"
        return f"refining: {self.evaluations} of at most {self.planned} evaluations"


def top_set(heatmap: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """Flat indices of the top `fraction` of pixels, ties broken by position."""
    k = max(1, round(heatmap.size * fraction))
    return np.argsort(-heatmap.ravel(), kind="stable")[:k]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the top-10% pixels of two maps in common."""
    top_a, top_b = top_set(a), top_set(b)
    return len(np.intersect1d(top_a, top_b)) / len(top_a)


def stability(previous: Estimate, estimate: Estimate) -> float:
    """The top-10% overlap of two successive estimates: of their maps, or the least over their watched maps."""
    if estimate.watched is None or previous.watched is None:
        return overlap(previous.heatmap, estimate.heatmap)
    return min(overlap(a, b) for a, b in zip(previous.watched, estimate.watched, strict=True))


def converge(estimates: Iterator[Estimate]) -> Iterator[tuple[Estimate, Stage]]:
    """Each estimate with its stage, up to and including the first converged one (the generator is closed)."""
    previous: Estimate | None = None
    for number, estimate in enumerate(estimates, start=1):
        shared = stability(previous, estimate) if previous is not None and not estimate.preview else None
        done = estimate.final or (shared is not None and shared >= STABLE_OVERLAP)
        reused, ran = int(estimate.extras.get("reused", 0)), estimate.extras.get("ran")
        watched = 0 if estimate.watched is None else len(estimate.watched)
        yield estimate, Stage(number, estimate.evaluations, estimate.planned, done, shared, reused, ran, watched)
        if done:
            return
        previous = None if estimate.preview else estimate


def doubling(first: int, last: int) -> list[int]:
    """first, 2 first, 4 first, ... and last: the sample counts at which a refining method re-estimates."""
    counts, n = [], max(1, min(first, last))
    while n < last:
        counts.append(n)
        n *= 2
    return [*counts, last]


def growing(first: int, last: int) -> list[int]:
    """first, then `first` more each time, or a quarter more once that is more, and last: for a method whose
    re-estimate costs next to nothing (LIME's refit).

    Checking the stopping rule every `first` samples stops a method closer to where its map settled (doubling
    can spend twice the samples the map needed); growing by a quarter at large budgets keeps the stages few.
    """
    counts, n = [], max(1, min(first, last))
    while n < last:
        counts.append(n)
        n += max(first, n // 4)
    return [*counts, last]
