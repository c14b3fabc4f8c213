"""One drawing path: the page's map (Plotly), the downloaded figure.png (matplotlib) and the audit's thumbnails
colour a value the same way, from the numeric stops of `render.scale`.

Expected colours here come from the colourscale written in the page's figure, by Plotly's rule (the value
clamped to [zmin, zmax], then r, g, b and alpha interpolated linearly between the two stops around it, the
trace's opacity times that alpha over the image), implemented below: never from `render.scale.colours`, the
function under test. A few anchors (the scale's ends and centre) are written out as numbers.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import itertools
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from whylabel import evidence, render
from whylabel.evidence import figure as evidence_figure
from whylabel.explainers.base import Attribution
from whylabel.render import Display
from whylabel.render.audit import grid_png, grid_rgb

UNDER = (90, 160, 120)  # the uniform image under the maps: every expected blend is computable
SIZE, BLOCK = 16, 4  # the tiny model's view: a 4 x 4 layout of 4 x 4 blocks, each of one value
TOP = 2.0  # the largest |value|: several blocks hold it, so it is the 99th (and 100th) percentile of |value|
SIGNED_VALUES = [-2, -1.5, -1, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.5, 2, 0, -2, 2, -0.75]
UNSIGNED_VALUES = [0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 0, 2.0, 0.35, 1.05]

# The scale's ends and centre, as the page has always drawn them: (r, g, b) and alpha.
TARGET_RED, AGAINST_BLUE, CLEAR = ((103, 0, 31), 0.95), ((5, 48, 97), 0.95), ((247, 247, 247), 0.0)
UNSIGNED_TOP, UNSIGNED_ZERO = ((128, 0, 38), 0.95), ((255, 255, 204), 0.0)


# --- Plotly's colourscale rule, independent of render.scale ------------------------------------------------------


def parse(colour: str) -> np.ndarray:
    """'rgb(r,g,b)' or 'rgba(r,g,b,a)' -> [r, g, b, a], r, g, b in 0-255 and a in [0, 1]."""
    match = re.fullmatch(r"rgba?\(([^)]*)\)", colour.replace(" ", ""))
    assert match, colour
    values = [float(v) for v in match.group(1).split(",")]
    return np.array(values + [1.0] * (4 - len(values)))


def plotly_colour(value: float, zmin: float, zmax: float, colorscale) -> np.ndarray:
    """The RGBA Plotly gives `value` on a heatmap with this colourscale."""
    t = min(max((float(value) - zmin) / (zmax - zmin), 0.0), 1.0)
    stops = [(float(position), parse(colour)) for position, colour in colorscale]
    for (p0, c0), (p1, c1) in itertools.pairwise(stops):
        if p0 <= t <= p1:
            return c0 + (0.0 if p1 == p0 else (t - p0) / (p1 - p0)) * (c1 - c0)
    raise AssertionError(f"{t} is outside the colourscale")


def over(under, rgba, opacity: float) -> np.ndarray:
    """What shows where `rgba` is drawn at `opacity` over the opaque pixel `under`."""
    a = float(rgba[-1]) * opacity
    return np.asarray(under, dtype=np.float64) * (1 - a) + np.asarray(rgba[:3], dtype=np.float64) * a


def decoded(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def page_colour(figure, row: int, col: int) -> np.ndarray:
    """The colour the page shows at a map pixel: the figure's heatmap colour over the figure's image."""
    image, heatmap = figure.data
    rgba = plotly_colour(np.asarray(heatmap.z)[row, col], heatmap.zmin, heatmap.zmax, heatmap.colorscale)
    return over(decoded(image.source)[row, col], rgba, heatmap.opacity)


# --- the downloaded figure against the page -------------------------------------------------------------------


def blocks(values: list[float]) -> np.ndarray:
    return np.kron(np.reshape(values, (SIZE // BLOCK, SIZE // BLOCK)), np.ones((BLOCK, BLOCK))).astype(np.float32)


def centres():
    """(row, column) of the map pixel at each block's centre (pixel corners: 1.5 is between pixels 1 and 2)."""
    return [(BLOCK * i + 1.5, BLOCK * j + 1.5) for i in range(SIZE // BLOCK) for j in range(SIZE // BLOCK)]


def hand_made(values: list[float], signed: bool) -> Attribution:
    return Attribution(
        method="occlusion" if signed else "saliency",
        target=0,
        label="cat",
        heatmap=blocks(values),
        params={"seed": 0},
        seconds=0.0,
        signed=signed,
        score="logit",
    )


@pytest.fixture
def plain(tiny_clf) -> evidence.Evidence:
    """Evidence of a uniform image, as the page and the CLI collect it; the maps are set by each test."""
    found = evidence.collect(tiny_clf, Image.new("RGB", (SIZE, SIZE), UNDER), ["saliency"], score=False, keep=False)
    assert (found.pixels == UNDER).all()
    return found


def downloaded(found: evidence.Evidence, monkeypatch) -> tuple[np.ndarray, plt.Figure]:
    """figure.png's pixels, made as the download and `whylabel explain` make it, and the matplotlib figure
    behind it (kept open to read where each panel landed)."""
    kept, close = [], plt.close
    monkeypatch.setattr(evidence_figure.plt, "close", kept.append)
    png = evidence.files(found, report=False)["figure.png"]
    monkeypatch.setattr(evidence_figure.plt, "close", close)
    (figure,) = kept
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")), figure


def png_pixel(png: np.ndarray, figure: plt.Figure, panel: int, row: float, col: float) -> np.ndarray:
    """The PNG's RGB at the centre of map pixel (row, col) of panel `panel` (0 is the model's view)."""
    x, y = figure.axes[panel].transData.transform((col, row)) * (100 / figure.dpi)  # saved at dpi 100
    pixel = png[int(png.shape[0] - y), int(x)]
    assert pixel[3] == 255
    return pixel[:3].astype(np.float64)


@pytest.mark.parametrize(
    "display",
    [Display(), Display(shared=False), Display(opacity=0.5), Display(shared=False, percentile=100, opacity=1.0)],
    ids=["shared", "own-units", "opacity-0.5", "own-units-opaque"],
)
def test_the_downloaded_figure_has_the_page_colours(plain, monkeypatch, display):
    atts = [hand_made(SIGNED_VALUES, signed=True), hand_made(UNSIGNED_VALUES, signed=False)]
    found = dataclasses.replace(plain, attributions=atts, display=display)

    png, figure = downloaded(found, monkeypatch)

    try:
        for panel, att in enumerate(atts, start=1):
            page = render.attribution_figure(found.pixels, att, display)
            assert (page.data[1].zmin, page.data[1].zmax) == (-TOP if att.signed else 0, TOP)
            for row, col in centres():
                seen = png_pixel(png, figure, panel, row, col)
                expected = page_colour(page, int(row), int(col))
                value = att.heatmap[int(row), int(col)]
                assert seen == pytest.approx(expected, abs=3), (att.method, value)
    finally:
        plt.close(figure)


@pytest.mark.parametrize("opacity", [0.8, 0.5])
def test_full_scale_is_the_top_red_or_the_bottom_blue_and_zero_shows_the_image(plain, monkeypatch, opacity):
    atts = [hand_made(SIGNED_VALUES, signed=True), hand_made(UNSIGNED_VALUES, signed=False)]
    found = dataclasses.replace(plain, attributions=atts, display=Display(opacity=opacity))
    signed_page, unsigned_page = (render.attribution_figure(found.pixels, att, found.display) for att in atts)

    png, figure = downloaded(found, monkeypatch)

    try:
        anchors = [
            (1, signed_page, SIGNED_VALUES, {2: TARGET_RED, -2: AGAINST_BLUE, 0: CLEAR}),
            (2, unsigned_page, UNSIGNED_VALUES, {2: UNSIGNED_TOP, 0: UNSIGNED_ZERO}),
        ]
        for panel, page, values, colours in anchors:
            for value, (rgb, alpha) in colours.items():
                row, col = centres()[values.index(value)]
                expected = over(UNDER, (*rgb, alpha), opacity)
                assert page_colour(page, int(row), int(col)) == pytest.approx(expected, abs=1e-6)
                assert png_pixel(png, figure, panel, row, col) == pytest.approx(expected, abs=2)
        # Red for the target, blue against: +max pulls the image towards red, -max towards blue.
        red = png_pixel(png, figure, 1, *centres()[SIGNED_VALUES.index(2)])
        blue = png_pixel(png, figure, 1, *centres()[SIGNED_VALUES.index(-2)])
        assert red[0] - red[2] > UNDER[0] - UNDER[2] > blue[0] - blue[2]
    finally:
        plt.close(figure)


# --- the audit's thumbnails -----------------------------------------------------------------------------------

SHARES = np.array([[0.0, 0.1, 0.2, 0.35], [0.5, 0.6, 0.7, 0.8], [0.9, 1.0, 0.05, 0.45], [0.3, 0.65, 0.95, 0.0]])
CELL = 16


def page_unsigned_scale():
    """The colourscale the page draws unsigned maps with."""
    att = Attribution("saliency", 0, "cat", np.ones((2, 2), np.float32), {"seed": 0}, 0.0, False, "gradient")
    return render.attribution_figure(np.zeros((2, 2, 3), np.uint8), att).data[1].colorscale


@pytest.mark.parametrize("top", [1.0, 2.0, None])
def test_a_thumbnail_colours_a_share_as_the_page_colours_an_unsigned_map(top):
    grid = SHARES * (2.0 if top == 2.0 else 1.0)
    scale = page_unsigned_scale()

    drawn = grid_rgb(grid, CELL * 4, top)
    png = np.asarray(Image.open(io.BytesIO(grid_png(grid, CELL * 4, top))).convert("RGB"))

    np.testing.assert_array_equal(png, drawn)
    full = grid.max() if top is None else top
    for (i, j), share in np.ndenumerate(grid):
        opaque = plotly_colour(share, 0.0, full, scale)[:3]  # a thumbnail is opaque: the scale's colours alone
        assert drawn[CELL * i + CELL // 2, CELL * j + CELL // 2] == pytest.approx(opaque, abs=1), share


def test_thumbnail_ends_are_the_scale_ends_and_blend_over_the_image():
    grid = SHARES
    grey = Image.new("L", (CELL * 4, CELL * 4), 100).convert("RGB")
    buffer = io.BytesIO()
    grey.save(buffer, format="PNG")

    drawn = grid_rgb(grid, CELL * 4, 1.0)
    blended = np.asarray(Image.open(io.BytesIO(grid_png(grid, CELL * 4, 1.0, under=buffer.getvalue()))))

    (i, j), (k, m) = np.argwhere(grid == 0)[0], np.argwhere(grid == 1)[0]
    zero, full = drawn[CELL * i + CELL // 2, CELL * j + CELL // 2], drawn[CELL * k + CELL // 2, CELL * m + CELL // 2]
    assert tuple(zero) == UNSIGNED_ZERO[0] and tuple(full) == UNSIGNED_TOP[0]
    np.testing.assert_allclose(blended, 0.45 * 100 + 0.55 * drawn.astype(np.float64), atol=1)


# --- the scale itself -----------------------------------------------------------------------------------------


def test_the_stops_are_the_page_colours_as_numbers():
    assert render.plotly_scale(render.DIVERGING) == [
        [0.0, "rgba(5,48,97,0.95)"],
        [0.25, "rgba(67,147,195,0.75)"],
        [0.5, "rgba(247,247,247,0)"],
        [0.75, "rgba(214,96,77,0.75)"],
        [1.0, "rgba(103,0,31,0.95)"],
    ]
    assert render.plotly_scale(render.SEQUENTIAL) == [
        [0.0, "rgba(255,255,204,0)"],
        [0.35, "rgba(254,178,76,0.6)"],
        [0.7, "rgba(240,59,32,0.85)"],
        [1.0, "rgba(128,0,38,0.95)"],
    ]


def test_colours_interpolate_linearly_between_stops_and_clip():
    got = render.colours(np.array([[-1.0, 0.0, 0.125], [0.5, 1.0, 2.0]]), render.DIVERGING)

    assert got.shape == (2, 3, 4)
    blue, red = np.array([5, 48, 97, 0.95 * 255]) / 255, np.array([103, 0, 31, 0.95 * 255]) / 255
    np.testing.assert_allclose(got[0, 0], blue)  # below the scale: its bottom
    np.testing.assert_allclose(got[0, 1], blue)
    np.testing.assert_allclose(got[0, 2], np.array([36, 97.5, 146, 0.85 * 255]) / 255)  # halfway to 0.25's stop
    np.testing.assert_allclose(got[1, 0], np.array([247, 247, 247, 0]) / 255)
    np.testing.assert_allclose(got[1, 1], red)
    np.testing.assert_allclose(got[1, 2], red)  # above the scale: its top


def test_the_evidence_colormaps_are_the_same_stops():
    maps = {"signed": evidence_figure.SIGNED_MAP, "unsigned": evidence_figure.UNSIGNED_MAP}
    for kind, stops in (("signed", render.DIVERGING), ("unsigned", render.SEQUENTIAL)):
        for position, rgb, alpha in stops:
            np.testing.assert_allclose(maps[kind](position), [*(c / 255 for c in rgb), alpha], atol=1 / 255)
    assert maps["signed"](0.5)[3] == 0 and maps["unsigned"](0.0)[3] == 0  # zero is clear in the download too
