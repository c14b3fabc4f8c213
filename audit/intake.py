"""The images of an audit, from files on disk (the command) or from uploads (the page), by one set of rules.

`from_paths(paths)` takes files and folders; `from_uploads([(name, data), ...])` takes uploaded files. A zip
(an uploaded one, or a PATH ending in .zip) is read like a folder: its directory is listed, its members are read
only when audited. Both give an `Intake`: the `entries` to audit, the files `skipped` as no image (one line
each), and the inputs `refused` as a whole (one line each). The rules:

- **What is taken.** A file given (a PATH, an upload) is taken whatever its name; a bad one is reported when it
  is read. Inside a folder or a zip (searched recursively), dot-files, dot-folders and `__MACOSX/` are
  bookkeeping and left out unsaid; files whose name does not end in an image suffix (`IMAGE_SUFFIXES`) are
  skipped with a reason, unread.
- **Groups.** An image inside a first-level subfolder of a folder or zip given is in that subfolder's group
  (`set/a/x.png`: group `a`, name `a/x.png`). An image at the top of a folder or zip is in no group when that
  folder or zip is the only thing given, and in the folder's own group (a zip's name without `.zip`) when
  several are given (`set/x.png` given with others: group `set`, name `set/x.png`). A file given by itself is
  in no group and named by its file name.
- **Unique names.** Every entry keeps its name if no earlier entry has it; a later one with the same name
  becomes `name (2)`, `name (3)`, ... with the lowest number whose name no entry has, given or made. So uploads
  `a.png`, `a.png`, `a.png (2)` are `a.png`, `a.png (3)`, `a.png (2)`: no image is dropped and no name is used
  twice. A file on disk reached twice (a folder and the file in it, or two spellings of one path) is taken once.
- **Limits** (`Limits`, the page's; the command has none): inputs are counted in order, each with the images and
  bytes it holds (a zip's by its directory, before any member is read); one that would take the set past either
  limit is refused as a whole, in one line.

No Streamlit: `whylabel.ui.audit` and `whylabel.cli.audit` both call it.
"""

from __future__ import annotations

import functools
import io
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from PIL import Image

from whylabel import models

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
"""What an image file's name ends in (any case), inside a folder or a zip."""
NOT_AN_IMAGE_FILE = f"Not read: its name does not end in an image suffix ({', '.join(IMAGE_SUFFIXES)})."
NOT_A_ZIP = "this file is not a zip archive whylabel can read."


@dataclass(frozen=True)
class Limits:
    """The most images and megabytes a set may hold (counted before anything is read)."""

    images: int
    megabytes: int

    @property
    def bytes(self) -> int:
        return self.megabytes * 1024 * 1024


@dataclass(eq=False)
class Entry:
    """One image to audit: its unique name within the set, its group, and where its bytes come from.

    `read_bytes` reads as `Path.read_bytes` does (an OSError with the reason when it cannot), so the batch runner
    (`whylabel.cli.runner`) takes entries where it takes paths; `load` opens the image and raises
    `models.ImageError` with a one-line reason.
    """

    file: str
    group: str
    origin: str
    """Where it is, for a person: a path on disk, or "upload.zip: a/x.png"."""
    reader: Callable[[], bytes] = field(repr=False)

    def read_bytes(self) -> bytes:
        return self.reader()

    def load(self) -> Image.Image:
        try:
            data = self.reader()
        except OSError as err:
            raise models.ImageError(why_unread(err)) from err
        return models.open_image(data)


@dataclass
class Intake:
    """The entries to audit, files skipped as no image ((name, why)), inputs refused as a whole ((name, why))."""

    entries: list[Entry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


class Refused(ValueError):
    """An input left out as a whole (not a readable zip, or past the limits); the message is why, in one line."""


def why_unread(err: OSError) -> str:
    """One line for a file that could not be read."""
    return f"cannot read the file: {err.strerror}" if err.strerror else str(err)


# ---------------------------------------------------------------------------------------------- the entry points


def from_paths(paths: Sequence[Path], limits: Limits | None = None) -> Intake:
    """The images of files and folders on disk (a PATH ending in .zip is read as a folder)."""
    return gather([disk_input(Path(path)) for path in paths], limits)


def from_uploads(uploads: Iterable[tuple[str, bytes]], limits: Limits | None = None) -> Intake:
    """The images of uploaded files, (name, bytes) each; an upload named .zip is read as a folder."""
    return gather([upload_input(name, data) for name, data in uploads], limits)


class Loadable(Protocol):
    file: str
    group: str

    def load(self) -> Image.Image: ...


def readable(entries: Iterable[Loadable], skipped: list[tuple[str, str]]) -> Iterator[tuple[str, Image.Image, str]]:
    """(file, image, group) for each entry that opens, for `audit.run`; the others go to `skipped` with why."""
    for entry in entries:
        try:
            image = entry.load()
        except models.ImageError as err:
            skipped.append((entry.file, str(err)))
            continue
        yield entry.file, image, entry.group


# ---------------------------------------------------------------------------------------------- inputs


@dataclass
class Found:
    """A file inside an input: its path there ("a/x.png"; the file's name for a file given by itself)."""

    inside: str
    reader: Callable[[], bytes]
    origin: str
    size: Callable[[], int]
    key: object = None
    """What makes two finds one file (its resolved path on disk); None for uploads, each its own."""


@dataclass
class Input:
    """One thing given: a lone file (`folder` None) or a folder or zip, named `folder`, with what is in it."""

    name: str
    folder: str | None
    list_files: Callable[[], tuple[list[Found], list[str], int]]
    """(the image files, the other files' paths inside, the bytes it holds beyond its files' own); may raise
    Refused."""


def disk_input(path: Path) -> Input:
    if path.is_dir():
        return Input(str(path), path.name or path.resolve().name, lambda: folder_files(path))
    if path.suffix.lower() == ".zip":
        return Input(str(path), path.stem, lambda: zip_files(str(path), path, path))
    key = resolved(path)
    found = Found(path.name, path.read_bytes, str(path), lambda: file_size(path), key)
    return Input(str(path), None, lambda: ([found], [], 0))


def upload_input(name: str, data: bytes) -> Input:
    if name.lower().endswith(".zip"):
        return Input(name, name[: -len(".zip")], lambda: zip_files(name, io.BytesIO(data), None, len(data)))
    return Input(name, None, lambda: ([Found(name, lambda: data, name, lambda: len(data))], [], 0))


def hidden(inside: str) -> bool:
    """Dot-files, dot-folders and macOS's resource forks: bookkeeping, not images."""
    parts = PurePosixPath(inside).parts
    return bool(parts) and (parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts))


