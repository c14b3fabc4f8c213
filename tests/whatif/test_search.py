"""What-if sets from their definitions: toy models whose answer is known, 1-minimality by independent passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from whylabel import models, whatif

SIDE, BLOCK = 32, 8
A, B = (0, 0), (3, 3)  # the two blocks the toy models look at (row, column of the 4 x 4 grid)
BLACK = {"fill": "black", "n_segments": 16}


def blocks() -> np.ndarray:
    """A 32 x 32 photo of 16 flat blocks in distinct colours, every red channel at least 0.5."""
    rng = np.random.default_rng(3)
    colours = rng.permutation(np.stack(np.meshgrid([140, 200, 250], [20, 120, 220], [30, 230]), -1).reshape(-1, 3))
    grid = colours[:16].reshape(4, 4, 3).astype(np.uint8)
    return np.kron(grid, np.ones((BLOCK, BLOCK, 1), np.uint8))


def centre(r: int, c: int) -> tuple[slice, slice]:
    """The middle 4 x 4 pixels of a block: what the toy models read (a superpixel's edge may blur a block's)."""
    return slice(r * BLOCK + 2, r * BLOCK + 6), slice(c * BLOCK + 2, c * BLOCK + 6)


class Regions(torch.nn.Module):
    """Class 0 while the red of block A or (`all_needed`: and) block B stays; class 1 once it is gone."""

    def __init__(self, all_needed: bool) -> None:
        super().__init__()
        self.all_needed = all_needed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        red = [x[:, 0, centre(r, c)[0], centre(r, c)[1]].mean(dim=(1, 2)) for r, c in (A, B)]
        both = torch.stack(red, dim=1)
        evidence = both.min(dim=1).values if self.all_needed else both.max(dim=1).values
        return torch.stack([20 * (evidence - 0.1), torch.zeros_like(evidence)], dim=1)


class Constant(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[1.0, 0.0]]).repeat(len(x), 1)


def toy(module: torch.nn.Module) -> models.Classifier:
    plain = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "crop": 1.0}
    return models.from_module(module, ["kept", "lost"], name=type(module).__name__, input_size=SIDE, **plain)


def block_ids(edit: whatif.Edit) -> dict[tuple[int, int], int]:
    """The superpixel holding each block's centre; each centre must lie in one, and no two in the same."""
    ids = {(r, c): int(edit.segments[centre(r, c)][0, 0]) for r in range(4) for c in range(4)}
    for (r, c), sid in ids.items():
        assert (edit.segments[centre(r, c)] == sid).all()
    assert len(set(ids.values())) == 16
    return ids


def top1(clf: models.Classifier, pixels: np.ndarray) -> int:
    """An independent forward pass: the torch path, not the engine or its memory."""
    return int(clf.logits(pixels).argmax())


def hidden_by_hand(pixels: np.ndarray, segments: np.ndarray, hidden: set[int]) -> np.ndarray:
    out = pixels.copy()
    out[np.isin(segments, list(hidden))] = 0  # the black fill
    return out


def assert_counterfactual_is_1_minimal(clf, pixels, edit) -> None:
    changed = set(edit.changed)
    assert top1(clf, hidden_by_hand(pixels, edit.segments, changed)) != edit.before
    for s in changed:  # putting any one back restores the original class
        assert top1(clf, hidden_by_hand(pixels, edit.segments, changed - {s})) == edit.before


def assert_sufficient_is_1_minimal(clf, pixels, edit) -> None:
    shown = set(edit.changed)
    others = set(np.unique(edit.segments).tolist())
    assert top1(clf, hidden_by_hand(pixels, edit.segments, others - shown)) == edit.before
    for s in shown:  # hiding any one of them loses it
        assert top1(clf, hidden_by_hand(pixels, edit.segments, others - shown | {s})) != edit.before


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.fromarray(blocks())


