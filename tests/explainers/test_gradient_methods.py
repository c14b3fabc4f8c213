"""Integrated Gradients and SmoothGrad from their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from whylabel import explainers, models


@pytest.mark.parametrize("target", [0, 2])
def test_integrated_gradients_of_a_linear_model_is_weight_times_input(tiny, noise_image, target):
    size = 8
    linear = tiny.Linear(size)
    clf = models.from_module(linear, tiny.labels, size, mean=(0, 0, 0), std=(1, 1, 1), crop=1.0)
    img = noise_image(size, size)

    att = explainers.explain(clf, img, "integrated_gradients", target=target, steps=4)

    x = clf.to_tensor(clf.input_image(img))[0].numpy()  # the black baseline is all zeros here
    expected = (linear.weights(target, size) * x).sum(axis=0)
    np.testing.assert_allclose(att.heatmap, expected, rtol=1e-4, atol=1e-6)
    assert att.extras["relative_gap"] < 1e-4


def test_integrated_gradients_completeness_gap_on_the_real_model_at_default_steps(lite0):
    img = models.sample_image("chelsea (cat)")

    att = explainers.explain(lite0, img, "integrated_gradients")

    assert att.params["steps"] == 200  # 50 left an 11% gap on this photo, 200 leaves 3%
    assert abs(att.extras["completeness_gap"]) < 0.05 * abs(att.extras["score_change"])


@pytest.mark.parametrize("baseline", ["black", "blur", "noise"])
def test_integrated_gradients_adds_up_for_every_baseline(tiny, noise_image, baseline):
    size = 8
    clf = models.from_module(tiny.Linear(size), tiny.labels, size, crop=1.0)

    att = explainers.explain(clf, noise_image(size, size), "integrated_gradients", target=1, baseline=baseline)

    assert float(att.heatmap.sum()) == pytest.approx(att.extras["score_change"], rel=1e-4, abs=1e-5)


def test_smoothgrad_without_noise_is_saliency(tiny_clf, noise_image):
    img = noise_image(16, 16)

    smooth = explainers.explain(tiny_clf, img, "smoothgrad", target=1, noise=0.0, samples=3)
    plain = explainers.explain(tiny_clf, img, "saliency", target=1)

    np.testing.assert_allclose(smooth.heatmap, plain.heatmap, rtol=1e-5, atol=1e-7)


def test_smoothgrad_of_a_linear_model_is_its_saliency_at_any_noise(tiny, noise_image):
    size = 8
    clf = models.from_module(tiny.Linear(size), tiny.labels, size, crop=1.0)
    img = noise_image(size, size)

    smooth = explainers.explain(clf, img, "smoothgrad", target=0, noise=0.5, samples=5)

    np.testing.assert_allclose(smooth.heatmap, explainers.explain(clf, img, "saliency", target=0).heatmap, rtol=1e-5)


def test_smoothgrad_noise_changes_the_map_of_a_nonlinear_model(tiny_clf, noise_image):
    img = noise_image(16, 16)
    a = explainers.explain(tiny_clf, img, "smoothgrad", target=1, noise=0.3, samples=8, seed=0)
    b = explainers.explain(tiny_clf, img, "smoothgrad", target=1, noise=0.3, samples=8, seed=1)
    assert not np.allclose(a.heatmap, b.heatmap)
    assert not np.allclose(a.heatmap, explainers.explain(tiny_clf, img, "saliency", target=1).heatmap)


def test_the_caption_states_the_completeness_gap(tiny, noise_image):
    from whylabel import render

    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0)
    att = explainers.explain(clf, noise_image(16, 16), "integrated_gradients", target=0, steps=4)

    text = render.caption(att)

    assert f"completeness gap {att.extras['completeness_gap']:+.3g}" in text
    assert f"({att.extras['relative_gap']:.1%} of the score change)" in text


def test_gradcam_is_the_gradient_weighted_sum_of_feature_maps(tiny, noise_image):
    torch = pytest.importorskip("torch")
    module = tiny.TinyConv()
    clf = models.from_module(module, tiny.labels, 16, crop=1.0)
    img = noise_image(16, 16)

    att = explainers.explain(clf, img, "gradcam", target=1)

    x = clf.to_tensor(clf.input_image(img)).requires_grad_(True)
    feature = module.conv(x)
    feature.retain_grad()
    module.head(module.pool(module.act(feature)).flatten(1))[0, 1].backward()
    weights = feature.grad.mean(dim=(2, 3), keepdim=True)  # alpha_k: mean gradient of each map
    expected = torch.relu((weights * feature).sum(dim=1))[0].detach().numpy()
    np.testing.assert_allclose(att.heatmap, expected, rtol=1e-4, atol=1e-6)
    assert att.extras["resolution"] == (16, 16)


def test_guided_backprop_is_refused_where_captum_would_return_the_plain_gradient(lite0):
    with pytest.raises(ValueError, match="ReLU6"):
        explainers.explain(lite0, models.sample_image("chelsea (cat)"), "guided_backprop")
