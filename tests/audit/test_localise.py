"""Localisation scores from their papers' definitions, boxes from files, and the reduced maps."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from whylabel import audit, models
from whylabel.audit import localise
from whylabel.audit.maps import GRID, evidence_grid
from whylabel.render.audit import grid_png, grid_rgb


def test_mass_accuracy_is_the_positive_evidence_inside_over_all():
    heatmap = np.zeros((10, 10))
    heatmap[2:4, 2:4] = 1.0  # 4 inside the box
    heatmap[8, 8] = 4.0  # 4 outside
    heatmap[3, 3] = -5.0  # negative: not counted anywhere (and it replaces a 1 inside)
    box = (2, 2, 4, 4)
    assert localise.mass_accuracy(heatmap, box) == pytest.approx(3 / 7)


def test_a_uniform_map_scores_the_boxs_share_of_the_image():
    assert localise.mass_accuracy(np.ones((20, 20)), (0, 0, 10, 5)) == pytest.approx(50 / 400)


def test_no_positive_evidence_has_no_mass_accuracy():
    assert localise.mass_accuracy(-np.ones((4, 4)), (0, 0, 2, 2)) is None


def test_the_pointing_game_hits_when_the_maximum_is_inside():
    heatmap = np.zeros((10, 10))
    heatmap[5, 7] = 1.0
    assert localise.pointing(heatmap, (6, 4, 9, 7)) is True  # column 7, row 5: centre (7.5, 5.5)
    assert localise.pointing(heatmap, (0, 0, 5, 5)) is False
    assert localise.pointing(np.zeros((4, 4)), (0, 0, 2, 2)) is None  # a flat map points nowhere


def test_pixels_are_inside_a_box_by_their_centres():
    mask = localise.inside((4, 4), (0.5, 0.5, 2.5, 1.6))
    expected = np.zeros((4, 4), dtype=bool)
    expected[0:2, 0:2] = True  # centres 0.5 and 1.5, both in [0.5, 2.5) x [0.5, 1.6)
    assert np.array_equal(mask, expected)


def test_a_box_moves_into_the_models_view_through_its_crop():
    clf = models.from_module(torch.nn.Identity(), ["a"], input_size=100, crop=0.5)
    img = Image.new("RGB", (400, 200))  # the view: the centred 100 x 100 square at (150, 50), scaled by 1
    assert localise.view_box(clf, img, (150, 50, 250, 150)) == pytest.approx((0, 0, 100, 100))
    assert localise.view_box(clf, img, (175, 75, 200, 100)) == pytest.approx((25, 25, 50, 50))


def test_boxes_read_from_csv_with_or_without_a_header():
    boxes = localise.read_boxes(b"file,left,top,right,bottom\na/x.png,1,2,3,4\ny.jpg, 0, 0, 10, 10\n")
    assert boxes == {"a/x.png": (1, 2, 3, 4), "y.jpg": (0, 0, 10, 10)}
    assert localise.read_boxes(b"x.png,1,2,3,4") == {"x.png": (1, 2, 3, 4)}


def test_boxes_read_from_json_in_either_shape():
    listed = localise.read_boxes(b'[{"file": "x.png", "box": [1, 2, 3, 4]}]')
    mapped = localise.read_boxes(b'{"x.png": [1, 2, 3, 4]}')
    assert listed == mapped == {"x.png": (1, 2, 3, 4)}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"x.png,1,2,3", "line 1: expected file,left,top,right,bottom"),
        (b"x.png,1,2,a,4", "line 1: a box is four numbers"),
        (b"x.png,5,2,3,4", "right must exceed left"),
        (b"x.png,1,2,3,nan", "all finite"),
        (b"[1, 2]", "must be {file"),
        (b"{not json", "not valid JSON"),
        (b'{"x.png": [1, 2]}', "four numbers"),
    ],
)
def test_a_bad_boxes_file_is_refused_with_where(data, words):
    with pytest.raises(ValueError, match="boxes") as info:
        localise.read_boxes(data)
    assert words in str(info.value)


def test_a_box_is_found_by_the_audits_name_or_the_files_name():
    boxes = {"a/x.png": (0, 0, 1, 1), "y.png": (0, 0, 2, 2)}
    assert localise.box_for(boxes, "a/x.png") == (0, 0, 1, 1)
    assert localise.box_for(boxes, "b/y.png") == (0, 0, 2, 2)
    assert localise.box_for(boxes, "z.png") is None


def test_the_evidence_grid_is_the_positive_part_averaged_per_cell_and_summing_to_one():
    heatmap = np.zeros((32, 32), dtype=np.float32)
    heatmap[0:2, 0:2] = 2.0  # the top-left cell, all of it
    heatmap[30:32, 30:32] = 6.0  # the bottom-right cell
    heatmap[10, 10] = -100.0  # against: left out
    grid, found = evidence_grid(heatmap)
    assert found and grid.shape == (GRID, GRID)
    assert grid.sum() == pytest.approx(1.0)
    assert grid[0, 0] == pytest.approx(0.25) and grid[-1, -1] == pytest.approx(0.75)
    assert np.count_nonzero(grid) == 2


def test_a_map_with_no_evidence_for_the_class_is_uniform_and_says_so():
    grid, found = evidence_grid(-np.ones((28, 28)))
    assert not found and grid == pytest.approx(np.full((GRID, GRID), 1 / GRID**2))


def test_an_audited_image_with_a_box_has_both_scores():
    clf = models.load("mnist_cnn")
    img = models.sample_image("mnist digit 3")
    item = audit.map_image(clf, img, "three.png", box=(0, 0, 28, 28))
    assert item.predicted == 3 and item.label == "3" and 0 < item.confidence <= 1
    assert item.localisation == {"mass": pytest.approx(1.0), "pointing": True}  # the box is the whole view
    assert Image.open(io.BytesIO(item.thumb)).size == (64, 64)


def test_a_grid_is_drawn_on_the_scale_asked_for():
    grid = np.zeros((GRID, GRID))
    grid[0, 0] = 0.5
    own, shared = grid_rgb(grid, 32), grid_rgb(grid, 32, top=1.0)
    assert own.shape == (32, 32, 3)
    assert own[0, 0].sum() < shared[0, 0].sum()  # darker at full scale than at half
    assert np.array_equal(own[-1, -1], shared[-1, -1])  # zero is the same pale colour on both
    assert grid_png(grid, 32).startswith(b"\x89PNG")
