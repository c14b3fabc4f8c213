"""Contrastive targets, "why A rather than B", from the definition: the map of score(A) - score(B)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from whylabel import explainers, models, trust
from whylabel.explainers.forward import softmax

A, B = 0, 2


def linear_clf(tiny, size: int = 8):
    linear = tiny.Linear(size)
    return linear, models.from_module(linear, tiny.labels, size, mean=(0, 0, 0), std=(1, 1, 1), crop=1.0)


def test_saliency_rather_than_b_is_the_gradient_of_the_logit_difference(tiny, noise_image):
    linear, clf = linear_clf(tiny)

    att = explainers.explain(clf, noise_image(8, 8), "saliency", target=A, contrast=B)

    expected = np.abs(linear.weights(A, 8) - linear.weights(B, 8)).max(axis=0)
    np.testing.assert_allclose(att.heatmap, expected, rtol=1e-5, atol=1e-7)
    assert (att.contrast, att.contrast_label) == (B, "fish")


def test_integrated_gradients_rather_than_b_is_the_weight_difference_times_input(tiny, noise_image):
    linear, clf = linear_clf(tiny)
    img = noise_image(8, 8)

    att = explainers.explain(clf, img, "integrated_gradients", target=A, contrast=B, steps=4)

    x = clf.to_tensor(clf.input_image(img))[0].numpy()
    expected = ((linear.weights(A, 8) - linear.weights(B, 8)) * x).sum(axis=0)
    np.testing.assert_allclose(att.heatmap, expected, rtol=1e-4, atol=1e-6)
    assert att.extras["relative_gap"] < 1e-4


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("occlusion", {"window": 4, "stride": 4}),
        ("integrated_gradients", {"steps": 16}),
        ("lime", {"samples": 60, "n_segments": 8}),
    ],
)
def test_a_method_linear_in_the_score_gives_the_difference_of_the_two_maps(tiny_clf, noise_image, method, params):
    """Occlusion's drops, IG's path integral and LIME's least-squares fit are all linear in the score."""
    img = noise_image(16, 16, seed=3)

    both = explainers.explain(tiny_clf, img, method, target=A, contrast=B, **params)
    a = explainers.explain(tiny_clf, img, method, target=A, **params)
    b = explainers.explain(tiny_clf, img, method, target=B, **params)

    np.testing.assert_allclose(both.heatmap, a.heatmap - b.heatmap, rtol=1e-3, atol=1e-5)
    assert np.abs(both.heatmap).max() > 0


def test_shap_rather_than_b_adds_up_to_the_change_in_the_probability_difference(tiny_clf, noise_image):
    img = noise_image(16, 16, seed=3)

    att = explainers.explain(tiny_clf, img, "shap", target=A, contrast=B, evaluations=40, fill="black")

    p_image = softmax(tiny_clf.logits(tiny_clf.input_image(img)).numpy())[0]
    p_hidden = softmax(tiny_clf.logits(np.zeros((16, 16, 3), np.uint8)).numpy())[0]
    difference = (p_image[A] - p_image[B]) - (p_hidden[A] - p_hidden[B])
    assert float(att.heatmap.sum()) == pytest.approx(difference, abs=1e-4)
    assert att.extras["base_value"] == pytest.approx(p_hidden[A] - p_hidden[B], abs=1e-5)


def test_swapping_the_two_classes_negates_a_signed_map(tiny_clf, noise_image):
    img = noise_image(16, 16)

    ab = explainers.explain(tiny_clf, img, "occlusion", target=A, contrast=B, window=4, stride=4)
    ba = explainers.explain(tiny_clf, img, "occlusion", target=B, contrast=A, window=4, stride=4)

    np.testing.assert_allclose(ab.heatmap, -ba.heatmap, rtol=1e-5, atol=1e-6)


def test_the_contrast_may_be_a_label(tiny_clf, noise_image):
    att = explainers.explain(tiny_clf, noise_image(16, 16), "saliency", target="cat", contrast="fish")

    assert (att.target, att.contrast) == (A, B)


