"""Occlusion (Zeiler & Fergus, 2014) through Captum's `Occlusion`: slide a grey square, record the score drop."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from captum.attr import FeatureAblation
from captum.attr import Occlusion as CaptumOcclusion

from whylabel.explainers import blindspots, watched
from whylabel.explainers.base import Explainer, Job, Param
from whylabel.explainers.forward import IMAGES_PER_CALL, Counter, logits, raw_logits, single_torch_thread
from whylabel.explainers.progressive import Estimate
from whylabel.explainers.registry import register

GREY = 128
PREVIEW_ABOVE = 400
"""Passes from which an overlapping sweep shows a coarse preview first (400: about 2 s on EfficientNet-Lite0 here)."""
TILING_PREVIEW_ABOVE = 100
"""Passes from which a tiling shows a quarter of its squares first (100: about half a second on EfficientNet-Lite0
here; the default 197-pass tiling shows 49 squares after about 0.2 s)."""
MIN_TILES = 8
"""Squares per side from which a tiling (window = stride) is swept coarse to fine."""


@register
class Occlusion(Explainer):
    name = "occlusion"
    runs_module = False
    title = "Occlusion"
    paper = "Zeiler & Fergus (2014), Visualizing and Understanding Convolutional Networks"
    paper_url = "https://arxiv.org/abs/1311.2901"
    how_to_read = (
        "A grey square is slid over the image; each pixel shows the average drop in the target's logit "
        "when a square covering it is greyed out. Red: hiding it lowers the score (evidence for the class); "
        "blue: hiding it raises the score. Resolution is limited by the window and stride. With `refine` "
        "under 1, squares twice the size come first and only those where the top classes' scores changed "
        "most are then split, so a quiet area may show one value over four squares."
    )
    params = (
        Param(
            "window", 16, "Side of the grey square, in model-input pixels.", low=1, high=512, at_most_input_size=True
        ),
        Param(
            "stride",
            16,
            "Step between square positions, in pixels (at most the window).",
            low=1,
            high=512,
            at_most_input_size=True,
            at_most="window",
        ),
        Param(
            "refine",
            1.0,
            "1 greys every square of the window. Under 1, when the squares tile the image (stride = window): "
            "squares twice the window are greyed first, and those holding this share of the score change of any "
            "of the image's top 5 classes are split into squares of the window; the rest keep a quarter of their "
            "change per pixel (faster, coarser where little changed).",
            low=0.0,
            high=1.0,
        ),
    )

    @classmethod
    def warnings(cls, heatmap: np.ndarray, extras: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
        return blindspots.weak_fill(extras.get("weak_fill_share"), "grey")

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        window, stride = job.params["window"], job.params["stride"]
        height, width = job.pixels.shape[:2]
        counter = Counter(job, evaluations(width, height, window, stride) + 1)
        heatmap, evaluated = self.sweep(job, window, stride, counter)
        return heatmap, {"evaluations": evaluated, **counter.reuse(), "weak_fill_share": weak_share(job)}

    def estimates(self, job: Job) -> Iterator[Estimate]:
        """A preview, then the map asked for, sharing the squares they have in common (see `tiling_preview` and
        `sweep_preview`). A sweep too small for a preview worth its cost is its own first estimate."""
        window, stride = job.params["window"], job.params["stride"]
        height, width = job.pixels.shape[:2]
        passes = evaluations(width, height, window, stride) + 1
        if goes_coarse_to_fine(job.params, min(height, width)):
            yield from self.coarse_to_fine(job, window)
        elif stride == window and passes >= TILING_PREVIEW_ABOVE and min(height, width) >= 2 * window:
            yield from self.tiling_preview(job, window)
        elif passes >= PREVIEW_ABOVE and (coarse := sweep_preview(job.params, width, height)):
            yield from self.sweep_preview(job, coarse)
        else:
            heatmap, extras = self.compute(job)
            yield Estimate(heatmap, extras, extras["evaluations"], extras["evaluations"], final=True)

    def tiling_preview(self, job: Job, window: int) -> Iterator[Estimate]:
        """Squares that tile the image: every other square in each direction first (a quarter), each one's drop shown
        over the two-by-two block it starts, then Captum's sweep of them all.

        The preview's squares are among the sweep's (the same greyed images, bit for bit), so it costs one pass
        of its own: Captum greys the squares left out all at once, whose change is not used.
        """
        height, width = job.pixels.shape[:2]
        block = tiles(height, width, 2 * window)
        rows, cols = np.arange(height) // window, np.arange(width) // window
        anchor = (rows[:, None] % 2 == 0) & (cols[None, :] % 2 == 0)
        features = np.where(anchor, block, block.max() + 1)  # each anchor square its block's id; the rest one more
        counter, weak = Counter(job, evaluations(width, height, window, window) + 2), weak_share(job)
        drops = self.ablate(job, features, counter)
        lead = np.zeros(int(block.max()) + 1)
        lead[block[anchor]] = drops[anchor]
        preview = lead[block]  # every pixel: its block's anchor square's drop
        extras = {"evaluations": counter.done, **counter.reuse(), "weak_fill_share": weak}
        yield Estimate(preview, extras, counter.done, counter.total, preview=True)
        heatmap, _ = self.sweep(job, window, window, counter)
        extras = {"evaluations": counter.done, **counter.reuse(), "weak_fill_share": weak}
        yield Estimate(heatmap, extras, counter.done, counter.done, final=True)

    def sweep_preview(self, job: Job, coarse: tuple[int, int]) -> Iterator[Estimate]:
        """An overlapping sweep: the stride doubled first (window 16, stride 8: 197 of its 730 passes).

        With the same window the preview's windows are a subset of the sweep's, and the counter keeps their
        scores, so the preview costs no pass the map asked for would not make anyway.
        """
        window, stride = job.params["window"], job.params["stride"]
        height, width = job.pixels.shape[:2]
        fine_passes = evaluations(width, height, window, stride) + 1
        coarse_passes = evaluations(width, height, *coarse) + 1
        shared = coarse[0] == window  # same window: the preview's windows are among the fine sweep's
        counter = Counter(job, fine_passes if shared else coarse_passes + fine_passes)
        weak = weak_share(job)
        preview, done = self.sweep(job, *coarse, counter)
        extras = {"evaluations": done, **counter.reuse(), "weak_fill_share": weak}
        yield Estimate(preview, extras, done, counter.total, preview=True)
        heatmap, _ = self.sweep(job, window, stride, counter)
        extras = {"evaluations": counter.done, **counter.reuse(), "weak_fill_share": weak}
        yield Estimate(heatmap, extras, counter.done, counter.total, final=True)

    def coarse_to_fine(self, job: Job, window: int) -> Iterator[Estimate]:
        """Squares of twice the window first, then the ones that hold `refine` of the change split to the window.

        A first estimate at a quarter of the passes, and a map whose squares of the window match a full tiling's
        wherever the score changed most. A coarse square whose evidence for and against cancel is not split.
        """
        height, width = job.pixels.shape[:2]
        fine, coarse = tiles(height, width, window), tiles(height, width, 2 * window)
        counter = Counter(job, int(fine.max()) + int(coarse.max()) + 3)
        weak = weak_share(job)
        drops = self.ablate(job, coarse, counter)  # each pixel: the change when its coarse square is greyed
        preview = drops / squares_within(coarse, fine)[coarse]
        split = self.split(job, coarse, counter)
        extras = {"evaluations": counter.done, **counter.reuse(), "weak_fill_share": weak, "refined_share": 0.0}
        if not split.any():
            yield Estimate(preview, extras, counter.done, counter.done, final=True)
            return
        yield Estimate(preview, extras, counter.done, counter.total, preview=True)
        features = np.zeros(fine.shape, np.int64)
        features[split] = np.unique(fine[split], return_inverse=True)[1].ravel()
        features[~split] = features.max() + 1  # the unsplit rest: one more feature, whose change is not used
        counter.total = counter.done + int(features.max()) + 1
        heatmap = np.where(split, self.ablate(job, features, counter), preview)
        extras = {**extras, "evaluations": counter.done, **counter.reuse(), "refined_share": float(split.mean())}
        yield Estimate(heatmap, extras, counter.done, counter.done, final=True)

    def split(self, job: Job, coarse: np.ndarray, counter: Counter) -> np.ndarray:
        """(H, W) mask of the coarse squares to split: those holding `refine` of the change of any watched class.

        The watched classes (`explainers.watched`) are the same whatever class is asked, so another class splits
        the same squares and needs no forward pass the first did not run. Their drops come from the images the
        target's sweep has just scored: no pass of their own.
        """
        classes = watched.classes(job, raw_logits(job, job.pixels[None], counter)[0], watched.WATCHED)
        scores = lambda batch: torch.from_numpy(raw_logits(job, batch.numpy(), counter)[:, classes])  # noqa: E731
        drops = ablation(job, coarse, scores, None)[..., 0].numpy()  # (classes, H, W): every score's drop
        return np.logical_or.reduce([refined(coarse, d, job.params["refine"]) for d in drops])

    def ablate(self, job: Job, features: np.ndarray, counter: Counter) -> np.ndarray:
        """Captum's feature ablation: each pixel, the target's drop when its feature (an (H, W) id map) is greyed."""
        return ablation(job, features, lambda batch: logits(job, batch, counter), job.target)[0, :, :, 0].numpy()

    def sweep(self, job: Job, window: int, stride: int, counter: Counter) -> tuple[np.ndarray, int]:
        """Captum's occlusion map for one window and stride, and the passes it took."""
        x = torch.from_numpy(job.pixels.astype(np.float32))[None]  # (1, H, W, 3) pixels: the engine normalises
        before = counter.done
        with single_torch_thread():
            attribution = CaptumOcclusion(lambda batch: logits(job, batch, counter)).attribute(
                x,
                target=job.target,
                sliding_window_shapes=(window, window, 3),
                strides=(stride, stride, 3),
                baselines=float(GREY),
                perturbations_per_eval=IMAGES_PER_CALL,
            )
        return attribution[0].mean(dim=-1).numpy(), counter.done - before


