"""`whylabel audit`: the files it writes, its groups, boxes, bad input, and Ray giving the local result."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from whylabel import audit, cli, models
from whylabel.audit import demo, intake
from whylabel.models.marked import Mark


@pytest.fixture(scope="module")
def digit_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fifth of the demo's held-out digits: marked/ (7s with the mark), plain/ (the rest), and a bad file."""
    folder = tmp_path_factory.mktemp("set")
    for n, (file, img, group) in enumerate(demo.images(Mark())):
        if n % 5 == 0:
            (folder / group).mkdir(exist_ok=True)
            img.save(folder / file)
    (folder / "plain" / "notes.png").write_text("not a picture\n")
    return folder


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(args)
    return code, capsys.readouterr().err


def test_an_audit_writes_the_page_and_the_record(digit_set, tmp_path, capsys):
    code, err = run(["audit", str(digit_set), "--model", "mnist_marked", "--out", str(tmp_path)], capsys)
    assert code == 1  # one file was skipped
    assert "skipped" in err and "notes.png" in err and "clusters flagged" in err
    record = json.loads((tmp_path / "audit.json").read_text())
    assert record["model"] == "mnist_marked" and record["method"] == "saliency"
    files = {image["file"] for image in record["images"]}
    assert len(files) == len(list(digit_set.rglob("*_*.png")))
    assert all(f.startswith(("marked/", "plain/")) for f in files)
    assert [f["file"] for f in record["failed"]] == ["plain/notes.png"]
    assert "not an image whylabel can read" in record["failed"][0]["why"]
    flagged = [c for c in record["clusters"] if c["flagged"]]
    assert flagged and all(c["class"] == 7 and "top-left corner" in c["why"] for c in flagged)
    assert all(m.startswith("marked/") for c in flagged for m in c["members"])
    assert {g["group"] for g in record["groups"]} == {"marked", "plain"}
    page = (tmp_path / "index.html").read_text()
    assert "Flagged" in page and "top-left corner" in page and "notes.png" in page
    assert "http://" not in page and "https://" not in page  # self-contained: every picture inlined


def test_several_paths_without_subfolders_are_groups_of_their_own(digit_set, tmp_path, capsys):
    code, _ = run(
        ["audit", str(digit_set / "marked"), str(digit_set / "plain"), "--model", "mnist_cnn", "--out", str(tmp_path)],
        capsys,
    )
    record = json.loads((tmp_path / "audit.json").read_text())
    assert code == 1
    assert {g["group"] for g in record["groups"]} == {"marked", "plain"}
    assert all(image["file"].startswith(image["group"] + "/") for image in record["images"])


def test_boxes_add_localisation_per_image_and_per_class(digit_set, tmp_path, capsys):
    first, second, *_ = sorted(p.name for p in (digit_set / "marked").iterdir())
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(f"file,left,top,right,bottom\n{first},0,0,28,28\nmarked/{second},0,0,1,1\n")
    args = ["audit", str(digit_set), "--model", "mnist_marked", "--boxes", str(boxes), "--out", str(tmp_path / "o")]
    run(args, capsys)
    record = json.loads((tmp_path / "o" / "audit.json").read_text())
    scores = {image["file"]: image["localisation"] for image in record["images"] if "localisation" in image}
    assert set(scores) == {f"marked/{first}", f"marked/{second}"}  # by the file's name, or its path in the set
    assert scores[f"marked/{first}"] == {"mass": pytest.approx(1.0), "pointing": True}  # the whole view
    assert scores[f"marked/{second}"]["mass"] < 0.05 and scores[f"marked/{second}"]["pointing"] is False
    assert record["localisation"]["all"]["images"] == 2
    assert record["localisation"]["classes"]["7"]["pointing_game"] == pytest.approx(0.5)
    assert "Localisation" in (tmp_path / "o" / "index.html").read_text()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--model", "resnet"], "unknown model 'resnet'"),
        (["--model", "mnist_cnn", "--method", "magic"], "unknown method 'magic'"),
        (["--model", "mnist_cnn", "--boxes", "/nonexistent/boxes.csv"], "cannot read the boxes file"),
        (["--model", "mnist_cnn", "--threads", "0"], "--threads must be at least 1"),
        (["--model", "mnist_cnn", "--labels", "x.txt"], "--labels is for --model-file"),
    ],
)
def test_a_bad_command_line_is_refused_in_one_line(digit_set, tmp_path, capsys, extra, words):
    code, err = run(["audit", str(digit_set), *extra, "--out", str(tmp_path)], capsys)
    assert code == 2
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "audit.json").exists()


