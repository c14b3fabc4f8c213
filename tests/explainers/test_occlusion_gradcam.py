"""Occlusion and Grad-CAM checked by value against their definitions, computed here by hand, on models where the
details matter: occlusion's last window overhanging the edge, and Grad-CAM's layer choice and upsampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from whylabel import explainers, models
from whylabel.explainers.methods.occlusion import evaluations

LABELS = ("a", "b", "c")
GREY = 128
"""The baseline of the definition, written out rather than read from the code under test."""

# --- occlusion: the overhanging last window ----------------------------------------------------------------------

SIDE, WINDOW, STRIDE = 11, 4, 3
"""Windows start at 0, 3, 6 and 9: (11 - 4) is not a multiple of 3, so the last one overhangs the edge and is
the only one covering the last row and column."""


class Additive(torch.nn.Module):
    """logits = W @ flatten(x) + b with random weights: each window's score drop is different and known."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.fc = torch.nn.Linear(3 * SIDE * SIDE, len(LABELS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def score(module: torch.nn.Module, pixels: np.ndarray, target: int) -> float:
    """The target's logit for (H, W, 3) pixels, normalised as mean 0, std 1 asks: the pixel value / 255."""
    x = torch.from_numpy(pixels.astype(np.float64) / 255.0).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        return float(module(x)[0, target])


def starts(side: int, window: int, stride: int) -> list[int]:
    """Every `stride` pixels, until a window reaches the edge (the last one may overhang it)."""
    return list(range(0, side - window + stride, stride))


def occlusion_by_hand(module: torch.nn.Module, pixels: np.ndarray, target: int) -> np.ndarray:
    """Each pixel: the mean, over the windows covering it, of score(image) - score(image with that window grey)."""
    full = score(module, pixels, target)
    total, count = np.zeros((SIDE, SIDE)), np.zeros((SIDE, SIDE))
    for top in starts(SIDE, WINDOW, STRIDE):
        for left in starts(SIDE, WINDOW, STRIDE):
            grey = pixels.copy()
            grey[top : top + WINDOW, left : left + WINDOW] = GREY  # numpy clips the overhang at the edge
            total[top : top + WINDOW, left : left + WINDOW] += full - score(module, grey, target)
            count[top : top + WINDOW, left : left + WINDOW] += 1
    assert count.min() >= 1
    return total / count


@pytest.fixture
def additive() -> tuple[models.Classifier, Image.Image]:
    clf = models.from_module(Additive(), LABELS, SIDE, mean=(0,) * 3, std=(1,) * 3, crop=1.0, batch_size=4)
    pixels = np.random.default_rng(7).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    return clf, Image.fromarray(pixels)


def test_the_windows_overhang_on_this_size():
    assert starts(SIDE, WINDOW, STRIDE) == [0, 3, 6, 9] and 9 + WINDOW > SIDE
    assert evaluations(SIDE, SIDE, WINDOW, STRIDE) == 4 * 4


@pytest.mark.parametrize("target", [0, 2])
def test_occlusion_equals_its_definition_up_to_the_overhanging_last_window(additive, target):
    clf, img = additive
    expected = occlusion_by_hand(clf.module, clf.input_image(img), target)

    att = explainers.explain(clf, img, "occlusion", target=target, window=WINDOW, stride=STRIDE)

    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(att.heatmap, expected, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(att.heatmap[-1, -1], expected[-1, -1], rtol=1e-4)  # only the corner window's drop
    assert abs(expected[-1, -1]) > 1e-3 * scale  # so the last window's drop was not a zero that hides an error
    assert att.extras["evaluations"] == 4 * 4 + 1  # every window, and the image itself


# --- Grad-CAM: layer choice and upsampling -----------------------------------------------------------------------

INPUT = 16


class TwoResolutions(torch.nn.Module):
    """conv1 at 16 x 16, pooled to 8 x 8, conv2 there: two Grad-CAM layers with different resolutions."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv1, self.conv2 = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 5, 3, padding=1)
        self.act1, self.act2 = torch.nn.ReLU(), torch.nn.ReLU()
        self.pool = torch.nn.AvgPool2d(2)
        self.head = torch.nn.Linear(5 * 8 * 8, len(LABELS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act1(self.conv1(x)))
        return self.head(self.act2(self.conv2(x)).flatten(1))


def raw_cam(clf: models.Classifier, layer: torch.nn.Module, pixels: np.ndarray, target: int) -> torch.Tensor:
    """sum_k alpha_k A^k at the layer's resolution, alpha_k the spatial mean of dScore/dA^k (before the ReLU)."""
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _module, _inputs, out: seen.append(out))
    try:
        logit = clf.module(clf.to_tensor(pixels))[0, target]
    finally:
        handle.remove()
    (grads,) = torch.autograd.grad(logit, seen[0])
    alpha = grads.mean(dim=(2, 3), keepdim=True)
    return (alpha * seen[0]).sum(dim=1, keepdim=True).detach()


