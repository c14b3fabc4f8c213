"""What-if on superpixels: the smallest set whose hiding changes the decision, and the smallest that alone keeps it.

`counterfactual` is an evidence counterfactual (SEDC: Martens & Provost 2014; Vermeire et al. 2022): hide
superpixels, best first, until the top-1 class changes; `sufficient` is its mirror (an anchor of superpixels):
show superpixels on a wholly hidden image until the top-1 class is back. Both then prune the set until it is
1-minimal: for a counterfactual, putting back any one member restores the original class; for a sufficient
set, hiding any one member loses it. Neither is an `Explainer`: the result is an edit, not a map.

The search is best first, as SEDC's: a priority queue of sets by the original class's probability (lowest
first for a counterfactual, highest for a sufficient set), each expanded by the superpixels a map ranks first
(the change of that probability when a superpixel alone is hidden, or alone shown), `BRANCHES` at a time, so
each expansion costs a few forward passes. Every image goes through the classifier's fast engine and its
memory (`Classifier.memory`), so the same edit is never run twice. "Hidden" means what the fill
makes of a superpixel: another fill can give another answer.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from whylabel.explainers.base import Param
from whylabel.explainers.explain import check_inputs, check_seed
from whylabel.explainers.hide import FILLS, fill_param, hidden_image, hide_segments
from whylabel.explainers.superpixels import ALGORITHMS, segment
from whylabel.models import Classifier

PARAMS = (
    Param("segmentation", "felzenszwalb", "Superpixel algorithm (scikit-image).", choices=ALGORITHMS),
    Param("n_segments", 50, "About how many superpixels to cut the image into.", low=2, high=500),
    fill_param("blur", FILLS),
    Param("budget", 400, "Most forward passes the search may spend.", low=1, high=20000),
)
BRANCHES = 8
"""Superpixels tried as the next member of a set, the map's best first."""


@dataclass(frozen=True)
class Edit:
    """A what-if result: which superpixels changed, the edited model view, and the classes before and after."""

    kind: str
    """"counterfactual" (the set is hidden) or "sufficient" (only the set is shown)."""
    segments: np.ndarray
    changed: tuple[int, ...]
    pixels: np.ndarray
    """uint8 (H, W, 3): the model view edited by the set (the original view when nothing was found)."""
    hidden: np.ndarray
    """uint8 (H, W, 3): the model view with every superpixel hidden by the fill used."""
    before: int
    after: int
    before_probability: float
    after_probability: float
    """The probability of class `before` in the edited view."""
    found: bool
    evaluations: int
    """Edited views the search looked at (`budget` bounds them, pruning aside)."""
    ran: int
    """New forward passes among them (the rest were in the classifier's memory)."""
    seconds: float
    params: Mapping[str, Any]
    message: str


