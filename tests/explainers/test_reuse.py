"""Another class at no cost: a second target or contrast reuses the forward passes of the first, and its map is the
map a fresh classifier computes for that class alone."""

from __future__ import annotations

import numpy as np
import pytest

from whylabel import explainers, models
from whylabel.explainers.progressive import STABLE_OVERLAP
from whylabel.trust.faithfulness import random_baseline

SIZE = 20
CASES = [  # (target, contrast): plain classes, then contrasts either way round
    (1, None),
    (2, None),
    (0, 1),
    (1, 0),
    (2, 0),
]
REUSING = [("occlusion", {"window": 4, "stride": 2}), ("lime", {"samples": 400, "n_segments": 12})]


def counting_classifier(tiny):
    counting = tiny.Counting(tiny.TinyConv())
    clf = models.from_module(counting, tiny.labels, SIZE, crop=1.0, backend="torch")
    clf.engine()  # calibrated: what it runs is not counted below
    counting.images = 0
    return clf, counting


def fresh_map(tiny, clf, img, method, params, target, contrast):
    """The same map from a classifier with the same weights and nothing remembered."""
    fresh = models.from_module(clf.module, tiny.labels, SIZE, crop=1.0, backend="torch", batch_size=4)
    return explainers.explain(fresh, img, method, target=target, contrast=contrast, **params)


@pytest.mark.parametrize(("method", "params"), REUSING)
def test_another_target_or_contrast_runs_no_new_forward_pass(tiny, noise_image, method, params):
    clf, counting = counting_classifier(tiny)
    img = noise_image(SIZE, SIZE, seed=4)
    first = explainers.explain(clf, img, method, target=0, **params)
    assert first.stage.reused == 0 < counting.images

    for target, contrast in CASES:
        before = counting.images
        att = explainers.explain(clf, img, method, target=target, contrast=contrast, **params)

        assert counting.images == before, (target, contrast)  # not one image more
        assert att.stage.ran == 0 < att.stage.reused and "no new forward pass" in att.stage.label()
        alone = fresh_map(tiny, clf, img, method, params, target, contrast)
        np.testing.assert_allclose(att.heatmap, alone.heatmap, rtol=1e-5, atol=1e-7)
        assert not np.allclose(att.heatmap, first.heatmap)  # another class's map, not the first one again


EIGHT = tuple(f"class {k}" for k in range(8))
WATCHING = [
    ("occlusion", {"window": 2, "stride": 2, "refine": 0.5}),
    ("lime", {"samples": 600, "n_segments": 12, "watch": "top 5"}),
]


@pytest.mark.parametrize(("method", "params"), WATCHING)
def test_a_refinement_that_watches_the_top_five_costs_them_nothing_and_a_class_below_its_own_passes(
    tiny, noise_image, method, params
):
    """Occlusion coarse to fine and LIME's stopping rule look at the image's top 5 classes, whichever is asked."""
    counting = tiny.Counting(tiny.TinyConv(n_classes=len(EIGHT), seed=3))
    clf = models.from_module(counting, EIGHT, SIZE, crop=1.0, backend="torch")
    img = noise_image(SIZE, SIZE, seed=7)
    ranked = [index for index, _, _ in clf.predict(img, k=len(EIGHT)).top]
    first = explainers.explain(clf, img, method, target=ranked[0], **params)
    assert first.stage.ran > 0 and (method == "occlusion" or first.stage.watched == 5)

    asked = [(ranked[4], None), (ranked[1], ranked[3]), (ranked[2], ranked[0]), (ranked[6], None)]
    for target, contrast in asked:
        before = counting.images
        att = explainers.explain(clf, img, method, target=target, contrast=contrast, **params)
        ran = counting.images - before
        fresh = models.from_module(clf.module, EIGHT, SIZE, crop=1.0, backend="torch", batch_size=4)
        alone = explainers.explain(fresh, img, method, target=target, contrast=contrast, **params)
        np.testing.assert_allclose(att.heatmap, alone.heatmap, rtol=1e-5, atol=1e-7)
        assert att.stage.evaluations == alone.stage.evaluations and att.stage.ran == ran
        if target in ranked[:5]:
            assert ran == 0 < att.stage.reused, (target, contrast)
    assert method == "occlusion" or att.stage.watched == 6  # the class ranked 7th is watched too


