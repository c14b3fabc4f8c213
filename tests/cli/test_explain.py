"""The `whylabel` command line: batch evidence, bad files skipped, the same records on a local Ray."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from whylabel import cli, explainers, models

WHYLABEL = Path(sys.executable).with_name("whylabel")
FAST = ["--model", "mnist_cnn", "--methods", "saliency,occlusion,lime"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two digits (one in a subfolder), a text file named .png, and a file that is not an image by suffix."""
    folder = tmp_path_factory.mktemp("photos")
    (folder / "more").mkdir()
    models.sample_image("mnist digit 3").save(folder / "three.png")
    models.sample_image("mnist digit 7").save(folder / "more" / "seven.png")
    (folder / "notes.png").write_text("these are my notes, not a picture\n")
    (folder / "readme.txt").write_text("not searched: not an image suffix\n")
    return folder


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(args)
    return code, capsys.readouterr().err


def test_the_installed_command_lists_the_models():
    out = subprocess.run([str(WHYLABEL), "models"], capture_output=True, text=True, check=True)

    assert out.stdout.split() == models.available()


def test_explain_writes_every_image_skips_a_bad_one_and_says_so(photos, tmp_path, capsys):
    code, err = run(["explain", str(photos), *FAST, "--seed", "2", "--out", str(tmp_path)], capsys)

    assert code == 1  # some image failed
    assert "skipped" in err and "notes.png" in err and "not an image whylabel can read" in err
    assert "explaining" in err and "3/3" in err  # the progress bar, on stderr
    assert "readme.txt" not in err
    for stem, digit in (("three", 3), ("seven", 7)):
        folder = tmp_path / stem
        assert {p.name for p in folder.iterdir()} >= {"figure.png", "record.json", "heatmaps.npz"}
        record = json.loads((folder / "record.json").read_text())
        assert record["target"]["index"] == digit == record["top5"][0]["index"]
        assert [m["name"] for m in record["methods"]] == ["saliency", "occlusion", "lime"]
        assert all(m["params"]["seed"] == 2 for m in record["methods"])
        assert set(np.load(folder / "heatmaps.npz").files) == {"model_input", "saliency", "occlusion", "lime"}
    index = (tmp_path / "index.html").read_text()
    assert "2 of 3 images" in index
    assert "href='three/figure.png'" in index and "href='seven/report.html'" in index
    assert "skipped: This file is not an image" in index
    assert index.count("<tr>") == 1 + 3


def test_all_good_images_exit_zero_and_a_label_target_works(photos, tmp_path, capsys):
    three = photos / "three.png"
    code, _ = run(["explain", str(three), *FAST, "--target", "8", "--out", str(tmp_path)], capsys)

    assert code == 0
    record = json.loads((tmp_path / "three" / "record.json").read_text())
    assert record["target"] == {**record["target"], "index": 8, "label": "8"}


def test_images_with_the_same_name_get_their_own_folders(photos, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(photos / "more" / "seven.png", other / "three.png")

    code, _ = run(["explain", str(photos / "three.png"), str(other), *FAST, "--out", str(tmp_path / "out")], capsys)

    assert code == 0
    first = json.loads((tmp_path / "out" / "three" / "record.json").read_text())
    second = json.loads((tmp_path / "out" / "three-2" / "record.json").read_text())
    assert (first["target"]["index"], second["target"]["index"]) == (3, 7)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "resnet9000"], "unknown model 'resnet9000'"),
        (["--model", "mnist_cnn", "--methods", "saliency,magic"], "unknown method"),
        (["--model", "mnist_cnn", "--target", "12"], "target 12 is outside the labels"),
        (["--model", "mnist_cnn", "--target", "cat"], "unknown label 'cat'"),
        (["--model", "mnist_cnn", "--target", "3", "--contrast", "3"], "must differ"),
        (["--model", "mnist_cnn", "--seed", "-4"], "seed"),
        (["--model", "mnist_cnn", "--threads", "0"], "threads"),
    ],
)
def test_a_bad_command_line_is_refused_before_any_work(photos, tmp_path, capsys, args, message):
    code, err = run(["explain", str(photos), *args, "--out", str(tmp_path)], capsys)

    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "index.html").exists()


def test_no_images_found_is_refused(tmp_path, capsys):
    code, err = run(["explain", str(tmp_path), *FAST, "--out", str(tmp_path / "out")], capsys)

    assert code == 2 and "no images found" in err


def records(folder: Path) -> dict[str, dict]:
    """Each image's record without what may differ between runs: timings and the engine's batch size."""
    out = {}
    for path in sorted(folder.glob("*/record.json")):
        record = json.loads(path.read_text())
        record["model"].pop("engine")
        for method in record["methods"]:
            method.pop("seconds")
        out[path.parent.name] = record
    return out