@pytest.mark.parametrize(
    ("contrast", "message"),
    [(A, "must differ from the target"), (3, "contrast: target 3 is outside"), ("whale", "contrast: unknown label")],
)
def test_a_bad_contrast_is_refused_with_a_clear_message(tiny_clf, noise_image, contrast, message):
    with pytest.raises(ValueError, match=message):
        explainers.explain(tiny_clf, noise_image(16, 16), "saliency", target=A, contrast=contrast)


def test_without_a_contrast_nothing_changes(tiny_clf, noise_image):
    img = noise_image(16, 16)

    att = explainers.explain(tiny_clf, img, "occlusion", target=A, contrast=None, window=4, stride=4)

    assert att.contrast is None and att.contrast_label is None
    plain = explainers.explain(tiny_clf, img, "occlusion", target=A, window=4, stride=4)
    np.testing.assert_array_equal(att.heatmap, plain.heatmap)


def test_faithfulness_curves_follow_the_probability_difference(tiny_clf, noise_image):
    img = noise_image(16, 16)
    att = explainers.explain(tiny_clf, img, "saliency", target=A, contrast=B)

    scores = trust.evaluate(att, steps=4, fill="black")

    p_image = softmax(tiny_clf.logits(tiny_clf.input_image(img)).numpy())[0]
    p_black = softmax(tiny_clf.logits(np.zeros((16, 16, 3), np.uint8)).numpy())[0]
    deletion = scores["curves"]["deletion"].probabilities
    assert deletion[0] == pytest.approx(p_image[A] - p_image[B], abs=1e-5)
    assert deletion[-1] == pytest.approx(p_black[A] - p_black[B], abs=1e-5)
    assert scores["score"] == "p(cat) - p(fish)"


def test_the_sanity_cascade_keeps_the_contrast(tiny_clf, noise_image):
    img = noise_image(16, 16)

    steps = trust.sanity_cascade(explainers.Request.make(tiny_clf, img, "saliency", target=A, contrast=B), depths=[1])

    randomised = trust.randomised(tiny_clf, 1)
    contrastive = explainers.explain(randomised, img, "saliency", target=A, contrast=B)
    plain = explainers.explain(randomised, img, "saliency", target=A)
    np.testing.assert_array_equal(steps[0]["heatmap"], contrastive.heatmap)
    assert not np.allclose(steps[0]["heatmap"], plain.heatmap, rtol=1e-2)  # dropping the contrast would show
    trained = explainers.explain(tiny_clf, img, "saliency", target=A, contrast=B)
    expected = spearmanr(trained.heatmap.ravel(), contrastive.heatmap.ravel()).statistic
    assert steps[0]["correlation"] == pytest.approx(expected, abs=1e-9)


def test_stability_scores_the_maps_of_the_contrast(tiny_clf, noise_image):
    """The seeds' maps are "A rather than B" maps: their mean is the mean of the contrastive maps computed
    directly, not of the plain maps of A, and the score is their mean pairwise Spearman (scipy), clipped."""
    img = noise_image(16, 16)
    params = {"samples": 20, "n_segments": 6}
    seeds = (0, 1, 2)
    request = explainers.Request.make(tiny_clf, img, "lime", target=A, contrast=B, **params)

    details = trust.stability_details(request, seeds)
    score = trust.stability(request, seeds)

    def maps(contrast: int | None) -> list[np.ndarray]:
        return [
            explainers.explain(tiny_clf, img, "lime", target=A, contrast=contrast, seed=s, **params).heatmap
            for s in seeds
        ]

    contrastive, plain = maps(B), maps(None)
    np.testing.assert_allclose(details["mean"], np.mean(contrastive, axis=0), rtol=1e-6, atol=1e-9)
    assert not np.allclose(details["mean"], np.mean(plain, axis=0), rtol=1e-2, atol=1e-4)
    pairs = [(0, 1), (0, 2), (1, 2)]
    rhos = [spearmanr(contrastive[i].ravel(), contrastive[j].ravel()).statistic for i, j in pairs]
    assert details["spearman"] == pytest.approx(np.mean(rhos), abs=1e-9)
    assert score == pytest.approx(min(max(np.mean(rhos), 0.0), 1.0), abs=1e-9)
    assert not any(np.array_equal(contrastive[i], contrastive[j]) for i, j in pairs)  # LIME's seeds do differ