def gradcam_by_hand(clf: models.Classifier, layer: torch.nn.Module, pixels: np.ndarray, target: int) -> np.ndarray:
    """ReLU of the raw cam, scaled up to the input bilinearly, as `explainers/gradcam.py` asks of Captum."""
    cam = torch.relu(raw_cam(clf, layer, pixels, target))
    return F.interpolate(cam, (INPUT, INPUT), mode="bilinear")[0, 0].numpy()


@pytest.fixture
def two_resolutions(noise_image) -> tuple[models.Classifier, Image.Image]:
    return models.from_module(TwoResolutions(), LABELS, INPUT, crop=1.0), noise_image(INPUT, INPUT, seed=4)


@pytest.mark.parametrize(
    ("choice", "layer", "resolution"), [("last", "conv2", (8, 8)), ("second last", "conv1", (16, 16))]
)
@pytest.mark.parametrize("target", [0, 1])
def test_gradcam_equals_its_definition_on_each_layer(two_resolutions, choice, layer, resolution, target):
    clf, img = two_resolutions
    module = getattr(clf.module, layer)
    expected = gradcam_by_hand(clf, module, clf.input_image(img), target)

    att = explainers.explain(clf, img, "gradcam", target=target, layer=choice)

    assert (att.extras["layer"], att.extras["resolution"]) == (layer, resolution)
    assert att.heatmap.shape == (INPUT, INPUT)
    np.testing.assert_allclose(att.heatmap, expected, rtol=1e-4, atol=1e-6 * float(expected.max()))
    raw = raw_cam(clf, module, clf.input_image(img), target)
    assert raw.min() < 0 < raw.max()  # the ReLU had something to remove: a map that skipped it would fail


def upsampling(grid: int) -> np.ndarray:
    """The (INPUT**2, grid**2) matrix of bilinear upsampling from a grid x grid map to the input's size."""
    basis = torch.eye(grid * grid).reshape(grid * grid, 1, grid, grid)
    return F.interpolate(basis, (INPUT, INPUT), mode="bilinear").reshape(grid * grid, -1).T.double().numpy()


def distance_from_grid(heatmap: np.ndarray, grid: int) -> float:
    """How far the map is from every map scaled up from a grid x grid one (relative least-squares residual)."""
    up = upsampling(grid)
    flat = heatmap.astype(np.float64).ravel()
    coarse = np.linalg.lstsq(up, flat, rcond=None)[0]
    return float(np.linalg.norm(up @ coarse - flat) / np.linalg.norm(flat))


def test_the_last_layer_map_is_scaled_up_from_an_8_by_8_grid_and_the_second_last_is_not(two_resolutions):
    clf, img = two_resolutions

    last = explainers.explain(clf, img, "gradcam", target=0, layer="last").heatmap
    second = explainers.explain(clf, img, "gradcam", target=0, layer="second last").heatmap

    assert distance_from_grid(last, 8) < 1e-5
    assert distance_from_grid(second, 8) > 1e-2  # full resolution: no 8 x 8 map scales up to it


def test_the_two_layer_choices_give_different_maps(two_resolutions):
    clf, img = two_resolutions

    last = explainers.explain(clf, img, "gradcam", target=0, layer="last")
    second = explainers.explain(clf, img, "gradcam", target=0, layer="second last")

    assert last.extras["resolution"] != second.extras["resolution"]
    assert not np.allclose(last.heatmap, second.heatmap, atol=1e-6 * float(np.abs(second.heatmap).max()))
