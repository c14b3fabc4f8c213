"""Occlusion coarse to fine, from its definition: squares of twice the window, then the ones that matter split."""

from __future__ import annotations

import numpy as np
import pytest

from whylabel import explainers, models
from whylabel.explainers.methods.occlusion import refined, squares_within, tiles


def drop(weights: np.ndarray, x: np.ndarray, grey: np.ndarray, top: int, left: int, side: int) -> float:
    """f(x) - f(x with the square greyed), for the additive f(x) = sum(w * x)."""
    hidden = x.copy()
    hidden[:, top : top + side, left : left + side] = grey[:, top : top + side, left : left + side]
    return float((weights * x).sum() - (weights * hidden).sum())


def square_map(weights: np.ndarray, x: np.ndarray, grey: np.ndarray, side: int) -> np.ndarray:
    """Each pixel: the drop of the square of `side` that holds it, squares tiling from the top left."""
    size = x.shape[1]
    out = np.zeros((size, size))
    for top in range(0, size, side):
        for left in range(0, size, side):
            out[top : top + side, left : left + side] = drop(weights, x, grey, top, left, side)
    return out


def setting(tiny, noise_image, size: int):
    linear = tiny.Linear(size, bias=False)
    counting = tiny.Counting(linear)
    clf = models.from_module(counting, tiny.labels, size, crop=1.0, backend="torch")  # the module sees every pass
    img = noise_image(size, size, seed=3)
    pixels = clf.input_image(img)
    x = clf.to_tensor(pixels)[0].numpy().astype(np.float64)
    grey = clf.to_tensor(np.full_like(pixels, 128))[0].numpy().astype(np.float64)
    return clf, counting, img, linear.weights(1, size), x, grey


@pytest.mark.parametrize(("size", "window", "refine"), [(32, 4, 0.8), (35, 4, 0.5), (48, 6, 0.9)])
def test_the_first_estimate_is_each_double_square_drop_shared_by_the_squares_it_holds(
    tiny, noise_image, size, window, refine
):
    clf, _, img, weights, x, grey = setting(tiny, noise_image, size)
    request = explainers.Request.make(clf, img, "occlusion", target=1, window=window, stride=window, refine=refine)

    first, last = list(explainers.stages(request))

    coarse = square_map(weights, x, grey, 2 * window)
    held = squares_within(tiles(size, size, 2 * window), tiles(size, size, window))[tiles(size, size, 2 * window)]
    np.testing.assert_allclose(first.heatmap, coarse / held, rtol=1e-4, atol=1e-4)
    assert not first.stage.converged and last.stage.converged
    if size % (2 * window):  # a cut edge: its double squares hold fewer squares of the window
        assert held.min() < 4


def split_of(change: np.ndarray, coarse_ids: np.ndarray, refine: float) -> np.ndarray:
    """The fewest double squares, largest |change| first, holding `refine` of one class's change."""
    order = np.argsort(-change)
    needed = next(n for n in range(1, len(order) + 1) if change[order[:n]].sum() >= refine * change.sum() - 1e-9)
    return np.isin(coarse_ids, order[:needed])


@pytest.mark.parametrize(("size", "window", "refine"), [(32, 4, 0.8), (35, 4, 0.5), (48, 6, 0.9)])
@pytest.mark.parametrize("target", [0, 1])
def test_split_squares_equal_the_full_tiling_and_the_rest_keep_the_first_estimate(
    tiny, noise_image, size, window, refine, target
):
    clf, _, img, _, x, grey = setting(tiny, noise_image, size)
    linear = clf.module.inner

    att = explainers.explain(clf, img, "occlusion", target=target, window=window, stride=window, refine=refine)

    coarse_ids = tiles(size, size, 2 * window)
    splits = []
    for k in range(len(tiny.labels)):  # every class of three is among the top 5 watched
        coarse = square_map(linear.weights(k, size), x, grey, 2 * window)
        change = np.array([abs(coarse[coarse_ids == i][0]) for i in range(coarse_ids.max() + 1)])
        splits.append(split_of(change, coarse_ids, refine))
    split = np.logical_or.reduce(splits)  # a square is split when it matters to any watched class
    weights = linear.weights(target, size)
    fine, coarse = square_map(weights, x, grey, window), square_map(weights, x, grey, 2 * window)
    held = squares_within(coarse_ids, tiles(size, size, window))[coarse_ids]
    expected = np.where(split, fine, coarse / held)
    np.testing.assert_allclose(att.heatmap, expected, rtol=1e-4, atol=1e-4)
    assert 0 < split.mean() < 1 and not np.array_equal(split, splits[target])  # the union, not the target's own
    assert att.extras["refined_share"] == pytest.approx(split.mean())