def test_when_either_region_is_enough_both_must_be_hidden_and_either_alone_keeps_it(photo):
    clf = toy(Regions(all_needed=False))

    edit = whatif.counterfactual(clf, photo, **BLACK)
    keep = whatif.sufficient(clf, photo, **BLACK)

    ids = block_ids(edit)
    assert edit.found and set(edit.changed) == {ids[A], ids[B]}
    assert (edit.before, edit.after) == (0, 1)
    assert keep.found and set(keep.changed) in ({ids[A]}, {ids[B]}) and keep.after == 0
    pixels = clf.input_image(photo)
    assert_counterfactual_is_1_minimal(clf, pixels, edit)
    assert_sufficient_is_1_minimal(clf, pixels, keep)
    np.testing.assert_array_equal(edit.pixels, hidden_by_hand(pixels, edit.segments, set(edit.changed)))
    assert (edit.hidden == 0).all()  # every superpixel hidden by the black fill


def test_when_both_regions_are_needed_either_hidden_flips_it_and_both_must_stay(photo):
    clf = toy(Regions(all_needed=True))

    edit = whatif.counterfactual(clf, photo, **BLACK)
    keep = whatif.sufficient(clf, photo, **BLACK)

    ids = block_ids(edit)
    assert edit.found and set(edit.changed) in ({ids[A]}, {ids[B]})
    assert keep.found and set(keep.changed) == {ids[A], ids[B]}
    pixels = clf.input_image(photo)
    assert_counterfactual_is_1_minimal(clf, pixels, edit)
    assert_sufficient_is_1_minimal(clf, pixels, keep)
    assert 0 < edit.evaluations <= 400 and edit.seconds > 0


def test_a_class_that_cannot_change_is_said_not_found(photo):
    clf = toy(Constant())

    edit = whatif.counterfactual(clf, photo, **BLACK, budget=60)
    keep = whatif.sufficient(clf, photo, **BLACK)

    assert not edit.found and edit.changed == () and edit.after == edit.before
    assert "No set of superpixels was found within 60 forward passes" in edit.message
    assert edit.evaluations <= 60
    np.testing.assert_array_equal(edit.pixels, clf.input_image(photo))  # nothing edited when nothing found
    assert keep.found and keep.changed == () and "every superpixel hidden" in keep.message


def test_on_a_trained_model_both_sets_are_1_minimal_by_independent_passes():
    clf = models.load("mnist_cnn")
    img = models.sample_image("mnist digit 3")
    chosen = {"segmentation": "slic", "n_segments": 30, "fill": "black", "budget": 600}

    edit = whatif.counterfactual(clf, img, **chosen)
    keep = whatif.sufficient(clf, img, **chosen)

    pixels = clf.input_image(img)
    assert edit.found and keep.found, (edit.message, keep.message)
    assert edit.before == keep.before == clf.predict(img).top[0][0] and edit.after != edit.before
    assert_counterfactual_is_1_minimal(clf, pixels, edit)
    assert_sufficient_is_1_minimal(clf, pixels, keep)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"budget": 0}, "budget"),
        ({"fill": "paint"}, "fill"),
        ({"window": 3}, "unknown parameter 'window'"),
        ({"target": 1}, "not it"),
    ],
)
def test_bad_requests_are_refused(photo, params, message):
    with pytest.raises(ValueError, match=message):
        whatif.counterfactual(toy(Regions(False)), photo, **params)


def test_the_edited_view_shown_is_the_one_the_search_ran():
    """With the blur fill the hidden pixels are fractions: the search runs them rounded, as the page shows them."""
    clf = models.load("mnist_cnn")
    img = models.sample_image("mnist digit 7")
    for search in (whatif.counterfactual, whatif.sufficient):
        edit = search(clf, img, segmentation="slic", n_segments=30)
        assert edit.pixels.dtype == np.uint8 and edit.found, edit.message
        assert clf.predict_view(edit.pixels).top[0][0] == edit.after
        np.testing.assert_allclose(clf.predict_view(edit.pixels).probs[edit.before], edit.after_probability, atol=1e-4)
