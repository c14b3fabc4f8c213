"""Trust scores from their definitions: faithfulness against a random map, the randomisation sanity check
(Adebayo et al., 2018) and stability over seeds."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import numpy as np
import pytest
import torch
from scipy.ndimage import sobel
from scipy.stats import spearmanr

from whylabel import explainers, models, trust
from whylabel.explainers import registry
from whylabel.explainers.base import Explainer, Job
from whylabel.trust.agreement import rank_correlation, top_overlap
from whylabel.trust.sanity import cascade_depths, layers_top_down, randomised, sanity_cascade


class Edges(Explainer):
    """A "method" that ignores the model: the image's edge strength (what the sanity check must catch)."""

    name = "edges"
    title = paper = paper_url = how_to_read = "test only"
    signed = False

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        grey = np.asarray(job.pixels, np.float64).mean(axis=-1)
        return np.hypot(sobel(grey, axis=0), sobel(grey, axis=1)), {}


@pytest.fixture(scope="module")
def mnist() -> models.Classifier:
    return models.load("mnist_cnn")


@pytest.fixture(scope="module")
def digit():
    return models.sample_image("mnist digit 3")


def test_evaluate_reports_both_curves_for_the_map_and_a_random_one(tiny):
    clf = models.from_module(
        tiny.TopLeftBrightness(), ["top-left", "b", "c"], 32, mean=(0,) * 3, std=(1,) * 3, crop=1.0
    )
    img, _ = tiny.quadrant_scene(32)
    att = explainers.explain(clf, img, "occlusion", target=0, window=8, stride=8)

    scores = trust.evaluate(att)

    assert set(scores) >= {"deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc", "curves"}
    assert scores["deletion_auc"] < scores["random_deletion_auc"]
    assert scores["insertion_auc"] > scores["random_insertion_auc"]
    assert len(scores["curves"]["deletion"].probabilities) == 21


def test_sanity_tells_a_model_explanation_from_an_edge_detector(monkeypatch, mnist, digit):
    monkeypatch.setitem(registry.REGISTRY, "edges", Edges)

    saliency = trust.sanity(explainers.Request.make(mnist, digit, "saliency")).correlation
    edges = trust.sanity(explainers.Request.make(mnist, digit, "edges")).correlation

    assert abs(saliency) < trust.PASS_BELOW, saliency
    assert edges > 0.95, edges


def test_randomising_copies_and_leaves_the_trained_model_alone(mnist, digit):
    before = {k: v.clone() for k, v in mnist.module.state_dict().items()}

    fully = randomised(mnist, None, seed=0)
    top = randomised(mnist, 1, seed=0)

    after = mnist.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    top_name = layers_top_down(mnist.module)[0][0]
    changed = [k for k, v in top.module.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and all(k.startswith(top_name + ".") for k in changed), changed
    assert all(not torch.equal(v, before[k]) for k, v in fully.module.state_dict().items() if v.is_floating_point())


def test_a_randomised_copy_reuses_the_engine_batch_size_and_matches_its_own_torch_logits(mnist, digit):
    copy = randomised(mnist, None, seed=0)

    fast = copy.engine()

    assert fast.batch_size == mnist.engine().batch_size and list(fast.rates) == [fast.batch_size]
    pixels = copy.input_image(digit)[None].astype(np.float32)
    np.testing.assert_allclose(fast.logits(pixels), copy.logits(pixels).numpy(), rtol=1e-3, atol=1e-4)


def test_sanity_cascade_has_one_step_per_layer_and_ends_at_the_full_randomisation(mnist, digit):
    steps = sanity_cascade(explainers.Request.make(mnist, digit, "saliency"))

    assert [s["layers"] for s in steps] == list(range(1, len(layers_top_down(mnist.module)) + 1))
    assert steps[-1]["correlation"] == pytest.approx(
        trust.sanity(explainers.Request.make(mnist, digit, "saliency")).correlation
    )
    assert all(-1 <= s["correlation"] <= 1 and s["heatmap"].shape == (28, 28) for s in steps)


def test_a_quick_cascade_runs_the_chosen_depths_only(mnist, digit):
    depths = cascade_depths(mnist)

    steps = sanity_cascade(explainers.Request.make(mnist, digit, "saliency"), depths=depths)

    assert [s["layers"] for s in steps] == depths
    assert depths[0] == 1 and depths[-1] == len(layers_top_down(mnist.module))
    with pytest.raises(ValueError, match="depths"):
        sanity_cascade(explainers.Request.make(mnist, digit, "saliency"), depths=[0])


@pytest.mark.parametrize("method", ["saliency", "occlusion", "shap"])
def test_stability_is_exactly_one_for_deterministic_methods(tiny_clf, noise_image, method):
    assert trust.stability(explainers.Request.make(tiny_clf, noise_image(16, 16), method, target=0)) == 1.0


def test_stability_of_lime_is_in_zero_one_and_below_one(tiny_clf, noise_image):
    value = trust.stability(
        explainers.Request.make(tiny_clf, noise_image(16, 16), "lime", target=0, samples=12, n_segments=16)
    )

    assert 0.0 <= value < 1.0


def test_stability_needs_two_seeds_and_valid_params(tiny_clf, noise_image):
    with pytest.raises(ValueError, match="two different seeds"):
        trust.stability(explainers.Request.make(tiny_clf, noise_image(16, 16), "lime"), seeds=(1, 1))
    with pytest.raises(ValueError, match="window"):
        explainers.Request.make(tiny_clf, noise_image(16, 16), "occlusion", window=0)


def test_rank_correlation_and_top_overlap_from_their_definitions():
    a = np.arange(100, dtype=float).reshape(10, 10)
    assert rank_correlation(a, a**3) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    assert rank_correlation(a, np.zeros_like(a)) == 0.0  # a constant map ranks nothing
    assert top_overlap(a, a) == 1.0
    assert top_overlap(a, -a) == 0.0


def test_agreement_is_symmetric_with_a_unit_diagonal():
    rng = np.random.default_rng(0)
    a = rng.random((6, 6))
    matrix = trust.agreement([a, a**2, -a, rng.random((6, 6))])

    np.testing.assert_allclose(np.diag(matrix), 1.0)
    np.testing.assert_allclose(matrix, matrix.T)
    assert matrix[0, 1] == pytest.approx(1.0)  # a monotone transform ranks the same
    assert matrix[0, 2] == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("correlation", "passed"), [(0.0, True), (0.49, True), (-0.49, True), (0.5, False), (-0.9, False)]
)
def test_the_sanity_verdict_follows_its_stated_rule(correlation, passed):
    verdict = trust.verdict(correlation)

    assert verdict.passed is passed
    assert f"below {trust.PASS_BELOW}" in verdict.rule
    assert verdict.record() == {"correlation": correlation, "passed": passed, "rule": verdict.rule}
    assert verdict.says.startswith("passes" if passed else "fails")