def test_lime_watching_the_top_class_costs_any_other_class_nothing_and_says_when_its_map_had_not_settled(
    tiny, noise_image
):
    counting = tiny.Counting(tiny.TinyConv(n_classes=len(EIGHT), seed=3))
    clf = models.from_module(counting, EIGHT, SIZE, crop=1.0, backend="torch")
    img = noise_image(SIZE, SIZE, seed=7)
    params = {"samples": 600, "n_segments": 12}  # watch: the top class (the default)
    ranked = [index for index, _, _ in clf.predict(img, k=len(EIGHT)).top]
    first = explainers.explain(clf, img, "lime", target=ranked[0], **params)
    assert first.stage.watched == 1 and first.stage.evaluations < 600 and "own_overlap" not in first.extras

    for target, contrast in [(ranked[k], None) for k in range(1, 8)] + [(ranked[0], ranked[1]), (ranked[5], 0)]:
        before = counting.images
        att = explainers.explain(clf, img, "lime", target=target, contrast=contrast, **params)
        assert counting.images == before and att.stage.ran == 0, (target, contrast)  # any class, any contrast
        assert att.stage.evaluations == first.stage.evaluations  # stopped where the top class's map settled
        moved = att.extras["own_overlap"] < STABLE_OVERLAP
        assert any("Not settled" in w for w in att.warnings) == moved, (target, att.extras["own_overlap"])
        fresh = models.from_module(clf.module, EIGHT, SIZE, crop=1.0, backend="torch", batch_size=4)
        alone = explainers.explain(fresh, img, "lime", target=target, contrast=contrast, **params)
        np.testing.assert_allclose(att.heatmap, alone.heatmap, rtol=1e-5, atol=1e-7)


def test_shap_reuses_what_its_search_for_another_class_shares_and_gives_the_fresh_map(tiny, noise_image):
    clf, counting = counting_classifier(tiny)
    img = noise_image(SIZE, SIZE, seed=5)
    params = {"evaluations": 200}
    first = explainers.explain(clf, img, "shap", target=0, **params)
    ran_first = counting.images

    att = explainers.explain(clf, img, "shap", target=1, contrast=2, **params)

    new = counting.images - ran_first
    assert 0 < att.stage.reused < att.stage.evaluations  # the search follows the class: only its start is shared
    assert new == att.stage.ran == att.stage.evaluations - att.stage.reused and ran_first == first.stage.ran > 0
    alone = fresh_map(tiny, clf, img, "shap", params, 1, 2)
    np.testing.assert_allclose(att.heatmap, alone.heatmap, rtol=1e-5, atol=1e-9)


def test_the_random_baseline_for_another_class_runs_no_new_forward_pass(tiny, noise_image):
    clf, counting = counting_classifier(tiny)
    pixels = clf.input_image(noise_image(SIZE, SIZE, seed=6))
    random_baseline(clf, pixels, 0, maps=3)
    ran_first = counting.images

    second = random_baseline(clf, pixels, 2, contrast=1, maps=3)
    assert counting.images == ran_first > 0

    fresh = models.from_module(clf.module, tiny.labels, SIZE, crop=1.0, backend="torch", batch_size=4)
    alone = random_baseline(fresh, pixels, 2, contrast=1, maps=3)
    for mode, curves in second.curves.items():
        for got, want in zip(curves, alone.curves[mode], strict=True):
            np.testing.assert_allclose(got.probabilities, want.probabilities, rtol=1e-6, atol=1e-9)
