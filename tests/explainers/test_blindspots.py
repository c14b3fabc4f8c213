"""Blind spots said on the map: `Attribution.warnings` from the definitions of what each method cannot see."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from bench import known_answer as ka
from whylabel import explainers, models
from whylabel.explainers import blindspots
from whylabel.explainers.hide import hidden_image


def half_flat(size: int = 64, seed: int = 0) -> np.ndarray:
    """Left half one flat colour, right half noise."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3)).astype(np.uint8)
    pixels[:, : size // 2] = (40, 160, 90)
    return pixels


def test_weak_share_is_the_area_a_fill_leaves_as_it_was() -> None:
    pixels = half_flat()
    halves = np.zeros((64, 64), int)
    halves[:, 32:] = 1
    assert blindspots.weak_share(pixels, hidden_image(pixels, "mean", halves), halves) == 0.5  # the flat half
    assert blindspots.weak_share(pixels, hidden_image(pixels, "black")) == 0.0  # black changes everything here
    grey = np.full_like(pixels, 128)
    assert blindspots.weak_share(grey, hidden_image(grey, "grey")) == 1.0
    blurred = blindspots.weak_share(pixels, hidden_image(pixels, "blur"))
    assert 0.2 < blurred < 0.5  # the flat half's inside; near the noise, the blur brings change in


def test_a_weak_fill_warns_from_one_percent_of_the_image_and_names_the_fill() -> None:
    assert blindspots.weak_fill(blindspots.WEAK_AREA * 0.99, "mean") == []
    (warning,) = blindspots.weak_fill(0.25, "mean")
    assert "mean fill changes 25% of the image" in warning and "near-flat superpixels" in warning
    (baseline,) = blindspots.weak_fill(0.5, "black", "baseline")
    assert "black baseline" in baseline


def test_lime_over_a_checkerboard_cut_square_by_square_says_it_cannot_see_it() -> None:
    """quickshift cuts the checkerboard into its squares; each one's mean colour is itself, so hiding does nothing."""
    case = ka.CASES[0]
    att = explainers.explain(
        case.model(), case.image(), "lime", target=ka.TARGET, segmentation="quickshift", fill="mean", samples=200
    )
    checker = case.evidence[0].side ** 2 / ka.SIZE**2
    assert att.extras["weak_fill_share"] >= checker
    assert any("mean fill" in w and "cannot show it" in w for w in att.warnings), att.warnings
    grey = explainers.explain(case.model(), case.image(), "lime", target=ka.TARGET, fill="grey", samples=200)
    assert grey.extras["weak_fill_share"] < blindspots.WEAK_AREA and not grey.warnings  # grey hides the pattern


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("lime", {"fill": "mean", "n_segments": 16}),  # textured superpixels of many pixels: their mean is not them
        ("lime", {"fill": "blur", "n_segments": 16}),
        ("shap", {}),
        ("occlusion", {}),
        ("integrated_gradients", {}),
    ],
)
def test_a_fill_that_changes_everything_gives_no_blind_spot_warning(tiny_clf, noise_image, method, params) -> None:
    att = explainers.explain(tiny_clf, noise_image(32, 32), method, target=1, **params)
    assert att.extras["weak_fill_share"] < blindspots.WEAK_AREA
    assert not [w for w in att.warnings if w.startswith("Blind spot")], att.warnings


@pytest.mark.parametrize(("method", "fill"), [("lime", "mean"), ("shap", "blur"), ("occlusion", "grey")])
def test_each_fill_warns_over_a_flat_area(tiny_clf, method: str, fill: str) -> None:
    pixels = half_flat(32) if fill != "grey" else np.where(half_flat(32) == (40, 160, 90), 128, half_flat(32))
    params = {"fill": fill} if method != "occlusion" else {}
    att = explainers.explain(tiny_clf, Image.fromarray(pixels.astype(np.uint8)), method, target=1, **params)
    assert att.extras["weak_fill_share"] >= 0.25
    assert any(f"{fill} fill" in w for w in att.warnings), att.warnings


class Constant(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 3) + 0 * x.sum()


class Chaotic(torch.nn.Module):
    """A score that jumps with the image's mean brightness: no linear surrogate fits it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wave = torch.sin(300 * x.mean(dim=(1, 2, 3)))
        return torch.stack([wave, -wave, 0 * wave], dim=-1)


def test_a_map_that_is_zero_everywhere_says_so(noise_image) -> None:
    clf = models.from_module(Constant(), ["a", "b", "c"], 16, crop=1.0)
    att = explainers.explain(clf, noise_image(16, 16), "saliency", target=0)
    assert not att.heatmap.any()
    assert any("zero everywhere" in w for w in att.warnings)
    live = explainers.explain(models.from_module(Chaotic(), ["a", "b", "c"], 16, crop=1.0), noise_image(16, 16),
                              "saliency", target=0)  # fmt: skip
    assert not [w for w in live.warnings if "zero everywhere" in w]


def test_lime_warns_when_its_surrogate_fits_badly(noise_image) -> None:
    clf = models.from_module(Chaotic(), ["a", "b", "c"], 32, crop=1.0)
    att = explainers.explain(clf, noise_image(32, 32), "lime", target=0, samples=300, n_segments=20, fill="black")
    assert att.extras["r2"] < blindspots.LOW_R2
    assert any(f"R² = {att.extras['r2']:.2f}" in w for w in att.warnings), att.warnings
    assert blindspots.poor_fit(blindspots.LOW_R2) == []


def test_integrated_gradients_warns_of_a_large_completeness_gap(tiny_clf, noise_image) -> None:
    coarse = explainers.explain(tiny_clf, noise_image(16, 16), "integrated_gradients", target=1, steps=2)
    fine = explainers.explain(tiny_clf, noise_image(16, 16), "integrated_gradients", target=1, steps=400)
    for att in (coarse, fine):
        warned = any("Incomplete" in w for w in att.warnings)
        assert warned == (att.extras["relative_gap"] > blindspots.LARGE_GAP), att.extras
    assert coarse.extras["relative_gap"] > fine.extras["relative_gap"]


def test_warnings_reach_the_record(tiny_clf, noise_image) -> None:
    from whylabel.evidence.record import method_record

    att = explainers.explain(tiny_clf, noise_image(16, 16), "saliency", target=1)
    marked = dataclasses.replace(att, warnings=["Blind spot: a test"])
    assert method_record(marked, {})["warnings"] == ["Blind spot: a test"]


def test_a_map_the_stopping_rule_did_not_watch_warns_only_when_it_still_moved_and_the_rule_stopped_early():
    from whylabel.explainers.blindspots import unsettled

    (said,) = unsettled(0.55, 0.9, "top class", stopped_early=True)
    assert "55%" in said and "90%" in said and "'top 5'" in said
    assert unsettled(0.9, 0.9, "top class", True) == [] and unsettled(None, 0.9, "top class", True) == []
    assert unsettled(0.55, 0.9, "top class", stopped_early=False) == []  # the whole budget spent: nothing to blame
    (watching,) = unsettled(0.5, 0.9, "top 5", True)
    assert "the maps it watches" in watching and "'top 5'" not in watching
