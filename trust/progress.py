"""Small shared pieces of the checks that re-run a method: progress over several runs, and list arguments."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from whylabel.explainers.base import Progress


def share(progress: Progress | None, run: int, runs: int) -> Progress | None:
    """The progress of one run out of `runs`, reported as the fraction of them all done."""
    if progress is None:
        return None
    return lambda done: progress((run + done) / runs)


def listed(value: Any, most: int) -> list[Any] | None:
    """The items of a collection of at most `most` (not a string, not a one-shot iterator), or None."""
    if isinstance(value, str | bytes) or not isinstance(value, Collection):
        return None
    try:
        size = len(value)
    except TypeError:  # a 0-d numpy array
        return None
    return list(value) if size <= most else None