def is_image_name(inside: str) -> bool:
    return inside.lower().endswith(IMAGE_SUFFIXES)


def folder_files(root: Path) -> tuple[list[Found], list[str], int]:
    """The folder's files in path order, dot-files and dot-folders left out."""
    images, others = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        inside = path.relative_to(root).as_posix()
        if hidden(inside):
            continue
        if not is_image_name(inside):
            others.append(inside)
            continue
        images.append(Found(inside, path.read_bytes, str(path), functools.partial(file_size, path), resolved(path)))
    return images, others, 0


def zip_files(
    name: str, source: str | os.PathLike[str] | io.BytesIO, path: Path | None, size: int = 0
) -> tuple[list[Found], list[str], int]:
    """A zip's members by its directory, none read; `size` is the archive's own (the bytes it holds anyway)."""
    try:
        archive = zipfile.ZipFile(source)
        infos = archive.infolist()
    except OSError as err:
        raise Refused(why_unread(err) if path is not None else NOT_A_ZIP) from err  # on disk: cannot be opened
    except Exception as err:  # BadZipFile, or whatever a damaged directory raises: one line either way
        raise Refused(NOT_A_ZIP) from err
    where = None if path is None else resolved(path)
    if path is not None:
        size = file_size(path)
    images, others = [], []
    for info in infos:
        if info.is_dir() or hidden(info.filename):
            continue
        if not is_image_name(info.filename):
            others.append(info.filename)
            continue
        key = None if where is None else (where, info.filename)
        reader = member_reader(archive, info)
        images.append(
            Found(info.filename, reader, f"{name}: {info.filename}", functools.partial(int, info.file_size), key)
        )
    return images, others, size


def member_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    """Read one member, never more than its stated size; any failure is an OSError with a one-line reason."""

    def read() -> bytes:
        try:
            with archive.open(info) as member:
                data = member.read(info.file_size + 1)
        except Exception as err:  # bad CRC, encrypted, unsupported compression, truncated: the member is skipped
            raise OSError(f"The zip member could not be read ({type(err).__name__}).") from err
        if len(data) > info.file_size:
            raise OSError("The zip member holds more than its stated size.")
        return data

    return read


def resolved(path: Path) -> object:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # it will not be read either: its entry is skipped with the reason then


# ---------------------------------------------------------------------------------------------- the rules


def group_and_name(given: Input, inside: str, several: bool) -> tuple[str, str]:
    """The group and the name (before numbering) of a file found in an input (see the module's rules)."""
    if given.folder is None:
        return "", inside
    parts = PurePosixPath(inside).parts
    if len(parts) > 1:
        return parts[0], inside
    if several and given.folder:
        return given.folder, f"{given.folder}/{inside}"
    return "", inside


def over_limit(images: int, size: int, limits: Limits) -> str:
    return (
        f"left out: with it the upload holds {images:,} images and {size / 1024 / 1024:,.0f} MB; "
        f"an audit takes at most {limits.images:,} images and {limits.megabytes} MB."
    )


def gather(inputs: list[Input], limits: Limits | None) -> Intake:
    """Every input's images, in order, each file once, within the limits; then numbered to unique names."""
    intake, seen = Intake(), set[object]()
    found: list[tuple[Found, str, str]] = []
    count = size = 0
    several = len(inputs) > 1
    for given in inputs:
        try:
            images, others, held = given.list_files()
        except Refused as err:
            intake.refused.append((given.name, str(err)))
            continue
        images = [f for f in images if f.key is None or f.key not in seen]  # reached before: taken once
        if limits is not None:
            used = max(held, sum(f.size() for f in images))
            if count + len(images) > limits.images or size + used > limits.bytes:
                intake.refused.append((given.name, over_limit(count + len(images), size + used, limits)))
                continue
            count, size = count + len(images), size + used
        seen.update(f.key for f in images if f.key is not None)
        found += [(f, *group_and_name(given, f.inside, several)) for f in images]
        intake.skipped += [(group_and_name(given, inside, several)[1], NOT_AN_IMAGE_FILE) for inside in others]
    names = unique([name for _, _, name in found])
    intake.entries = [Entry(name, group, f.origin, f.reader) for (f, group, _), name in zip(found, names, strict=True)]
    return intake


def unique(names: list[str]) -> list[str]:
    """Each name kept where no earlier one has it, else `name (n)` with the lowest n no name given or made has."""
    taken = set(names)
    out: list[str] = []
    kept: set[str] = set()
    for name in names:
        if name not in kept:
            kept.add(name)
            out.append(name)
            continue
        n = 2
        while f"{name} ({n})" in taken:
            n += 1
        out.append(f"{name} ({n})")
        taken.add(out[-1])
    return out
