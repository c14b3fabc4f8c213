"""The audit's intake (`audit.intake`): entries from disk and from uploads, groups, unique names, dot-files,
non-images, files reached twice, and zips with their limits. Every expected value is written out by hand."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from whylabel import models
from whylabel.audit import intake

NOT_AN_IMAGE_FILE = (
    "Not read: its name does not end in an image suffix (.jpg, .jpeg, .png, .webp, .gif, .bmp, .tif, .tiff)."
)
OVER_THREE = "left out: with it the upload holds 4 images and 0 MB; an audit takes at most 3 images and 200 MB."
NOT_AN_IMAGE = "This file is not an image whylabel can read (JPEG, PNG, WebP, GIF, BMP or TIFF)."


def png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 4, 3), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def zipped(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def files_and_groups(found: intake.Intake) -> list[tuple[str, str]]:
    return [(entry.file, entry.group) for entry in found.entries]


# ---------------------------------------------------------------------------------------------- unique names


def test_the_same_name_three_ways_gives_three_images_with_three_names():
    """The page once made `a.png`, `a.png`, `a.png (2)` into two `a.png (2)`s, and one image was lost."""
    found = intake.from_uploads([("a.png", png(10)), ("a.png", png(20)), ("a.png (2)", png(30))])

    assert [entry.file for entry in found.entries] == ["a.png", "a.png (3)", "a.png (2)"]
    assert [np.asarray(entry.load())[0, 0, 0] for entry in found.entries] == [10, 20, 30]  # each its own image
    assert found.skipped == [] and found.refused == []


def test_numbers_go_on_past_every_name_taken():
    names = ["x.png", "x.png (2)", "x.png", "x.png (3)", "x.png", "x.png"]
    assert intake.unique(names) == ["x.png", "x.png (2)", "x.png (4)", "x.png (3)", "x.png (5)", "x.png (6)"]


def test_two_files_of_one_name_on_disk_are_both_taken(tmp_path):
    tree(tmp_path, {"a/x.png": png(1), "b/x.png": png(2)})
    found = intake.from_paths([tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"])
    assert files_and_groups(found) == [("x.png", ""), ("x.png (2)", "")]


# ---------------------------------------------------------------------------------------------- groups


def test_a_folders_first_level_subfolders_are_its_groups(tmp_path):
    root = tree(
        tmp_path / "set",
        {"a/x.png": png(1), "a/deep/y.png": png(2), "b/x.png": png(3), "loose.png": png(4)},
    )
    found = intake.from_paths([root])
    assert files_and_groups(found) == [
        ("a/deep/y.png", "a"),
        ("a/x.png", "a"),
        ("b/x.png", "b"),
        ("loose.png", ""),  # the only PATH: its top level is no group
    ]
    assert found.entries[0].origin == str(root / "a" / "deep" / "y.png")


def test_several_paths_make_the_top_of_each_folder_a_group_of_its_own(tmp_path):
    tree(tmp_path / "set", {"a/x.png": png(1), "a/deep/y.png": png(2), "b/x.png": png(3), "loose.png": png(4)})
    tree(tmp_path / "other", {"x.png": png(5)})
    found = intake.from_paths([tmp_path / "set", tmp_path / "other", tmp_path / "set" / "a" / "x.png"])
    assert files_and_groups(found) == [
        ("a/deep/y.png", "a"),
        ("a/x.png", "a"),
        ("b/x.png", "b"),
        ("set/loose.png", "set"),
        ("other/x.png", "other"),
    ]  # set/a/x.png, given again, is taken once


def test_a_zips_first_level_folders_are_its_groups():
    members = {"left/1.png": png(1), "right/1.png": png(2), "top.png": png(3), "sub/": b""}
    alone = intake.from_uploads([("set.zip", zipped(members))])
    assert files_and_groups(alone) == [("left/1.png", "left"), ("right/1.png", "right"), ("top.png", "")]

    with_another = intake.from_uploads([("set.zip", zipped(members)), ("loose.png", png(4))])
    assert files_and_groups(with_another) == [
        ("left/1.png", "left"),
        ("right/1.png", "right"),
        ("set/top.png", "set"),  # as a folder's top level is, with several given
        ("loose.png", ""),
    ]
    assert with_another.entries[2].origin == "set.zip: top.png"


def test_a_zip_on_disk_is_read_as_a_folder(tmp_path):
    (tmp_path / "set.zip").write_bytes(zipped({"a/1.png": png(1), "b/2.png": png(2)}))
    found = intake.from_paths([tmp_path / "set.zip"])
    assert files_and_groups(found) == [("a/1.png", "a"), ("b/2.png", "b")]
    assert found.entries[1].read_bytes() == png(2)


# ---------------------------------------------------------------------------------------------- what is taken


def test_dot_files_dot_folders_and_macos_forks_are_left_out_unsaid(tmp_path):
    root = tree(
        tmp_path / "set",
        {".DS_Store": b"\0", ".hidden/x.png": png(1), "a/._x.png": b"fork", "a/x.png": png(2), ".y.png": png(3)},
    )
    on_disk = intake.from_paths([root])
    assert files_and_groups(on_disk) == [("a/x.png", "a")]
    assert on_disk.skipped == [] and on_disk.refused == []

    members = {"__MACOSX/a/._x.png": b"fork", "a/.DS_Store": b"\0", ".git/config": b"", "a/x.png": png(2)}
    uploaded = intake.from_uploads([("set.zip", zipped(members))])
    assert files_and_groups(uploaded) == [("a/x.png", "a")]
    assert uploaded.skipped == [] and uploaded.refused == []


def test_a_dot_file_given_by_name_is_taken(tmp_path):
    tree(tmp_path, {".x.png": png(1)})
    assert files_and_groups(intake.from_paths([tmp_path / ".x.png"])) == [(".x.png", "")]


def test_a_file_reached_twice_is_taken_once(tmp_path):
    root = tree(tmp_path / "set", {"a/x.png": png(1), "b/y.png": png(2)})
    twice = [root / "a" / "x.png", root, root / "b" / ".." / "a" / "x.png"]
    assert files_and_groups(intake.from_paths(twice)) == [("x.png", ""), ("b/y.png", "b")]


def test_non_images_are_listed_as_skipped_with_their_reason(tmp_path):
    root = tree(tmp_path / "set", {"a/notes.txt": b"notes", "a/x.png": png(1), "labels.csv": b"x,1\n"})
    found = intake.from_paths([root])
    assert files_and_groups(found) == [("a/x.png", "a")]
    assert found.skipped == [("a/notes.txt", NOT_AN_IMAGE_FILE), ("labels.csv", NOT_AN_IMAGE_FILE)]

    zipped_set = intake.from_uploads([("set.zip", zipped({"a/readme.md": b"#", "a/x.png": png(1)}))])
    assert zipped_set.skipped == [("a/readme.md", NOT_AN_IMAGE_FILE)]


def test_a_text_file_named_like_an_image_is_skipped_when_read_with_its_reason(tmp_path):
    found = intake.from_uploads([("x.png", b"these are my notes\n"), ("y.png", png(7))])
    skipped: list[tuple[str, str]] = []
    images = list(intake.readable(found.entries, skipped))
    assert [(file, group) for file, _, group in images] == [("y.png", "")]
    assert skipped == [("x.png", NOT_AN_IMAGE)]


def test_a_missing_file_is_an_entry_that_says_why_when_read(tmp_path):
    (entry,) = intake.from_paths([tmp_path / "gone.png"]).entries
    with pytest.raises(models.ImageError, match=r"^cannot read the file: No such file or directory$"):
        entry.load()
    with pytest.raises(OSError):
        entry.read_bytes()  # as Path.read_bytes: the batch runner says why


def test_a_damaged_zip_member_says_why_in_one_line():
    data = bytearray(zipped({"a/x.png": png(1)}, zipfile.ZIP_STORED))
    start = data.index(b"IHDR")
    data[start] ^= 0xFF  # the stored member's bytes change: its CRC no longer matches
    (entry,) = intake.from_uploads([("set.zip", bytes(data))]).entries
    with pytest.raises(models.ImageError, match=r"^The zip member could not be read \(BadZipFile\)\.$"):
        entry.load()


# ---------------------------------------------------------------------------------------------- zips and limits


def test_a_file_named_zip_that_is_not_one_is_refused_in_one_line():
    found = intake.from_uploads([("x.zip", b"PK\x03\x04 not really a zip"), ("y.png", png(1))])
    assert found.refused == [("x.zip", "this file is not a zip archive whylabel can read.")]
    assert files_and_groups(found) == [("y.png", "")]


def test_a_zip_past_the_image_limit_is_refused_before_any_member_is_read(monkeypatch):
    many = zipped({f"{n}.png": png(n) for n in range(4)})
    read: list[object] = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda archive, member, *args, **kwargs: read.append(member))

    found = intake.from_uploads([("many.zip", many)], intake.Limits(images=3, megabytes=200))

    assert found.refused == [
        ("many.zip", OVER_THREE),
    ]
    assert found.entries == [] and not read


def test_a_zip_past_the_size_limit_is_refused_by_its_directory():
    """Three megabytes of zeros deflate to a few kilobytes: the size counted is the members' stated one."""
    big = zipped({"a/big.png": bytes(3 * 1024 * 1024)})
    assert len(big) < 100_000
    found = intake.from_uploads([("big.zip", big)], intake.Limits(images=1000, megabytes=2))
    assert found.refused == [
        (
            "big.zip",
            "left out: with it the upload holds 1 images and 3 MB; an audit takes at most 1,000 images and 2 MB.",
        ),
    ]


def test_the_limits_count_the_whole_set_and_a_later_upload_that_fits_is_taken():
    uploads = [
        ("two.zip", zipped({"a/1.png": png(1), "a/2.png": png(2)})),
        ("pair.zip", zipped({"b/1.png": png(5), "b/2.png": png(6)})),
        ("3.png", png(3)),
        ("4.png", png(4)),
    ]
    found = intake.from_uploads(uploads, intake.Limits(images=3, megabytes=200))
    assert found.refused == [
        ("pair.zip", OVER_THREE),
        ("4.png", OVER_THREE),
    ]
    assert files_and_groups(found) == [("a/1.png", "a"), ("a/2.png", "a"), ("3.png", "")]
