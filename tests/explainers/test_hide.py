"""The one hiding mechanism and its one fill vocabulary, from their definitions, and every user of it."""

from __future__ import annotations

import numpy as np
import pytest

from whylabel import explainers
from whylabel.explainers.hide import FILLS, PLAIN_FILLS, hidden_image, hide, hide_segments, region_means
from whylabel.trust import faithfulness


def pixels(seed: int = 0, shape: tuple[int, int] = (6, 8)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def test_hide_shows_the_pixels_where_asked_and_the_hidden_image_elsewhere():
    image, hidden = pixels(0), pixels(1).astype(np.float32)
    shown = np.random.default_rng(2).random((3, 6, 8)) < 0.5

    out = hide(image, shown, hidden)

    assert out.shape == (3, 6, 8, 3) and out.dtype == np.float32
    for n in range(3):
        np.testing.assert_array_equal(out[n][shown[n]], image[shown[n]])
        np.testing.assert_array_equal(out[n][~shown[n]], hidden[~shown[n]])


def test_hide_segments_hides_whole_superpixels():
    image, hidden = pixels(0), np.zeros((6, 8, 3), np.float32)
    segments = np.repeat(np.arange(4), 12).reshape(6, 8)  # four bands of 12 pixels
    keep = np.array([[1, 0, 1, 0], [0, 0, 0, 1]], dtype=bool)

    out = hide_segments(image, segments, keep, hidden)

    for n, row in enumerate(keep):
        for s, kept in enumerate(row):
            expected = image[segments == s] if kept else 0
            np.testing.assert_array_equal(out[n][segments == s], expected)


def test_mean_fill_is_each_regions_mean_colour_or_the_images_without_regions():
    image = pixels(3).astype(np.float32)
    segments = np.arange(48).reshape(6, 8) // 10  # five regions of unequal size

    means = region_means(image, segments)

    for s in range(segments.max() + 1):
        np.testing.assert_allclose(
            means[segments == s], np.tile(image[segments == s].mean(axis=0), (np.sum(segments == s), 1)), rtol=1e-6
        )
    np.testing.assert_allclose(
        hidden_image(image, "mean"), np.broadcast_to(image.reshape(-1, 3).mean(0), image.shape), rtol=1e-6
    )


@pytest.mark.parametrize(("fill", "value"), [("grey", 128.0), ("black", 0.0)])
def test_flat_fills(fill, value):
    assert np.all(hidden_image(pixels(), fill) == value)


def test_blur_keeps_the_average_colour_and_removes_the_detail():
    image = pixels(4, (32, 32)).astype(np.float32)

    blurred = hidden_image(image, "blur")

    assert abs(blurred.mean() - image.mean()) < 2.0
    assert blurred.std() < 0.2 * image.std()


def test_an_unknown_fill_is_refused_with_the_vocabulary():
    with pytest.raises(ValueError, match=r"^fill must be one of blur, mean, grey, black; got 'pink'$"):
        hidden_image(pixels(), "pink")


def fill_params() -> list[tuple[str, object]]:
    """Every parameter of every method and metric that says what hidden pixels become."""
    found = [(name, p) for name in explainers.available() for p in explainers.get(name).params if p.name == "fill"]
    return [*found, ("faithfulness", faithfulness.FILL)]


def test_one_fill_vocabulary_everywhere():
    users = dict(fill_params())

    assert {"lime", "shap", "faithfulness"} <= set(users)
    for who, param in users.items():
        assert set(param.choices) <= set(FILLS), who
    assert users["lime"].choices == FILLS  # superpixels: each region's mean colour is defined
    assert users["shap"].choices == users["faithfulness"].choices == PLAIN_FILLS
    names = {p.name for name in explainers.available() for p in explainers.get(name).params}
    assert not names & {"hide_colour", "mask"}  # the old words for the same thing are gone
