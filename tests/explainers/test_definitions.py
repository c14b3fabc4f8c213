"""Expected maps derived from each method's definition, on toy models where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from whylabel import explainers, models
from whylabel.explainers.methods.occlusion import evaluations

# --- saliency --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [0, 2])
def test_saliency_of_a_linear_model_is_the_largest_absolute_weight_per_pixel(tiny, noise_image, target):
    size = 8
    linear = tiny.Linear(size)
    clf = models.from_module(linear, tiny.labels, size, mean=(0, 0, 0), std=(1, 1, 1), crop=1.0)

    att = explainers.explain(clf, noise_image(size, size), "saliency", target=target)

    expected = np.abs(linear.weights(target, size)).max(axis=0)  # d logit / d input = w[target]
    np.testing.assert_allclose(att.heatmap, expected, rtol=1e-6)
    assert not np.allclose(expected, np.abs(linear.weights(1, size)).max(axis=0))


# --- guided backprop -------------------------------------------------------------------------------------------


class TwoLayer(torch.nn.Module):
    """logits = W2 @ relu(W1 @ flatten(x) + b1) + b2, with the ReLU a module (what guided backprop hooks)."""

    def __init__(self, size: int, hidden: int = 12, n_classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.fc1 = torch.nn.Linear(3 * size * size, hidden)
        self.act = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x.flatten(1))))


def numpy_of(layer: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
    return layer.weight.detach().numpy().astype(np.float64), layer.bias.detach().numpy().astype(np.float64)


def model_input(img: Image.Image) -> np.ndarray:
    """The (3, H, W) input for mean 0, std 1 and an image already at the input size: pixels / 255."""
    return np.asarray(img, np.float64).transpose(2, 0, 1) / 255


@pytest.mark.parametrize(("target", "contrast"), [(0, None), (2, None), (1, 0)])
def test_guided_backprop_of_a_two_layer_network_is_the_hand_computed_guided_gradient(
    tiny, noise_image, target, contrast
):
    """Springenberg et al. (2015): on the way back, a ReLU passes the gradient only where its forward input was
    positive and the gradient itself is positive. Here that is W1^T (u * mask), u = W2[target] (less W2[contrast]),
    mask = (W1 x + b1 > 0) & (u > 0); the map is its largest |value| over the colour channels."""
    size = 6
    net = TwoLayer(size)
    clf = models.from_module(net, tiny.labels, size, mean=(0, 0, 0), std=(1, 1, 1), crop=1.0)
    img = noise_image(size, size, seed=1)

    att = explainers.explain(clf, img, "guided_backprop", target=target, contrast=contrast)

    (w1, b1), (w2, _) = numpy_of(net.fc1), numpy_of(net.fc2)
    pre = w1 @ model_input(img).ravel() + b1
    upstream = w2[target] - (0 if contrast is None else w2[contrast])
    guided = w1.T @ (upstream * ((pre > 0) & (upstream > 0)))
    expected = np.abs(guided.reshape(3, size, size)).max(axis=0)
    np.testing.assert_allclose(att.heatmap, expected, rtol=1e-5, atol=1e-7)
    # The guided rule matters here: the plain gradient (ReLU mask only) gives another map.
    plain = w1.T @ (upstream * (pre > 0))
    assert ((pre > 0) & (upstream < 0)).any()
    assert not np.allclose(expected, np.abs(plain.reshape(3, size, size)).max(axis=0), rtol=1e-3)


def test_guided_backprop_of_a_small_cnn_is_the_hand_computed_guided_gradient(tiny, noise_image):
    """The same rule through conftest's TinyConv (3x3 conv with padding 1, ReLU, 2x2 average pool, linear),
    with the convolution, the pooling and their transposes written out as loops over the kernel."""
    size, target = 16, 1
    net = tiny.TinyConv()
    clf = models.from_module(net, tiny.labels, size, mean=(0, 0, 0), std=(1, 1, 1), crop=1.0)
    img = noise_image(size, size, seed=2)

    att = explainers.explain(clf, img, "guided_backprop", target=target)

    (kernel, bias), (head, _) = numpy_of(net.conv), numpy_of(net.head)
    x = np.pad(model_input(img), ((0, 0), (1, 1), (1, 1)))
    channels = kernel.shape[0]
    pre = np.zeros((channels, size, size)) + bias[:, None, None]
    for dy in range(3):
        for dx in range(3):
            pre += np.einsum("kc,chw->khw", kernel[:, :, dy, dx], x[:, dy : dy + size, dx : dx + size])
    # Each activation feeds one cell of the 2x2 average pool (an 8x8 block), flattened channel-major.
    cell = (np.arange(size) // (size // 2))[:, None] * 2 + (np.arange(size) // (size // 2))[None, :]
    upstream = head[target].reshape(channels, 4)[:, cell] / (size // 2) ** 2
    passed = upstream * ((pre > 0) & (upstream > 0))
    grad = np.zeros_like(x)
    for dy in range(3):
        for dx in range(3):
            grad[:, dy : dy + size, dx : dx + size] += np.einsum("kc,khw->chw", kernel[:, :, dy, dx], passed)
    expected = np.abs(grad[:, 1:-1, 1:-1]).max(axis=0)
    np.testing.assert_allclose(att.heatmap, expected, rtol=1e-5, atol=1e-8)
    assert ((pre > 0) & (upstream < 0)).any() and ((pre <= 0) & (upstream > 0)).any()  # both parts of the rule act


# --- occlusion -------------------------------------------------------------------------------------------------


def occlusion_expected(clf, weights: np.ndarray, pixels: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Average over the windows covering each pixel of f(x) - f(x with the window grey), for f(x) = sum(w * x)."""
    x = clf.to_tensor(pixels)[0].numpy().astype(np.float64)
    grey = clf.to_tensor(np.full_like(pixels, 128))[0].numpy().astype(np.float64)
    size = pixels.shape[0]
    total, count = np.zeros((size, size)), np.zeros((size, size))
    for top in range(0, size - window + 1, stride):
        for left in range(0, size - window + 1, stride):
            hidden = x.copy()
            hidden[:, top : top + window, left : left + window] = grey[:, top : top + window, left : left + window]
            drop = (weights * x).sum() - (weights * hidden).sum()
            total[top : top + window, left : left + window] += drop
            count[top : top + window, left : left + window] += 1
    assert (count > 0).all()
    return total / count


