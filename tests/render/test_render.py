"""Rendering: normalisation, colour ranges, the attribution and prediction figures, the caption."""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from whylabel import explainers, render
from whylabel.explainers.base import Attribution
from whylabel.render import Display


def attribution(heatmap, signed: bool = True, **overrides) -> Attribution:
    heatmap = np.asarray(heatmap, dtype=np.float32)
    fields = {
        "method": "occlusion" if signed else "saliency",
        "target": 2,
        "label": "fish",
        "heatmap": heatmap,
        "params": {"window": 4, "stride": 2, "seed": 3} if signed else {"seed": 3},
        "seconds": 1.234,
        "signed": signed,
        "score": "logit",
        **overrides,
    }
    return Attribution(**fields)


def ramp(low: float, high: float, shape=(6, 8)) -> np.ndarray:
    return np.linspace(low, high, shape[0] * shape[1], dtype=np.float32).reshape(shape)


def drawn_pixels(figure: go.Figure) -> np.ndarray:
    """The image under the map, decoded from the figure's PNG data URI."""
    uri = figure.data[0].source
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


# --- normalisation ---------------------------------------------------------------------------------------------


def test_signed_maps_normalise_to_minus_one_one():
    heatmap = ramp(-4, 2)

    z = render.normalised(attribution(heatmap), 100)

    np.testing.assert_allclose(z, heatmap / 4, rtol=1e-6)
    assert z.min() == -1 and z.max() == pytest.approx(0.5)


def test_normalised_clips_beyond_the_percentile():
    heatmap = ramp(-10, 10)

    z = render.normalised(attribution(heatmap), 50)

    scale = np.percentile(np.abs(heatmap), 50)
    assert z.min() == -1 and z.max() == 1
    inside = np.abs(heatmap) <= scale
    np.testing.assert_allclose(z[inside], heatmap[inside] / scale, rtol=1e-6)
    assert (np.sign(z) == np.sign(heatmap)).all()


def test_unsigned_maps_normalise_to_zero_one():
    heatmap = ramp(0, 3)

    z = render.normalised(attribution(heatmap, signed=False), 100)

    np.testing.assert_allclose(z, heatmap / 3, rtol=1e-6)
    assert z.min() == 0 and z.max() == 1
    assert render.normalised(attribution(ramp(-1, 1), signed=False), 100).min() == 0


def test_robust_max_is_the_percentile_of_absolute_values():
    heatmap = ramp(-8, 2)
    assert render.robust_max(heatmap, 90) == pytest.approx(float(np.percentile(np.abs(heatmap), 90)))


def test_robust_max_is_never_zero():
    assert render.robust_max(np.zeros((4, 4), dtype=np.float32), 99) == 1.0
    spike = np.zeros((20, 20), dtype=np.float32)
    spike[3, 4] = -0.25
    assert render.robust_max(spike, 99) == 0.25  # p99 of |values| is 0: fall back to the largest
    z = render.normalised(attribution(np.zeros((4, 4))), 99)
    assert np.isfinite(z).all() and not z.any()


# --- the attribution figure ------------------------------------------------------------------------------------


@pytest.fixture
def pixels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 200, (6, 8, 3), dtype=np.uint8)


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("shared", [True, False])
def test_figure_is_the_image_under_a_heatmap_of_the_map(pixels, signed, shared):
    heatmap = ramp(-3, 5) if signed else ramp(0, 5)
    att = attribution(heatmap, signed=signed)

    figure = render.attribution_figure(pixels, att, Display(shared=shared))

    image, overlay = figure.data
    assert isinstance(image, go.Image) and isinstance(overlay, go.Heatmap)
    np.testing.assert_array_equal(drawn_pixels(figure), pixels)  # lossless: exactly the model-view pixels
    np.testing.assert_array_equal(np.asarray(overlay.z), heatmap)  # the raw values, coloured and hovered
    assert overlay.customdata is None and "%{z" in overlay.hovertemplate  # one array, not two
    assert overlay.zmax == pytest.approx(render.robust_max(heatmap, 99))
    if signed:
        assert overlay.zmin == -overlay.zmax
    else:
        assert overlay.zmin == 0


def test_signed_colorscale_is_centred_on_zero_and_unsigned_starts_there(pixels):
    signed = render.attribution_figure(pixels, attribution(ramp(-1, 1))).data[1]
    unsigned = render.attribution_figure(pixels, attribution(ramp(0, 1), signed=False)).data[1]

    # The page's colorscales are the numeric stops of `render.scale`, written as Plotly text.
    assert [list(stop) for stop in signed.colorscale] == render.plotly_scale(render.DIVERGING)
    assert [list(stop) for stop in unsigned.colorscale] == render.plotly_scale(render.SEQUENTIAL)
    signed_alpha = {position: alpha for position, _, alpha in render.DIVERGING}
    unsigned_alpha = {position: alpha for position, _, alpha in render.SEQUENTIAL}
    # Zero sits mid-scale for signed maps and at the bottom for unsigned ones, and is transparent in both.
    assert signed_alpha[0.5] == 0 and signed_alpha[0.0] > 0 and signed_alpha[1.0] > 0
    assert unsigned_alpha[0.0] == 0 and unsigned_alpha[1.0] > 0
    assert signed.zmin == -signed.zmax < 0 and unsigned.zmin == 0 < unsigned.zmax


def test_shared_display_labels_the_percentile_one(pixels):
    heatmap = ramp(-4, 2)
    overlay = render.attribution_figure(pixels, attribution(heatmap), Display(shared=True, percentile=100)).data[1]
    assert (overlay.zmin, overlay.zmax) == (-4, 4)  # |value| 4 is the 100th percentile: full colour
    np.testing.assert_array_equal(np.asarray(overlay.z), heatmap)
    assert list(overlay.colorbar.tickvals) == [-4, -2, 0, 2, 4]
    assert list(overlay.colorbar.ticktext) == ["-1", "-0.5", "0", "0.5", "1"]
    assert "relative" in overlay.colorbar.title.text


