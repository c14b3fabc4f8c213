"""The evidence bundle: what record.json states must be checkable against the files and the model."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from importlib import metadata

import numpy as np
import pytest
from PIL import Image

from whylabel import evidence, models, trust, whatif
from whylabel.evidence.bundle import heatmaps_npz
from whylabel.evidence.figure import figure_png
from whylabel.render import Display

METHODS = ["saliency", "occlusion", "lime", "shap"]
FAST = {"lime": {"samples": 60}, "shap": {"evaluations": 40}}


@pytest.fixture(scope="module")
def mnist() -> models.Classifier:
    return models.load("mnist_cnn")


@pytest.fixture(scope="module")
def digit_file() -> bytes:
    buffer = io.BytesIO()
    models.sample_image("mnist digit 7").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def found(mnist, digit_file) -> evidence.Evidence:
    image = models.open_image(digit_file)
    return evidence.collect(mnist, image, METHODS, name="seven.png", image_bytes=digit_file, seed=3, params=FAST)


@pytest.fixture(scope="module")
def bundle(found) -> dict[str, bytes]:
    return evidence.files(found)


def test_the_bundle_has_the_five_files(bundle):
    assert set(bundle) == {"figure.png", "record.json", "heatmaps.npz", "report.html", "model_card.md"}


def test_record_names_versions_and_the_runtime(bundle):
    record = json.loads(bundle["record.json"])

    for package in ("whylabel", "torch", "captum", "lime", "shap", "numpy"):
        assert record["versions"][package] == metadata.version(package)
    assert record["runtime"]["torch_threads"] >= 1


def test_record_weights_hash_is_the_weights_files(bundle, mnist):
    model = json.loads(bundle["record.json"])["model"]

    with open(mnist.weights_path, "rb") as f:
        assert model["weights_sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert (model["name"], model["weights_sha256_of"], model["classes"]) == ("mnist_cnn", "file", 10)


def test_a_model_without_a_file_is_hashed_by_its_state_dict(tiny_clf, noise_image):
    found = evidence.collect(tiny_clf, noise_image(16, 16), ["saliency"], score=False)
    model = json.loads(evidence.files(found, report=False)["record.json"])["model"]

    assert model["weights_sha256_of"].startswith("state_dict")
    assert evidence.record.weights_sha256(tiny_clf)[0] == model["weights_sha256"]
    tiny_clf.module.head.bias.data[0] += 1  # any change to a weight changes the hash
    assert evidence.record.weights_sha256(tiny_clf)[0] != model["weights_sha256"]


def test_record_image_hash_size_and_preprocessing(bundle, mnist, digit_file):
    image = json.loads(bundle["record.json"])["image"]

    assert image["sha256"] == hashlib.sha256(digit_file).hexdigest() and image["sha256_of"] == "file"
    assert (image["width"], image["height"]) == Image.open(io.BytesIO(digit_file)).size
    assert image["preprocessing"] == {
        "input_size": mnist.input_size,
        "crop": mnist.crop,
        "resample": Image.Resampling(mnist.resample).name.lower(),
        "mean": list(mnist.mean),
        "std": list(mnist.std),
    }


def test_record_target_and_top5_are_the_prediction(bundle, mnist):
    record = json.loads(bundle["record.json"])
    prediction = mnist.predict(models.sample_image("mnist digit 7"), k=5)

    assert [(c["index"], c["label"]) for c in record["top5"]] == [(i, label) for i, label, _ in prediction.top]
    assert [c["probability"] for c in record["top5"]] == pytest.approx([p for _, _, p in prediction.top], abs=1e-6)
    assert record["target"]["index"] == prediction.top[0][0] == 7
    assert record["contrast"] is None


def test_every_method_records_its_parameters_seed_hash_and_scores(bundle, found):
    record = json.loads(bundle["record.json"])
    maps = np.load(io.BytesIO(bundle["heatmaps.npz"]))

    assert [m["name"] for m in record["methods"]] == METHODS
    for entry, att in zip(record["methods"], found.attributions, strict=True):
        assert entry["params"] == att.params and entry["params"]["seed"] == 3
        for name, value in FAST.get(entry["name"], {}).items():
            assert entry["params"][name] == value
        stored = maps[entry["name"]]
        assert stored.dtype == np.float32 and np.array_equal(stored, att.heatmap)
        assert entry["heatmap_sha256"] == hashlib.sha256(stored.tobytes()).hexdigest()
        assert set(entry["trust"]) == {
            "deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc",
            "random_deletion_range", "random_insertion_range", "verdicts", "random_maps",
        }  # fmt: skip
        low, high = entry["trust"]["random_deletion_range"]
        assert low <= entry["trust"]["random_deletion_auc"] <= high and entry["trust"]["random_maps"] == 8
        assert set(entry["trust"]["verdicts"]) == {"deletion", "insertion"}
        assert entry["seconds"] >= 0
    np.testing.assert_array_equal(maps["model_input"], found.pixels)


def test_a_method_refused_for_the_model_is_recorded_not_raised(lite0):
    found = evidence.collect(lite0, models.sample_image("coffee"), ["saliency", "guided_backprop"], score=False)

    assert [att.method for att in found.attributions] == ["saliency"]
    assert "ReLU6" in found.failures["guided_backprop"]
    assert json.loads(evidence.files(found, report=False)["record.json"])["failures"] == found.failures


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"methods": ["saliency", "magic"]}, "unknown method"),
        ({"target": 99}, "outside the labels"),
        ({"contrast": 7, "target": 7}, "must differ"),
        ({"seed": -1}, "seed"),
    ],
)
def test_a_bad_request_is_a_value_error(mnist, kwargs, message):
    arguments = {"methods": ["saliency"], **kwargs}
    with pytest.raises(ValueError, match=message):
        evidence.collect(mnist, models.sample_image("mnist digit 7"), **arguments)


def test_a_contrast_is_recorded_and_drawn(mnist):
    found = evidence.collect(mnist, models.sample_image("mnist digit 7"), ["saliency"], contrast="1", score=False)

    record = json.loads(evidence.files(found, report=False)["record.json"])

    assert record["contrast"]["index"] == 1 and record["contrast"]["label"] == "1"
    assert evidence.figure.caption(found).count(" rather than 1 (1, p = ") == 1


def test_figure_is_a_png_with_a_panel_per_map_and_a_caption(bundle, found):
    figure = Image.open(io.BytesIO(bundle["figure.png"]))

    assert figure.format == "PNG"
    assert figure.width == 100 * evidence.figure.PANEL_INCHES * (1 + len(METHODS))
    caption = evidence.figure.caption(found)
    assert caption.startswith("Model mnist_cnn · image seven.png (sha256 ")
    assert "· target 7 (7, p = " in caption and " rather than " not in caption and caption.endswith("seed 3")


def test_report_is_self_contained_and_states_the_record(bundle):
    report = bundle["report.html"].decode()
    record = json.loads(bundle["record.json"])

    assert "<script" not in report and "<link" not in report
    assert not re.search(r"src=['\"](?!data:)", report)  # every image is inline
    assert "data:image/png;base64," in report
    for entry in record["methods"]:
        assert entry["heatmap_sha256"][:16] in report and entry["title"] in report
    assert record["model"]["weights_sha256"] in report and record["image"]["sha256"] in report


def test_model_card_snippet_has_a_row_per_method(bundle):
    card = bundle["model_card.md"].decode()

    assert card.startswith("### Explanation evidence: Why 7 (7, p = ")
    assert "![the model's view and each explanation map](figure.png)" in card
    assert sum(line.startswith("| ") for line in card.splitlines()) == 1 + len(METHODS)


def test_the_zip_holds_the_files_and_is_the_same_for_the_same_files(bundle):
    packed = evidence.zip_bytes(bundle, folder="seven")

    with zipfile.ZipFile(io.BytesIO(packed)) as archive:
        assert sorted(archive.namelist()) == sorted(f"seven/{name}" for name in bundle)
        assert archive.read("seven/record.json") == bundle["record.json"]
    assert evidence.zip_bytes(bundle, folder="seven") == packed


FRESH = """
import json, sys
from whylabel import evidence, models
name, image, methods = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
found = evidence.collect(models.load(name), models.sample_image(image), methods, seed=5, score=False)
print(json.dumps({m["name"]: m["heatmap_sha256"] for m in found.record()["methods"]}))
"""


@pytest.mark.parametrize(
    ("model", "image", "methods"),
    [
        ("mnist_cnn", "mnist digit 2", [*METHODS, "integrated_gradients", "smoothgrad", "gradcam"]),
        ("efficientnet_lite0", "coffee", METHODS),
    ],
)
def test_a_fresh_process_gives_byte_identical_maps(model, image, methods):
    here = evidence.collect(models.load(model), models.sample_image(image), methods, seed=5, score=False)

    out = subprocess.run(
        [sys.executable, "-c", FRESH, model, image, ",".join(methods)], capture_output=True, text=True, check=True
    )

    there = json.loads(out.stdout)
    assert there == {att.method: evidence.heatmap_sha256(att.heatmap) for att in here.attributions}
    assert len(set(there.values())) == len(methods)


def test_heatmaps_npz_loads_without_pickle(found):
    with np.load(io.BytesIO(heatmaps_npz(found)), allow_pickle=False) as maps:
        assert set(maps.files) == {"model_input", *METHODS}


def test_the_figure_and_record_follow_the_display_settings_of_the_page(mnist):
    image = models.sample_image("mnist digit 7")
    made = {
        display: evidence.collect(mnist, image, ["saliency", "occlusion"], score=False, display=display)
        for display in (Display(), Display(percentile=90.0), Display(shared=False), Display(opacity=0.3))
    }

    pngs = {display: evidence.files(found, report=False)["figure.png"] for display, found in made.items()}
    assert len(set(pngs.values())) == len(pngs)  # every setting changes what is drawn
    for display, found in made.items():
        record = json.loads(evidence.files(found, report=False)["record.json"])
        assert record["display"] == {"shared": display.shared, "percentile": display.percentile,
                                     "opacity": display.opacity}  # fmt: skip
        assert f"{display.percentile:g}th percentile" in record["colour_scale"]
        assert ("divided by" in record["colour_scale"]) is display.shared


# The figure's diverging stops (rgb, alpha) at -1, 0.5 and 1, written out: what a pixel of a signed map must be.
BLUE, PALE_RED, DARK_RED = ((5, 48, 97), 0.95), ((214, 96, 77), 0.75), ((103, 0, 31), 0.95)
GREY = 128


def over_grey(stop: tuple[tuple[int, int, int], float], opacity: float) -> np.ndarray:
    """A colour stop drawn at `opacity` over a uniform grey image: alpha blending by hand."""
    rgb, alpha = stop
    weight = alpha * opacity
    return weight * np.array(rgb, float) + (1 - weight) * GREY


def grey_panels(pixels: np.ndarray, columns: int) -> list[tuple[int, int, int, int]]:
    """(top, bottom, left, right) of each panel's uniform grey image: the rows and columns of the figure's
    column that hold many exactly-grey pixels (text and colour bars hold few)."""
    grey = np.abs(pixels - GREY).max(axis=-1) <= 1
    width = pixels.shape[1] // columns
    boxes = []
    for column in range(columns):
        part = grey[:, column * width : (column + 1) * width]
        rows, cols = np.flatnonzero(part.sum(axis=1) > 50), np.flatnonzero(part.sum(axis=0) > 50)
        boxes.append((rows[0], rows[-1] + 1, column * width + cols[0], column * width + cols[-1] + 1))
    return boxes


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The [start, end) runs of True in a 1-D mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


@pytest.mark.parametrize(
    ("display", "half_block"),
    [
        (Display(), PALE_RED),
        (Display(shared=False), PALE_RED),  # its own units: the same colours, a colour bar under each panel
        (Display(percentile=85.0), DARK_RED),  # p85 of |value| is 0.5 here: the 0.5 block is clipped to full
        (Display(opacity=0.3), PALE_RED),
    ],
)
def test_the_figure_draws_red_for_blue_against_and_its_colour_bars(tiny_clf, display, half_block):
    """A hand-made signed map over a uniform grey image: a block at +1, one at +0.5, one at -1, zero elsewhere
    (48 of 256 pixels non-zero, so its p99 of |value| is 1), and the same map at half the amplitude. Read
    back from the PNG: each block's pixel is its colour stop blended over the grey by hand, zero shows the grey,
    the half-amplitude map is drawn the same (each map divided by its own percentile), the model's view is
    plain grey, and the colour bars run blue to red: one shared bar, or one under each panel."""
    image = Image.new("RGB", (16, 16), (GREY, GREY, GREY))
    found = evidence.collect(tiny_clf, image, ["occlusion"], score=False, display=display, keep=False)
    heatmap = np.zeros((16, 16), np.float32)
    heatmap[2:6, 2:6], heatmap[2:6, 10:14], heatmap[10:14, 10:14] = 1.0, 0.5, -1.0
    (att,) = found.attributions
    found.attributions = [
        dataclasses.replace(att, heatmap=heatmap),
        dataclasses.replace(att, method="shap", heatmap=heatmap / 2),
    ]

    pixels = np.asarray(Image.open(io.BytesIO(figure_png(found))).convert("RGB"), dtype=float)

    view, *maps = grey_panels(pixels, columns=3)

    def at(box: tuple[int, int, int, int], row: float, col: float) -> np.ndarray:
        """The figure's pixel at (row, col) of the 16x16 map, in map cells."""
        top, bottom, left, right = box
        return pixels[int(top + row / 16 * (bottom - top)), int(left + col / 16 * (right - left))]

    expected = {  # block centres, in map cells
        (4, 4): over_grey(DARK_RED, display.opacity),
        (4, 12): over_grey(half_block, display.opacity),
        (12, 12): over_grey(BLUE, display.opacity),
        (12, 4): np.full(3, GREY),  # zero is transparent
    }
    # Within 4 of 255: matplotlib looks colours up in a finite table and rounds when it blends.
    for box in maps:
        for (row, col), colour in expected.items():
            np.testing.assert_allclose(at(box, row, col), colour, atol=4, err_msg=f"cell {(row, col)} of {box}")
    red, blue = at(maps[0], 4, 4), at(maps[0], 12, 12)
    assert red[0] > red[2] and blue[2] > blue[0]  # reddish for, bluish against
    if half_block is PALE_RED:  # half the value is paler: nearer the grey beneath than the full block
        assert np.abs(at(maps[0], 4, 12) - GREY).sum() < np.abs(red - GREY).sum()
    for row, col in expected:
        np.testing.assert_array_equal(at(view, row, col), [GREY] * 3)  # the model's view has no overlay

    below = max(bottom for _, bottom, _, _ in maps)
    is_blue = pixels[below:, :, 2] - pixels[below:, :, 0] > 60
    is_red = pixels[below:, :, 0] - pixels[below:, :, 2] > 50
    (bar_rows,) = np.nonzero(is_blue.any(axis=1) & is_red.any(axis=1))
    assert len(bar_rows) >= 5, "no colour bar under the panels"
    middle = bar_rows[len(bar_rows) // 2]
    bars = list(zip(runs(is_blue[middle]), runs(is_red[middle]), strict=True))
    assert all(blue_end < red_start for (_, blue_end), (red_start, _) in bars)  # blue on the left, red on the right
    if display.shared:
        assert len(bars) == 1
    else:
        assert len(bars) == 2
        for ((blue_start, _), (_, red_end)), (_, _, left, right) in zip(bars, maps, strict=True):
            assert abs((blue_start + red_end) / 2 - (left + right) / 2) <= 5  # centred under its own panel


def test_a_sanity_check_is_recorded_with_its_verdict_and_rule(found):
    verdict = trust.verdict(0.71)
    found.scores["saliency"] = {**found.scores["saliency"], "sanity": verdict}
    try:
        record = json.loads(evidence.files(found)["record.json"])
        html = evidence.files(found)["report.html"].decode()
    finally:
        del found.scores["saliency"]["sanity"]

    (saliency,) = [m for m in record["methods"] if m["name"] == "saliency"]
    assert saliency["trust"]["sanity"] == {"correlation": 0.71, "passed": False, "rule": verdict.rule}
    assert "0.710, fails" in html


def test_the_what_if_sets_go_into_the_record_the_maps_file_and_the_figure(mnist, digit_file):
    image = models.open_image(digit_file)
    plain = evidence.collect(mnist, image, ["saliency"], name="three.png", image_bytes=digit_file, score=False)
    found = evidence.collect(
        mnist, image, ["saliency"], name="three.png", image_bytes=digit_file, score=False, whatif=True
    )

    record = found.record()
    assert [entry["kind"] for entry in record["whatif"]] == ["counterfactual", "sufficient"]
    assert plain.record()["whatif"] == []
    for entry, search in zip(record["whatif"], (whatif.counterfactual, whatif.sufficient), strict=True):
        direct = search(mnist, image)  # the same search with the same defaults and seed
        assert entry["superpixels"] == list(direct.changed) and entry["found"] == direct.found
        top = mnist.predict(image).top[0]
        assert entry["before"]["index"] == direct.before == top[0] and entry["after"]["index"] == direct.after
        assert entry["before"]["probability"] == pytest.approx(top[2])
        assert entry["before_probability_after_edit"] == pytest.approx(direct.after_probability)
    with np.load(io.BytesIO(heatmaps_npz(found)), allow_pickle=False) as arrays:
        for edit in found.edits:
            np.testing.assert_array_equal(arrays[f"whatif_{edit.kind}"], edit.pixels)
        np.testing.assert_array_equal(arrays["whatif_segments"], found.edits[0].segments)
    wide, narrow = (Image.open(io.BytesIO(figure_png(e))).width for e in (found, plain))
    assert wide > narrow  # a panel per edited view beside the maps