def ablation(
    job: Job, features: np.ndarray, scores: Callable[[torch.Tensor], torch.Tensor], target: int | None
) -> torch.Tensor:
    """Captum's `FeatureAblation` of the pixels by features (an (H, W) id map, the same in every channel), greyed.

    `target` None: the drop of every score `scores` gives per image, stacked first.
    """
    x = torch.from_numpy(job.pixels.astype(np.float32))[None]
    mask = torch.from_numpy(features.astype(np.int64))[None, :, :, None]
    with single_torch_thread():
        return FeatureAblation(scores).attribute(
            x, target=target, baselines=float(GREY), feature_mask=mask, perturbations_per_eval=IMAGES_PER_CALL
        )


def sweep_preview(params: Mapping[str, Any], width: int, height: int) -> tuple[int, int] | None:
    """The window and stride of an overlapping sweep's preview (the stride doubled), or None where it saves little."""
    window, stride, size = params["window"], params["stride"], min(width, height)
    coarse = (min(max(window, 2 * stride), size), min(2 * stride, size))
    fine_passes = evaluations(width, height, window, stride) + 1
    if coarse == (window, stride) or (evaluations(width, height, *coarse) + 1) * 3 > fine_passes:
        return None
    return coarse


def goes_coarse_to_fine(params: Mapping[str, Any], size: int) -> bool:
    """Whether a sweep goes coarse to fine: a tiling of at least MIN_TILES squares a side, with refine under 1."""
    window = params["window"]
    return params["stride"] == window and params["refine"] < 1 and size >= MIN_TILES * window