def test_shared_unsigned_ticks_run_from_zero_to_one(pixels):
    overlay = render.attribution_figure(pixels, attribution(ramp(0, 8), signed=False), Display(percentile=100)).data[1]
    assert list(overlay.colorbar.tickvals) == [0, 4, 8] and list(overlay.colorbar.ticktext) == ["0", "0.5", "1"]


def test_unshared_display_uses_raw_units(pixels):
    heatmap = ramp(-4, 2)

    overlay = render.attribution_figure(pixels, attribution(heatmap), Display(shared=False, percentile=100)).data[1]

    assert (overlay.zmin, overlay.zmax) == (-4, 4)
    np.testing.assert_array_equal(np.asarray(overlay.z), heatmap)
    assert "logit" in overlay.colorbar.title.text and overlay.colorbar.tickvals is None  # raw units on the ticks


def test_unshared_display_clips_at_the_raw_percentile(pixels):
    heatmap = ramp(0, 10)
    att = attribution(heatmap, signed=False)

    overlay = render.attribution_figure(pixels, att, Display(shared=False, percentile=50)).data[1]

    top = float(np.percentile(heatmap, 50))
    assert (overlay.zmin, overlay.zmax) == (0, pytest.approx(top))  # Plotly colours values beyond zmax as zmax
    np.testing.assert_array_equal(np.asarray(overlay.z), heatmap)


def test_opacity_is_the_display_setting(pixels):
    assert render.attribution_figure(pixels, attribution(ramp(-1, 1)), Display(opacity=0.3)).data[1].opacity == 0.3


# --- superpixel boundaries -------------------------------------------------------------------------------------


def boundary_pixels(segments: np.ndarray) -> np.ndarray:
    """Pixels with a horizontal or vertical neighbour in another superpixel."""
    out = np.zeros(segments.shape, dtype=bool)
    vertical = segments[1:] != segments[:-1]
    horizontal = segments[:, 1:] != segments[:, :-1]
    out[1:] |= vertical
    out[:-1] |= vertical
    out[:, 1:] |= horizontal
    out[:, :-1] |= horizontal
    return out


def test_lime_figure_outlines_every_superpixel(tiny_clf, noise_image):
    img = noise_image(16, 16, seed=11)
    att = explainers.explain(tiny_clf, img, "lime", target=0, samples=10, n_segments=8)
    segments = att.extras["segments"]
    assert len(np.unique(segments)) >= 3
    pixels = tiny_clf.input_image(img)
    assert not (pixels == render.BOUNDARY).all(axis=-1).any()

    drawn = drawn_pixels(render.attribution_figure(pixels, att))

    changed = (drawn != pixels).any(axis=-1)
    np.testing.assert_array_equal(changed, boundary_pixels(segments))
    assert (drawn[changed] == render.BOUNDARY).all()


def test_hand_made_segments_are_outlined_on_both_sides(pixels):
    segments = np.zeros((6, 8), dtype=int)
    segments[:, 4:] = 1
    segments[4:, :] = 2
    att = attribution(np.zeros((6, 8)), extras={"segments": segments})

    changed = (render.with_boundaries(pixels, att) != pixels).any(axis=-1)

    expected = np.zeros((6, 8), dtype=bool)
    expected[:4, 3:5] = True  # between 0 and 1
    expected[3:5, :] = True  # between 0 / 1 and 2
    np.testing.assert_array_equal(changed, expected)


def test_maps_without_superpixels_leave_the_image_alone(pixels):
    att = attribution(ramp(-1, 1))
    np.testing.assert_array_equal(drawn_pixels(render.attribution_figure(pixels, att)), pixels)


# --- captions and predictions ----------------------------------------------------------------------------------


def test_caption_has_target_params_seed_and_runtime():
    text = render.caption(attribution(ramp(-1, 1)))

    for part in ("fish", "(2)", "logit", "window=4", "stride=2", "seed 3", "1.23 s"):
        assert part in text
    assert "seed=" not in text


def test_caption_names_the_contrast_class_and_the_score_difference():
    text = render.caption(attribution(ramp(-1, 1), contrast=0, contrast_label="cat"))

    assert text.startswith("target **fish** (2) rather than **cat** (0) · score: logit(fish) - logit(cat) · ")


def test_caption_of_a_real_lime_run_reports_the_fit(tiny_clf, noise_image):
    att = explainers.explain(tiny_clf, noise_image(16, 16), "lime", target=1, seed=5, samples=12, n_segments=6)

    text = render.caption(att)

    for name, value in att.params.items():
        if name != "seed":
            assert f"{name}={value}" in text
    assert "seed 5" in text
    assert f"{att.seconds:.2f} s" in text
    assert f"R² {att.extras['r2']:.2f} over {att.extras['n_superpixels']} superpixels" in text


def test_prediction_figure_has_the_top_k_bars(tiny_clf, noise_image):
    prediction = tiny_clf.predict(noise_image(16, 16), k=2)

    figure = render.prediction_figure(prediction)

    (bars,) = figure.data
    assert isinstance(bars, go.Bar) and bars.orientation == "h"
    assert len(bars.x) == len(bars.y) == 2
    # Plotly draws the first bar at the bottom, so the top class comes last.
    assert list(bars.y) == [f"{label} ({index})" for index, label, _ in prediction.top][::-1]
    assert list(bars.x) == pytest.approx([p for _, _, p in prediction.top][::-1])
    assert bars.x[-1] >= bars.x[0]
