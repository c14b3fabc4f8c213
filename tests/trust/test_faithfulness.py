"""Deletion and insertion curves, from their definition, on models whose evidence is known."""

from __future__ import annotations

import numpy as np
import pytest

from whylabel import explainers, models, trust
from whylabel.explainers.forward import softmax
from whylabel.explainers.hide import hidden_image
from whylabel.trust.faithfulness import Curve, RandomBaseline, curve, random_map, ranking

SIZE = 32


@pytest.fixture
def quadrant(tiny):
    """A model that only uses the top-left quadrant, its image, and the map that says so."""
    clf = models.from_module(
        tiny.TopLeftBrightness(), ["top-left", "b", "c"], SIZE, mean=(0,) * 3, std=(1,) * 3, crop=1.0
    )
    img, inside = tiny.quadrant_scene(SIZE)
    return clf, clf.input_image(img), inside.astype(np.float32)


def probability(clf, image) -> float:
    return float(softmax(clf.logits(np.asarray(image, np.float32)[None]).numpy())[0, 0])


@pytest.mark.parametrize("mode", ["deletion", "insertion"])
def test_curve_ends_are_the_full_and_the_hidden_image(quadrant, mode):
    clf, pixels, right = quadrant
    full, hidden = probability(clf, pixels), probability(clf, hidden_image(pixels, "blur"))

    c = curve(clf, pixels, right, target=0, mode=mode, steps=8)

    assert c.fractions[0] == 0 and c.fractions[-1] == 1 and len(c.probabilities) == 9
    first, last = (full, hidden) if mode == "deletion" else (hidden, full)
    assert c.probabilities[0] == pytest.approx(first, abs=1e-5)
    assert c.probabilities[-1] == pytest.approx(last, abs=1e-5)


@pytest.mark.parametrize("fill", ["black", "blur", "grey"])
def test_the_right_map_beats_random_and_the_mirrored_map(quadrant, fill):
    clf, pixels, right = quadrant
    maps = {"right": right, "random": random_map(right.shape), "mirrored": right[::-1, ::-1]}  # mirrored: the decoy
    margin = 0.1 * (probability(clf, pixels) - probability(clf, hidden_image(pixels, fill)))

    deletion = {name: curve(clf, pixels, m, 0, fill=fill).auc for name, m in maps.items()}
    insertion = {name: curve(clf, pixels, m, 0, mode="insertion", fill=fill).auc for name, m in maps.items()}

    assert margin > 0.02
    assert deletion["right"] + margin < min(deletion["random"], deletion["mirrored"])
    assert deletion["random"] < deletion["mirrored"]  # the wrong map is worse than no information
    assert insertion["right"] - margin > max(insertion["random"], insertion["mirrored"])
    assert insertion["random"] > insertion["mirrored"]


def test_auc_is_the_trapezoid_area():
    c = Curve("deletion", np.array([0.0, 0.5, 1.0]), np.array([1.0, 0.5, 0.0]))
    assert c.auc == pytest.approx(0.5)
    assert Curve("deletion", np.linspace(0, 1, 5), np.full(5, 0.3)).auc == pytest.approx(0.3)


def test_ranking_puts_the_most_positive_first_and_breaks_ties_without_raster_order():
    heatmap = np.zeros((8, 8), np.float32)
    heatmap[5, 6] = 2.0
    heatmap[0, 0] = -1.0

    order = ranking(heatmap)

    assert order[0] == 5 * 8 + 6 and order[-1] == 0
    assert not np.array_equal(order[1:-1], np.sort(order[1:-1]))  # ties shuffled, not row by row
    assert np.array_equal(order, ranking(heatmap))  # and the same every time


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"mode": "sideways"}, "mode"), ({"steps": 0}, "steps"), ({"fill": "pink"}, "fill")]
)
def test_bad_arguments_are_value_errors(quadrant, kwargs, match):
    clf, pixels, right = quadrant
    with pytest.raises(ValueError, match=match):
        curve(clf, pixels, right, 0, **kwargs)


def test_a_map_of_the_wrong_shape_is_refused(quadrant):
    clf, pixels, _ = quadrant
    with pytest.raises(ValueError, match="shape"):
        curve(clf, pixels, np.zeros((4, 4)), 0)


def test_the_verdict_compares_with_every_random_map_and_knows_which_way_is_better():
    def flat(auc: float) -> Curve:  # a constant curve over [0, 1] has its value as its area
        return Curve("deletion", np.array([0.0, 1.0]), np.array([auc, auc]))

    curves = {mode: tuple(flat(a) for a in (0.3, 0.4, 0.5)) for mode in ("deletion", "insertion")}
    baseline = RandomBaseline(curves, target=0, contrast=None, steps=1, fill="blur")

    assert baseline.range("deletion") == pytest.approx((0.3, 0.5))
    assert baseline.verdict("deletion", 0.29) == "better than every random map"
    assert baseline.verdict("deletion", 0.45) == "within the random maps' range"
    assert baseline.verdict("deletion", 0.51) == "worse than every random map"
    assert baseline.verdict("insertion", 0.51) == "better than every random map"
    assert baseline.verdict("insertion", 0.29) == "worse than every random map"


def test_one_baseline_serves_every_map_of_the_image_and_equals_its_own_random_maps(tiny):
    clf = models.from_module(
        tiny.TopLeftBrightness(), ["top-left", "b", "c"], SIZE, mean=(0,) * 3, std=(1,) * 3, crop=1.0
    )
    img, _ = tiny.quadrant_scene(SIZE)
    att = explainers.explain(clf, img, "occlusion", target=0, window=8, stride=8)
    baseline = trust.baseline_for(att)

    scores = trust.evaluate(att, baseline=baseline)

    pixels = clf.input_image(img)
    expected = [curve(clf, pixels, random_map(pixels.shape[:2], seed=s), 0).auc for s in range(trust.RANDOM_MAPS)]
    assert scores["random_deletion_range"] == pytest.approx((min(expected), max(expected)))
    assert scores["random_deletion_auc"] == pytest.approx(np.mean(expected))
    assert scores["verdicts"] == {
        "deletion": "better than every random map",
        "insertion": "better than every random map",
    }
    assert scores == trust.evaluate(att) | {"curves": scores["curves"]}  # computed alone: the same numbers
    with pytest.raises(ValueError, match="random baseline is for"):
        trust.evaluate(explainers.explain(clf, img, "saliency", target=1), baseline=baseline)