@dataclass
class Search:
    """One search's images and what they cost: shown-superpixel masks in, the original class's fate out."""

    clf: Classifier
    pixels: np.ndarray
    segments: np.ndarray
    fill_image: np.ndarray
    before: int
    before_probability: float
    budget: int
    evaluations: int = 0
    """Edited views the search looked at (what the budget counts: the same in any process)."""
    ran: int = 0
    """Of those, the ones not already in the classifier's memory: new forward passes."""

    @property
    def n(self) -> int:
        return int(self.segments.max()) + 1

    def views(self, shown: np.ndarray) -> np.ndarray:
        """The edited views for (N, n) masks of shown superpixels, rounded to the uint8 values a page shows."""
        return np.rint(hide_segments(self.pixels, self.segments, shown, self.fill_image))

    def outcomes(self, shown: np.ndarray, count: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """For (N, n) masks of shown superpixels: the top-1 class and the probability of `before`, each (N,).

        `count` False reads a result back without counting it as a view the search looked at."""
        logits, ran = self.clf.memory.logits(self.views(shown), self.clf.engine().logits)
        self.evaluations += len(shown) if count else 0
        self.ran += ran
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return logits.argmax(axis=1), probs[:, self.before]

    def mask(self, members: frozenset[int], show_members: bool) -> np.ndarray:
        """The shown-superpixel mask of a set: all but the members (hiding them), or the members alone."""
        shown = np.zeros(self.n, bool) if show_members else np.ones(self.n, bool)
        shown[list(members)] = show_members
        return shown

    def left(self) -> int:
        """Forward passes the search may still spend (pruning afterwards may add a few, see `pruned`)."""
        return self.budget - self.evaluations


def counterfactual(clf: Classifier, img: Image.Image, target: int | None = None, seed: int = 0, **params: Any) -> Edit:
    """The smallest set of superpixels found whose hiding changes the top-1 class, 1-minimal (module docstring).

    `target` is the class to move away from: None (or the top-1 class itself); anything else is refused, since
    the search changes the top-1 class. Within `budget` forward passes and nothing found: `found` False,
    `changed` empty, and `message` says so.
    """
    return run("counterfactual", clf, img, target, seed, params)


def sufficient(clf: Classifier, img: Image.Image, target: int | None = None, seed: int = 0, **params: Any) -> Edit:
    """The smallest set of superpixels found that alone, everything else hidden, keeps the top-1 class, 1-minimal."""
    return run("sufficient", clf, img, target, seed, params)


def superpixels(pixels: np.ndarray, seed: int = 0, **params: Any) -> np.ndarray:
    """The superpixels the searches cut the model view into (their `segmentation` and `n_segments`, defaults
    included): an int (H, W) map."""
    chosen = resolve(params)
    return segment(pixels, chosen["segmentation"], chosen["n_segments"], seed)


def edited_view(pixels: np.ndarray, segments: np.ndarray, hidden: Collection[int], fill: str = "blur") -> np.ndarray:
    """The uint8 model view with the `hidden` superpixels replaced by the fill: an edit made by hand."""
    shown = np.ones(int(segments.max()) + 1, bool)
    shown[list(hidden)] = False
    return np.rint(hide_segments(pixels, segments, shown[None], hidden_image(pixels, fill, segments))[0]).astype(
        np.uint8
    )


def edited_image(clf: Classifier, img: Image.Image, segments: np.ndarray, hidden: Collection[int]) -> Image.Image:
    """The photo itself with the `hidden` superpixels of its model view blurred (as `edited_view` blurs them):
    each pixel of the photo inside the square the model sees takes the fate of the view pixel it lands on;
    the blur is the view's, scaled to the photo. What the panels explain when asked to explain the edit."""
    photo = np.asarray(img.convert("RGB"), dtype=np.float32)
    left, top, side = clf.crop_box(img)
    size = segments.shape[0]
    rows, cols = np.arange(photo.shape[0]), np.arange(photo.shape[1])
    v = np.floor((rows + 0.5 - top) * size / side).astype(int)
    u = np.floor((cols + 0.5 - left) * size / side).astype(int)
    inside = (v[:, None] >= 0) & (v[:, None] < size) & (u[None, :] >= 0) & (u[None, :] < size)
    hidden_view = np.isin(segments, list(hidden))
    mask = inside & hidden_view[np.clip(v, 0, size - 1)[:, None], np.clip(u, 0, size - 1)[None, :]]
    sigma = side / 8  # `hidden_image`'s blur (an eighth of the view's side), in the photo's pixels
    blurred = np.stack([gaussian_filter(photo[..., c], sigma, mode="nearest") for c in range(3)], axis=-1)
    return Image.fromarray(np.rint(np.where(mask[..., None], blurred, photo)).astype(np.uint8))


def clicked(segments: np.ndarray, click: Mapping[str, Any]) -> int:
    """The superpixel under a click on the view drawn `click["width"]` x `click["height"]` pixels wide."""
    rows, cols = segments.shape
    y = min(max(int(click["y"] * rows / max(click["height"], 1)), 0), rows - 1)
    x = min(max(int(click["x"] * cols / max(click["width"], 1)), 0), cols - 1)
    return int(segments[y, x])


def resolve(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter checked and defaulted; ValueError for an unknown one."""
    known = {p.name: p for p in PARAMS}
    unknown = set(params) - set(known)
    if unknown:
        raise ValueError(f"unknown parameter {sorted(unknown)[0]!r}; the what-if parameters are {', '.join(known)}")
    return {name: p.check(params.get(name, p.default)) for name, p in known.items()}


def run(kind: str, clf: Classifier, img: Image.Image, target: int | None, seed: int, params: Mapping[str, Any]) -> Edit:
    check_inputs(clf, img, None)
    seed, chosen = check_seed(seed), resolve(params)
    started = time.perf_counter()
    pixels = clf.input_image(img)
    segments = segment(pixels, chosen["segmentation"], chosen["n_segments"], seed)
    fill_image = hidden_image(pixels, chosen["fill"], segments)
    prediction = clf.predict(img, k=1)
    top = prediction.top[0][0]
    if target is not None and clf.resolve_target(target, img) != top:
        raise ValueError(
            f"the {kind} set is about the top-1 class ({clf.labels[top]}, {top}); target {target} is not it"
        )
    search = Search(clf, pixels, segments, fill_image, top, float(prediction.probs[top]), chosen["budget"])
    show_members = kind == "sufficient"
    members = best_first(search, show_members)
    if members is not None:
        members = pruned(search, members, show_members)
    return result(kind, search, members, chosen, time.perf_counter() - started)


def keeps(classes: np.ndarray, before: int, show_members: bool) -> np.ndarray:
    """Whether each outcome is what the search wants: the class changed (counterfactual) or kept (sufficient)."""
    return classes == before if show_members else classes != before


def best_first(search: Search, show_members: bool) -> frozenset[int] | None:
    """A set whose edit does what the search wants, found best first within the budget; None if none is."""
    empty: frozenset[int] = frozenset()
    classes, _ = search.outcomes(search.mask(empty, show_members)[None])
    if keeps(classes, search.before, show_members)[0]:
        return empty  # the fully hidden image already keeps the class (sufficient): nothing need be shown
    singles = [frozenset({s}) for s in range(search.n)]
    if len(singles) > search.left():
        return None  # not even the map that guides the search fits in the budget
    classes, probability = search.outcomes(np.stack([search.mask(g, show_members) for g in singles]))
    score = -probability if show_members else probability  # lower is better: the map that guides the search
    ranked = [int(s) for s in np.argsort(score, kind="stable")]
    wanted = keeps(classes, search.before, show_members)
    if wanted.any():
        return next(singles[s] for s in ranked if wanted[s])
    order = itertools.count()
    queue = [(float(score[s]), next(order), singles[s]) for s in ranked]
    heapq.heapify(queue)
    seen = set(singles)
    while queue and search.left() > 0:
        base = heapq.heappop(queue)[2]
        grown = [base | {s} for s in ranked if s not in base and base | {s} not in seen][: min(BRANCHES, search.left())]
        if not grown:
            continue
        seen.update(grown)
        classes, probability = search.outcomes(np.stack([search.mask(g, show_members) for g in grown]))
        wanted = keeps(classes, search.before, show_members)
        if wanted.any():
            return grown[int(np.flatnonzero(wanted)[0])]  # the first in the map's order
        for candidate, p in zip(grown, probability, strict=True):
            heapq.heappush(queue, (float(-p if show_members else p), next(order), candidate))
    return None


def pruned(search: Search, members: frozenset[int], show_members: bool) -> frozenset[int]:
    """Members dropped one at a time while the edit still does what it should, until none can be: 1-minimal.

    Not bounded by the budget (at most k(k+1)/2 passes for k members), so a found set is always 1-minimal.
    """
    changed = True
    while changed and len(members) > 1:
        changed = False
        for s in sorted(members):
            smaller = members - {s}
            classes, _ = search.outcomes(search.mask(smaller, show_members)[None])
            if keeps(classes, search.before, show_members)[0]:
                members, changed = smaller, True
                break
    return members


def result(kind: str, search: Search, members: frozenset[int] | None, params: dict[str, Any], seconds: float) -> Edit:
    show_members = kind == "sufficient"
    found = members is not None
    chosen = members if members is not None else frozenset()
    mask = search.mask(chosen, show_members) if found else np.ones(search.n, bool)
    edited = search.views(mask[None])[0]
    hidden = search.views(np.zeros((1, search.n), bool))[0]
    after, after_p = search.before, search.before_probability  # nothing found: the view as it was
    if found:  # the set's edit was run by the search: read back from the memory, no new pass
        classes, probability = search.outcomes(mask[None], count=False)
        after, after_p = int(classes[0]), float(probability[0])
    return Edit(
        kind=kind,
        segments=search.segments,
        changed=tuple(sorted(chosen)),
        pixels=edited.astype(np.uint8),  # exactly the view the search ran
        hidden=hidden.astype(np.uint8),
        before=search.before,
        after=after,
        before_probability=search.before_probability,
        after_probability=after_p,
        found=found,
        evaluations=search.evaluations,
        ran=search.ran,
        seconds=seconds,
        params=params,
        message=message(kind, search, chosen, found),
    )


def message(kind: str, search: Search, members: frozenset[int], found: bool) -> str:
    label = search.clf.labels[search.before]
    if not found:
        return (
            f"No set of superpixels was found within {search.budget} forward passes that "
            + (f"alone keeps {label}" if kind == "sufficient" else f"changes {label} when hidden")
            + f" ({search.n} superpixels); a larger budget, other superpixels or another fill may find one."
        )
    if kind == "sufficient":
        if not members:
            return f"{label} stays even with every superpixel hidden: the fill alone is enough for the model."
        return f"{len(members)} of {search.n} superpixels alone keep {label}; hiding any one of them loses it."
    return f"Hiding {len(members)} of {search.n} superpixels changes {label}; putting any one back restores it."