def gradient_map(module: torch.nn.Module, x: torch.Tensor, target: int) -> np.ndarray:
    """Saliency by its definition, with torch's autograd alone: max over channels of |d logit(target) / d x|."""
    x = x.clone().requires_grad_(True)
    module(x)[0, target].backward()
    return x.grad[0].abs().amax(dim=0).numpy()


def test_sanity_is_the_rank_correlation_with_the_map_of_a_model_reinitialised_top_down(tiny, noise_image):
    """Adebayo et al. (2018) on conftest's TinyConv: re-draw the weights from the top layer down (head, then conv),
    each layer with its own initialisation from the request's seed, on a copy; recompute the gradient map; the
    score is Spearman's rho (scipy) between the trained and the randomised maps; it passes below PASS_BELOW."""
    net = tiny.TinyConv()
    clf = models.from_module(net, tiny.labels, 16, mean=(0, 0, 0), std=(1, 1, 1), crop=1.0)
    img = noise_image(16, 16, seed=4)
    target = 1
    request = explainers.Request.make(clf, img, "saliency", target=target, seed=3)

    verdict = trust.sanity(request)
    (top_only,) = sanity_cascade(request, depths=[1])

    x = torch.tensor(np.asarray(img, np.float32).transpose(2, 0, 1)[None] / 255)  # mean 0, std 1
    trained = gradient_map(net, x, target)

    def reinitialised(layers: list[str]) -> np.ndarray:
        copy = deepcopy(net)
        with torch.random.fork_rng():
            torch.manual_seed(3)  # the request's seed
            for name in layers:
                getattr(copy, name).reset_parameters()
        return gradient_map(copy, x, target)

    fully, head_only = reinitialised(["head", "conv"]), reinitialised(["head"])
    expected = spearmanr(trained.ravel(), fully.ravel()).statistic
    assert verdict.correlation == pytest.approx(expected, abs=1e-6)
    assert verdict.passed is bool(abs(expected) < trust.PASS_BELOW)
    assert top_only["correlation"] == pytest.approx(spearmanr(trained.ravel(), head_only.ravel()).statistic, abs=1e-6)
    np.testing.assert_allclose(top_only["heatmap"], head_only, rtol=1e-5, atol=1e-8)
    assert not np.allclose(fully, trained, rtol=1e-2) and abs(expected) < 0.99  # the weights did change the map
    np.testing.assert_allclose(explainers.explain(clf, img, "saliency", target=target).heatmap, trained, rtol=1e-5)


def test_every_metric_says_which_way_is_better_and_what_it_needs():
    metrics = trust.METRICS

    assert not metrics["deletion_auc"].higher_is_better and metrics["insertion_auc"].higher_is_better
    assert metrics["stability"].higher_is_better and not metrics["sanity"].higher_is_better
    assert metrics["deletion_auc"].needs == (trust.metrics.FORWARD,)  # a forward-only model can be scored
    assert trust.metrics.WEIGHTS in metrics["sanity"].needs
    assert all(m.better in ("higher is better", "lower is better") and m.about for m in metrics.values())