def test_ray_gives_the_records_of_a_local_run(photos, tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local Ray, started for the run and stopped after
    args = ["explain", str(photos), *FAST, "--seed", "1"]

    local, _ = run([*args, "--out", str(tmp_path / "local")], capsys)
    remote, err = run([*args, "--ray", "--out", str(tmp_path / "ray")], capsys)

    assert local == remote == 1
    assert "skipped" in err and "notes.png" in err
    here, there = records(tmp_path / "local"), records(tmp_path / "ray")
    assert set(here) == set(there) == {"three", "seven"}
    for name in here:
        for key in here[name]:
            assert here[name][key] == there[name][key], (name, key)


# --- your own model ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("digit")
    models.sample_image("mnist digit 3").save(folder / "three.png")
    return folder


def maps(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "heatmaps.npz", allow_pickle=False) as found:
        return {name: found[name] for name in found.files}


def test_a_state_dict_of_the_packaged_weights_gives_the_packaged_models_evidence(digit, tmp_path, capsys):
    weights = tmp_path / "weights.pt"
    torch.save(models.load("mnist_cnn").module.state_dict(), weights)
    methods = ["--methods", "saliency,occlusion"]

    packaged, _ = run(["explain", str(digit), "--model", "mnist_cnn", *methods, "--out", str(tmp_path / "a")], capsys)
    own_model = ["--model-file", str(weights), "--architecture", "mnist_cnn"]
    own, err = run(["explain", str(digit), *own_model, *methods, "--out", str(tmp_path / "b")], capsys)

    assert (packaged, own) == (0, 0), err
    record = json.loads((tmp_path / "b" / "three" / "record.json").read_text())
    assert record["model"]["name"].startswith("weights.pt (") and record["target"]["index"] == 3
    expected, found = maps(tmp_path / "a" / "three"), maps(tmp_path / "b" / "three")
    assert expected.keys() == found.keys() == {"saliency", "occlusion", "model_input"}
    for name in expected:  # the same weights and preprocessing: the same maps
        np.testing.assert_array_equal(found[name], expected[name])


def scripted_cnn(path: Path) -> None:
    """A small scripted CNN with three outputs, saved as a user would with torch.jit.script(model).save()."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 3),
    ).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in favour of torch.export
        torch.jit.save(torch.jit.script(module), str(path))


def test_a_torchscript_file_runs_in_its_worker_with_the_chosen_preprocessing(digit, tmp_path, capsys):
    model, labels = tmp_path / "cnn.pt", tmp_path / "labels.txt"
    scripted_cnn(model)
    labels.write_text("round\nsquare\nother\n")
    chosen = ["--input-size", "32", "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25", "--crop", "1"]

    own_model = ["--model-file", str(model), "--labels", str(labels), *chosen]
    methods = ["--methods", "saliency,occlusion"]
    code, err = run(["explain", str(digit), *own_model, *methods, "--out", str(tmp_path / "out")], capsys)

    assert code == 0, err
    record = json.loads((tmp_path / "out" / "three" / "record.json").read_text())
    assert record["model"]["name"].startswith("cnn.pt (") and record["model"]["classes"] == 3
    assert record["target"]["label"] in {"round", "square", "other"}
    assert record["image"]["preprocessing"] | {"resample": None} == {
        "input_size": 32, "crop": 1.0, "mean": [0.5] * 3, "std": [0.25] * 3, "resample": None
    }  # fmt: skip
    clf = models.load_user_model(
        model.read_bytes(), labels.read_bytes(), "cnn.pt", None, 32, (0.5,) * 3, (0.25,) * 3, 1.0
    )
    for method, found in maps(tmp_path / "out" / "three").items():  # what the page computes for this model
        if method != "model_input":
            att = explainers.explain(
                clf, models.open_image(digit / "three.png"), method, target=record["target"]["index"]
            )
            np.testing.assert_allclose(found, att.heatmap, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--labels", "labels.txt"], "--labels is for --model-file"),
        (["--crop", "0.9"], "--crop is for --model-file"),
        (["--model", "mnist_cnn", "--model-file", "weights.pt"], "not both"),
        (["--model-file", "missing.pt"], "cannot read the model file"),
        (["--model-file", "pickled.pt"], "pickle"),
        (["--model-file", "labels.txt"], "model"),
    ],
)
def test_a_bad_model_file_is_refused_with_the_pages_message(digit, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "labels.txt").write_text("a\nb\n")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "pickled.pt")  # a whole pickled module: code, refused
    torch.save(models.load("mnist_cnn").module.state_dict(), tmp_path / "weights.pt")

    code, err = run(["explain", str(digit), *args, "--out", str(tmp_path / "out")], capsys)

    assert code == 2 and message in err.lower() and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_bad_normalisation_is_a_usage_error(digit, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["explain", str(digit), "--model-file", "x.pt", "--mean", "0.5,0.5", "--out", str(tmp_path)])
    assert exit_.value.code == 2


def test_whatif_adds_both_sets_to_each_record(digit, tmp_path, capsys):
    code, err = run(
        ["explain", str(digit), *FAST[:2], "--methods", "saliency", "--whatif", "--out", str(tmp_path)], capsys
    )

    assert code == 0, err
    record = json.loads((tmp_path / "three" / "record.json").read_text())
    assert [entry["kind"] for entry in record["whatif"]] == ["counterfactual", "sufficient"]
    assert all(entry["before"]["index"] == record["target"]["index"] for entry in record["whatif"])
    assert {"whatif_counterfactual", "whatif_sufficient", "whatif_segments"} <= set(maps(tmp_path / "three"))