def tiles(height: int, width: int, side: int) -> np.ndarray:
    """(H, W) ids of the squares of `side` that tile the image from its top left (the last ones cut by the edge)."""
    rows, cols = np.arange(height) // side, np.arange(width) // side
    return rows[:, None] * (cols[-1] + 1) + cols[None, :]


def squares_within(coarse: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """For each coarse square, how many fine squares it holds (4 inside the image, fewer at a cut edge)."""
    pairs = np.unique(np.stack([coarse.ravel(), fine.ravel()]), axis=1)
    return np.bincount(pairs[0], minlength=int(coarse.max()) + 1)


def refined(coarse: np.ndarray, drops: np.ndarray, share: float) -> np.ndarray:
    """(H, W) mask of the coarse squares to split: the fewest, largest |change| first, holding `share` of it all."""
    change = np.abs(np.bincount(coarse.ravel(), weights=drops.ravel()) / np.bincount(coarse.ravel()))
    order = np.argsort(-change, kind="stable")
    total = change.sum()
    if total == 0 or share <= 0:
        return np.zeros(coarse.shape, bool)
    needed = int(np.searchsorted(np.cumsum(change[order]), share * total)) + 1
    return np.isin(coarse, order[: min(needed, len(order))])


def weak_share(job: Job) -> float:
    """The share of the image the grey square leaves almost as it was (see `blindspots`)."""
    return blindspots.weak_share(job.pixels, np.full(job.pixels.shape, GREY, np.float32))


def evaluations(width: int, height: int, window: int, stride: int) -> int:
    """Positions of the square: Captum places it every `stride` pixels, the last one overhanging the edge if need be."""
    return (1 + -(-(width - window) // stride)) * (1 + -(-(height - window) // stride))