@pytest.mark.parametrize(
    ("size", "window", "stride"),
    [(12, 4, 4), (12, 3, 3), (12, 6, 6), (12, 12, 12), (8, 4, 2), (9, 3, 1)],
)
def test_occlusion_of_an_additive_model_is_the_hand_computed_drop(tiny, noise_image, size, window, stride):
    linear = tiny.Linear(size, bias=False)
    clf = models.from_module(linear, tiny.labels, size, crop=1.0)  # ImageNet mean/std: grey is not zero
    img = noise_image(size, size, seed=4)
    target = 1

    att = explainers.explain(clf, img, "occlusion", target=target, window=window, stride=stride)

    expected = occlusion_expected(clf, linear.weights(target, size), clf.input_image(img), window, stride)
    assert np.allclose(att.heatmap, expected, rtol=1e-4, atol=1e-5)
    if window == stride:  # non-overlapping windows: each one is a flat tile
        assert len(np.unique(att.heatmap)) <= (size // window) ** 2


@pytest.mark.parametrize(("size", "window", "stride"), [(16, 4, 4), (16, 5, 4), (16, 3, 2), (15, 4, 3), (16, 16, 3)])
def test_occlusion_evaluation_count_matches_the_images_the_model_sees(tiny, noise_image, size, window, stride):
    counting = tiny.Counting(tiny.TinyConv())
    clf = models.from_module(counting, tiny.labels, size, crop=1.0, backend="torch")  # the module sees every pass
    clf.engine()  # calibration's own passes are not counted
    counting.images = 0
    seen: list[float] = []

    att = explainers.explain(
        clf, noise_image(size, size), "occlusion", target=0, window=window, stride=stride, progress=seen.append
    )

    assert counting.images == evaluations(size, size, window, stride) + 1  # every window, plus the image itself
    assert seen[-1] == 1.0 and seen[-2] < 1.0  # progress reaches 1 only with the last batch
    assert np.isfinite(att.heatmap).all()


# --- LIME and SHAP on a model that only looks at one quadrant ----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params"),
    [
        # SLIC's grid follows the quadrant's straight edges; Felzenszwalb (the default, held to the known-answer
        # cases in test_known_answer) may join a strip of the quadrant to the background on a 32-px image.
        ("lime", {"samples": 50, "n_segments": 16, "fill": "black", "segmentation": "slic"}),
        ("lime", {"samples": 30, "n_segments": 12, "fill": "grey", "segmentation": "slic"}),
        ("shap", {"evaluations": 40}),
        ("shap", {"evaluations": 40, "fill": "black"}),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_lime_and_shap_rank_first_the_region_the_model_uses(tiny, method, params, seed):
    clf = models.from_module(
        tiny.TopLeftBrightness(), ["top-left", "b", "c"], 32, mean=(0, 0, 0), std=(1, 1, 1), crop=1.0
    )
    img, inside = tiny.quadrant_scene()

    heatmap = explainers.explain(clf, img, method, target=0, seed=seed, **params).heatmap

    row, col = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    assert inside[row, col]
    assert heatmap[inside].mean() > 0
    # Superpixels may straddle the quadrant's edge, so some credit spills just outside it.
    assert heatmap[inside].mean() > 3 * np.abs(heatmap[~inside]).mean()
    decoy = np.zeros_like(inside)
    decoy[16:, 16:] = True
    assert heatmap[inside].mean() > 5 * np.abs(heatmap[decoy]).mean()
    top_quarter = heatmap >= np.quantile(heatmap, 0.75)
    assert (top_quarter & inside).sum() >= 0.8 * top_quarter.sum()


# --- SHAP efficiency -------------------------------------------------------------------------------------------

# The Partition explainer keeps Shapley's efficiency exactly in either context: however coarse the
# budget, the values add up to f(image) - f(everything hidden). What is left is float32 round-off in the
# probabilities and in summing a few hundred values, far below 1e-5.
EFFICIENCY_TOLERANCE = 1e-5


@pytest.mark.parametrize("context", ["shown", "both"])
@pytest.mark.parametrize("fill", ["blur", "grey", "black"])
@pytest.mark.parametrize("evaluations", [10, 40, 200])
def test_shap_values_add_up_to_the_probability_minus_the_base(tiny_clf, noise_image, fill, evaluations, context):
    img = noise_image(20, 16, seed=2)
    target = 1

    att = explainers.explain(tiny_clf, img, "shap", target=target, evaluations=evaluations, fill=fill, context=context)

    probability = float(tiny_clf.predict(img).probs[target])
    base = att.extras["base_value"]
    assert abs(float(att.heatmap.sum(dtype=np.float64)) - (probability - base)) < EFFICIENCY_TOLERANCE
    assert abs(probability - base) > 100 * EFFICIENCY_TOLERANCE  # the check is not 0 == 0


def test_shap_with_the_sibling_shown_splits_each_region_by_what_hiding_its_parts_costs(tiny_clf, noise_image):
    """Two levels of shap's split of a 16-px image (rows, then columns), from the definition of its search with
    `fixed_context=1`: a region R = {P, Q} reached with context C (what is shown around it) gives P the value
    f(C+R) - f(C+Q), less half of R's interaction f(C+R) - f(C+P) - f(C+Q) + f(C); the root's context is
    nothing shown, the top half's is the bottom half shown. Six evaluations expand the root and both halves,
    so the top-left quarter's total is its own value, half the top half's interaction and a quarter of the
    root's (each region's value split by size), each computed here with independent forward passes on images
    hidden by hand. Splitting the quarter further moves value within it, never out of it, so any larger
    budget gives the same total."""
    img = noise_image(16, 16, seed=3)
    target = 0
    pixels = tiny_clf.input_image(img)
    top, left = np.zeros((16, 16), bool), np.zeros((16, 16), bool)
    top[:8], left[:, :8] = True, True
    bottom, top_left, top_right = ~top, top & left, top & ~left

    def f(shown: np.ndarray) -> float:
        return float(tiny_clf.predict(Image.fromarray(np.where(shown[..., None], pixels, 0))).probs[target])

    def interaction(context: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
        return f(context | p | q) - f(context | p) - f(context | q) + f(context)

    nothing, everything = np.zeros_like(top), np.ones_like(top)
    expected = (
        f(everything)
        - f(bottom | top_right)
        - interaction(bottom, top_left, top_right) / 2
        - interaction(nothing, top, bottom) / 4
    )

    for budget in (10, 40):
        att = explainers.explain(
            tiny_clf, img, "shap", target=target, evaluations=budget, fill="black", context="shown"
        )
        assert float(att.heatmap[top_left].sum()) == pytest.approx(expected, abs=1e-6)
    assert abs(interaction(bottom, top_left, top_right)) > 1e-4  # the context matters for this split


@pytest.mark.parametrize(("fill", "value"), [("grey", 128), ("black", 0)])
def test_shap_base_value_is_the_probability_of_the_fully_hidden_image(tiny_clf, noise_image, fill, value):
    img = noise_image(16, 16, seed=2)

    att = explainers.explain(tiny_clf, img, "shap", target=2, evaluations=20, fill=fill)

    hidden = Image.new("RGB", (16, 16), (value, value, value))
    assert att.extras["base_value"] == pytest.approx(float(tiny_clf.predict(hidden).probs[2]), abs=1e-6)


# --- our speed-ups reproduce the libraries exactly ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "fill", "hide_color", "features"), [(0, "grey", 128, 3), (7, "black", 0, 8), (3, "grey", 128, 500)]
)
def test_our_lime_gives_lime_images_own_explanation(
    monkeypatch, tiny_clf, noise_image, seed, fill, hide_color, features
):
    """Our sampling, hiding and staged fitting reproduce `LimeImageExplainer.explain_instance` exactly, with lime's
    own feature selection for K superpixels (forward selection up to 6, the highest weights above)."""
    from lime import lime_image

    from whylabel.explainers.forward import softmax
    from whylabel.explainers.superpixels import segment

    image = noise_image(16, 16, seed=seed)
    params = {"samples": 60, "n_segments": 10, "segmentation": "slic", "fill": fill, "features": features}
    ours = explainers.explain(tiny_clf, image, "lime", target=1, seed=seed, **params)

    pixels = tiny_clf.input_image(image)
    segments = segment(pixels, "slic", 10, seed)
    monkeypatch.setattr(lime_image, "tqdm", lambda rows: rows)  # silence lime's own bar for the reference run
    theirs = lime_image.LimeImageExplainer(random_state=seed).explain_instance(
        pixels, lambda images: softmax(tiny_clf.engine().logits(images.astype(np.float32))), labels=(1,),
        top_labels=None, hide_color=hide_color, num_features=min(features, int(segments.max()) + 1), num_samples=60,
        segmentation_fn=lambda _: segments, random_seed=seed,
    )  # fmt: skip

    weights = np.zeros(int(segments.max()) + 1)
    for feature, weight in theirs.local_exp[1]:
        weights[feature] = weight
    np.testing.assert_allclose(ours.heatmap, weights[segments].astype(np.float32), rtol=1e-5, atol=1e-7)
    assert ours.extras["r2"] == pytest.approx(theirs.score, rel=1e-6)


def test_shap_masker_reuses_shaps_own_partition_tree():
    import shap

    from whylabel.explainers.methods.shap_image import ImageMasker

    shape = (12, 10, 3)
    ours = ImageMasker(np.zeros(shape), shape)

    assert np.array_equal(ours.clustering, shap.maskers.Image(np.zeros(shape), shape).clustering)
    assert ImageMasker(np.ones(shape), shape).clustering is ours.clustering  # built once per shape


def test_a_long_occlusion_sweep_shows_a_coarse_preview_first_and_ends_with_the_map_asked_for(tiny, noise_image):
    from whylabel.explainers.base import Job
    from whylabel.explainers.methods.occlusion import PREVIEW_ABOVE, Occlusion

    counting = tiny.Counting(tiny.TinyConv())
    clf = models.from_module(counting, tiny.labels, 48, crop=1.0, backend="torch")
    clf.engine()
    counting.images = 0
    img = noise_image(48, 48)
    fine, coarse = evaluations(48, 48, 4, 2) + 1, evaluations(48, 48, 4, 4) + 1
    assert fine >= PREVIEW_ABOVE

    shown = list(explainers.stages(explainers.Request.make(clf, img, "occlusion", target=0, window=4, stride=2)))

    # The preview's windows (stride doubled) are among the fine sweep's: the model sees each image once.
    assert counting.images == fine
    assert [a.stage.converged for a in shown] == [False, True]
    assert shown[0].stage.evaluations == coarse
    assert shown[1].extras["evaluations"] == fine and shown[1].stage.evaluations == fine
    pixels = clf.input_image(img)
    preview, _ = Occlusion().compute(Job(clf, pixels, 0, 0, {"window": 4, "stride": 4}, lambda _: None))  # one sweep
    np.testing.assert_array_equal(shown[0].heatmap, preview)
    alone, _ = Occlusion().compute(Job(clf, pixels, 0, 0, {"window": 4, "stride": 2}, lambda _: None))
    np.testing.assert_allclose(shown[1].heatmap, alone, rtol=1e-6, atol=1e-6)  # the same map as one sweep
