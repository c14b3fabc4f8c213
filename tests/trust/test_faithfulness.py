"""Deletion and insertion curves, from their definition, on models whose evidence is known."""

from __future__ import annotations

import numpy as np
import pytest

from whylabel import models
from whylabel.explainers.forward import softmax
from whylabel.explainers.hide import hidden_image
from whylabel.trust.faithfulness import Curve, curve, random_map, ranking

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