def test_it_runs_the_double_squares_then_only_the_split_squares(tiny, noise_image):
    size, window = 32, 4
    clf, counting, img, *_ = setting(tiny, noise_image, size)
    clf.engine()
    counting.images = 0
    seen: list[float] = []

    att = explainers.explain(
        clf, img, "occlusion", target=1, window=window, stride=window, refine=0.5, progress=seen.append
    )

    split_squares = round(att.extras["refined_share"] * (size // window) ** 2)
    unsplit = ((size // window) ** 2 - split_squares) // 4
    rest = 0 if unsplit == 1 else 1  # the unsplit rest greyed at once: one double square's image, already run
    expected = 16 + 1 + split_squares + rest  # the double squares, the image, the split squares, the unsplit rest
    assert counting.images == att.extras["evaluations"] == att.stage.evaluations == expected
    assert expected < (size // window) ** 2 + 1  # fewer than the full tiling
    assert seen[-1] == 1.0 and seen[-2] < 1.0 and seen == sorted(seen)


def test_refine_one_is_the_full_tiling_and_zero_the_double_squares(tiny, noise_image):
    size, window = 32, 4
    clf, _, img, weights, x, grey = setting(tiny, noise_image, size)

    full = explainers.explain(clf, img, "occlusion", target=1, window=window, stride=window, refine=1.0)
    coarse = explainers.stages(
        explainers.Request.make(clf, img, "occlusion", target=1, window=window, stride=window, refine=0.0)
    )

    np.testing.assert_allclose(full.heatmap, square_map(weights, x, grey, window), rtol=1e-4, atol=1e-4)
    (only,) = list(coarse)
    np.testing.assert_allclose(only.heatmap, square_map(weights, x, grey, 2 * window) / 4, rtol=1e-4, atol=1e-4)
    assert only.stage.converged and only.extras["refined_share"] == 0.0


def test_nothing_is_split_when_nothing_changed():
    coarse = tiles(16, 16, 8)
    assert not refined(coarse, np.zeros((16, 16)), 0.8).any()
    drops = np.where(coarse == 2, 5.0, 0.0) + np.where(coarse == 1, -1.0, 0.0)
    assert np.array_equal(refined(coarse, drops, 0.8), coarse == 2)  # 5 of 6 is enough
    assert np.array_equal(refined(coarse, drops, 0.9), np.isin(coarse, [1, 2]))  # a negative change counts too


@pytest.mark.parametrize(("size", "window"), [(48, 4), (45, 4), (40, 3)])
def test_a_tiling_previews_every_other_square_then_gives_the_full_tiling(tiny, noise_image, size, window):
    """The default (refine 1): a quarter of the squares first, each shown over its two-by-two block, at one pass
    of its own; then every square, the same map for any class at no new pass."""
    clf, counting, img, weights, x, grey = setting(tiny, noise_image, size)
    clf.engine()
    counting.images = 0

    request = explainers.Request.make(clf, img, "occlusion", target=1, window=window, stride=window)
    preview, last = list(explainers.stages(request))

    fine = square_map(weights, x, grey, window)
    anchors = np.arange(0, size, 2 * window)
    expected = np.zeros((size, size))
    for top in anchors:
        for left in anchors:
            expected[top : top + 2 * window, left : left + 2 * window] = drop(weights, x, grey, top, left, window)
    np.testing.assert_allclose(preview.heatmap, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(last.heatmap, fine, rtol=1e-4, atol=1e-4)
    squares = (-(-size // window)) ** 2
    assert preview.stage.evaluations == len(anchors) ** 2 + 2  # its squares, the image, the rest greyed at once
    assert counting.images == last.stage.evaluations == squares + 2 and not preview.stage.converged

    before = counting.images
    other = explainers.explain(clf, img, "occlusion", target=2, contrast=0, window=window, stride=window)
    assert counting.images == before and other.stage.ran == 0
