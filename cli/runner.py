"""The batch runner: one task per image file, locally or as Ray tasks, each outcome as it finishes.

A task is a module-level function `task(data, name, opts) -> result` (so Ray can ship it); the runner reads
the files, sets the torch thread count in every worker as `opts["threads"]` says (gradient maps depend on it
bit for bit), and turns a failure into a one-line reason, so one bad image never stops a batch of thousands.
`whylabel explain` runs `cli.explain.explain_one` on it, and `whylabel audit` runs `cli.audit.audit_one`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


class Source(Protocol):
    """What a task's bytes come from: a `Path`, or an audit's `audit.intake.Entry` (a file inside a zip, say)."""

    def read_bytes(self) -> bytes: ...


S = TypeVar("S", bound=Source)
Task = Callable[[bytes, str, dict[str, Any]], Any]
Outcome = tuple[S, Any]
"""A source and its task's result, or a one-line reason (a str) why it has none."""


def images(paths: Sequence[Path]) -> Iterator[Path]:
    """Files as given (whatever their suffix: a bad one is reported later); folders searched for image files."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield path


def read(path: Source) -> bytes | str:
    """The file's bytes, or why it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as err:
        return f"cannot read the file: {err.strerror or err}"


def attempt(task: Task, data: bytes, name: str, opts: dict[str, Any]) -> Any:
    """The task's result, or a one-line reason: a bad image, a bad target for this model, a model that fails."""
    torch.set_num_threads(opts["threads"])  # the same in a Ray worker as here, so the maps match bit for bit
    try:
        return task(data, name, opts)
    except ValueError as err:  # models.ImageError is one
        return str(err)
    except Exception as err:  # one bad image must not stop a batch of thousands
        return f"{type(err).__name__}: {err}"


Names = Mapping[S, str] | None
"""The name each task hears for its file (default: the file's name); the audit passes paths within a set."""


def run_local(paths: Sequence[S], task: Task, opts: dict[str, Any], names: Names[S] = None) -> Iterator[Outcome[S]]:
    for path in paths:
        data = read(path)
        yield path, data if isinstance(data, str) else attempt(task, data, name_of(path, names), opts)


def name_of(path: S, names: Names[S]) -> str:
    """The name `names` gives, else the file's name (a source that is no path always comes with names)."""
    return Path(str(path)).name if names is None else names[path]


def run_ray(paths: Sequence[S], task: Task, opts: dict[str, Any], names: Names[S] = None) -> Iterator[Outcome[S]]:
    """One Ray task per image, results as they finish; the bytes travel, so workers need no shared disk."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, log_to_driver=False)
    try:
        cpus = min(opts["threads"], int(ray.cluster_resources().get("CPU", 1)))
        remote = ray.remote(num_cpus=cpus)(attempt)
        pending: dict[Any, S] = {}
        for path in paths:
            data = read(path)
            if isinstance(data, str):
                yield path, data
            else:
                pending[remote.remote(task, data, name_of(path, names), opts)] = path
        while pending:
            [ready], _ = ray.wait(list(pending), num_returns=1)
            yield pending.pop(ready), ray.get(ready)
    finally:
        if started:
            ray.shutdown()


def run(
    paths: Sequence[S], task: Task, opts: dict[str, Any], use_ray: bool = False, names: Names[S] = None
) -> Iterator[Outcome[S]]:
    """Each path's outcome, locally or on Ray; local outcomes come in order, Ray's as they finish."""
    return run_ray(paths, task, opts, names) if use_ray else run_local(paths, task, opts, names)


def folder_names(paths: Sequence[Path]) -> dict[Path, str]:
    """An output folder per image: its stem, with -2, -3, ... when two images share one."""
    names: dict[Path, str] = {}
    used: set[str] = set()
    for path in paths:
        name, n = path.stem or "image", 1
        while (name if n == 1 else f"{name}-{n}") in used:
            n += 1
        names[path] = name if n == 1 else f"{name}-{n}"
        used.add(names[path])
    return names
