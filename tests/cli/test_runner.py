"""The batch runner on its own, with a task of the test's: what the CLI and the audit of a set share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from whylabel.cli import runner

OPTS = {"threads": 1}


def size_task(data: bytes, name: str, opts: dict[str, Any]) -> tuple[str, int, int]:
    """A task that fails on purpose for some names, and reports the thread count it ran with."""
    if name.startswith("bad"):
        raise ValueError(f"{name} is not an image")
    if name.startswith("boom"):
        raise RuntimeError("the model failed")
    return name, len(data), torch.get_num_threads()


def files(folder: Path) -> list[Path]:
    (folder / "sub").mkdir()
    paths = []
    for name, data in [("a.png", b"aa"), ("bad.jpg", b"x"), ("sub/boom.png", b"yyy"), ("notes.txt", b"skip")]:
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def test_folders_are_searched_for_image_files_and_files_are_taken_as_given(tmp_path):
    files(tmp_path)

    found = list(runner.images([tmp_path, tmp_path / "notes.txt"]))

    assert found == [tmp_path / "a.png", tmp_path / "bad.jpg", tmp_path / "sub" / "boom.png", tmp_path / "notes.txt"]


def test_each_outcome_is_the_result_or_a_one_line_reason(tmp_path):
    files(tmp_path)
    paths = [*runner.images([tmp_path]), tmp_path / "missing.png"]

    outcomes = dict(runner.run(paths, size_task, OPTS))

    assert outcomes[tmp_path / "a.png"] == ("a.png", 2, 1)  # the thread count the options ask for
    assert outcomes[tmp_path / "bad.jpg"] == "bad.jpg is not an image"
    assert outcomes[tmp_path / "sub" / "boom.png"] == "RuntimeError: the model failed"
    assert outcomes[tmp_path / "missing.png"].startswith("cannot read the file: ")


def test_output_folders_are_unique_per_stem():
    names = runner.folder_names([Path("x/cat.png"), Path("y/cat.jpg"), Path("z/cat.png"), Path(".png")])

    assert list(names.values()) == ["cat", "cat-2", "cat-3", ".png"]