def test_no_images_is_refused(tmp_path, capsys):
    code, err = run(["audit", str(tmp_path), "--model", "mnist_cnn", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "no images found" in err


def test_ray_gives_the_record_of_a_local_run(digit_set, tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    args = ["audit", str(digit_set / "marked"), str(digit_set / "plain"), "--model", "mnist_cnn"]
    local, _ = run([*args, "--out", str(tmp_path / "local")], capsys)
    remote, _ = run([*args, "--ray", "--out", str(tmp_path / "ray")], capsys)
    assert local == remote == 1
    here, there = (json.loads((tmp_path / d / "audit.json").read_text()) for d in ("local", "ray"))
    assert here == there


def test_an_onnx_model_is_audited_by_occlusion(digit_set, tmp_path, capsys):
    """A graph gives no gradients: the audit's default becomes occlusion, and the record says to trust its flags
    less. (On this small set, 20 sevens, occlusion neither separates the marked ones nor avoids false flags.)"""
    clf = models.load("mnist_marked")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated
        torch.onnx.export(clf.module, (torch.zeros(1, 3, 28, 28),), buffer, dynamo=False, input_names=["image"])
    (tmp_path / "marked.onnx").write_bytes(buffer.getvalue())
    (tmp_path / "labels.txt").write_text("\n".join(clf.labels) + "\n")
    mean, std = (",".join(str(v) for v in values) for values in (clf.mean, clf.std))
    args = [
        "audit",
        str(digit_set),
        "--model-file",
        str(tmp_path / "marked.onnx"),
        "--labels",
        str(tmp_path / "labels.txt"),
    ]
    args += ["--input-size", "28", "--mean", mean, "--std", std, "--crop", "1", "--out", str(tmp_path / "o")]
    code, err = run(args, capsys)
    record = json.loads((tmp_path / "o" / "audit.json").read_text())
    assert code == 1 and "Traceback" not in err  # the one bad file
    assert record["model"] == "marked.onnx" and record["method"] == "occlusion"
    assert record["caution"] == audit.analysis.caution("occlusion") != ""
    assert len(record["images"]) == 200 and {i["predicted"] for i in record["images"]} == set(range(10))
    assert "Caution:" in (tmp_path / "o" / "index.html").read_text()


def test_names_are_unique_within_the_set_and_groups_follow_the_folders(tmp_path):
    """The command's intake is `audit.intake.from_paths` (tests/audit/test_intake.py has the rest of its rules)."""
    for file in ("a/x.png", "a/deep/y.png", "b/x.png", "loose.png"):
        (tmp_path / "set" / file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "set" / file).write_bytes(b"")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.png").write_bytes(b"")
    found = intake.from_paths([tmp_path / "set", tmp_path / "other", tmp_path / "set" / "a" / "x.png"])
    assert [e.file for e in found.entries] == ["a/deep/y.png", "a/x.png", "b/x.png", "set/loose.png", "other/x.png"]
    assert [e.group for e in found.entries] == ["a", "a", "b", "set", "other"]  # set/a/x.png, given again, is once
    found = intake.from_paths([tmp_path / "set" / "a" / "x.png", tmp_path / "set" / "b" / "x.png"])
    assert [e.file for e in found.entries] == ["x.png", "x.png (2)"]


def test_a_zip_is_audited_as_a_folder_and_non_images_are_listed(digit_set, tmp_path, capsys):
    """The page's rules on the command line: a zip's folders are groups, a file that is no image by its name is
    skipped with its reason, dot-files and macOS's forks are left out unsaid."""
    marked, plain = (sorted((digit_set / group).glob("*_*.png"))[:3] for group in ("marked", "plain"))
    with zipfile.ZipFile(tmp_path / "set.zip", "w") as archive:
        for path in marked + plain:
            archive.write(path, f"{path.parent.name}/{path.name}")
        archive.writestr("plain/readme.txt", "about these digits\n")
        archive.writestr("__MACOSX/plain/._x.png", b"fork")
        archive.writestr("plain/.DS_Store", b"\0")
    code, err = run(["audit", str(tmp_path / "set.zip"), "--model", "mnist_cnn", "--out", str(tmp_path / "o")], capsys)

    record = json.loads((tmp_path / "o" / "audit.json").read_text())
    assert code == 0 and "skipped plain/readme.txt: Not read" in err  # a file that is no image is no failure
    expected = [f"marked/{p.name}" for p in marked] + [f"plain/{p.name}" for p in plain]
    assert [image["file"] for image in record["images"]] == expected
    assert [image["group"] for image in record["images"]] == ["marked"] * 3 + ["plain"] * 3
    assert record["failed"] == [
        {
            "file": "plain/readme.txt",
            "why": "Not read: its name does not end in an image suffix "
            "(.jpg, .jpeg, .png, .webp, .gif, .bmp, .tif, .tiff).",
        }
    ]


def test_the_record_states_the_flag_rule_with_its_numbers(tmp_path, capsys):
    Image.new("RGB", (28, 28)).save(tmp_path / "x.png")
    run(["audit", str(tmp_path / "x.png"), "--model", "mnist_cnn", "--out", str(tmp_path / "o")], capsys)
    rule = json.loads((tmp_path / "o" / "audit.json").read_text())["rule"]
    assert (rule["lift"], rule["mass"], rule["min_members"], rule["blur"]) == (8.0, 0.05, 2, 1.0)
    assert "MIN_MEMBERS (2)" in rule["text"] and "MIN_MEMBERS (2)" in (tmp_path / "o" / "index.html").read_text()
