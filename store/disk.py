"""The stores' disk: where they live, an atomic write, and the machine a timing or a bit pattern depends on.

The folder: $WHYLABEL_CACHE, else $XDG_CACHE_HOME/whylabel, else ~/.cache/whylabel, one subfolder per store;
WHYLABEL_CACHE=off turns every store off.
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path

OFF = "off"


def folder(name: str) -> Path | None:
    """The store `name`'s folder, or None when the stores are off."""
    chosen = os.environ.get("WHYLABEL_CACHE", "")
    if chosen.lower() == OFF:
        return None
    if chosen:
        return Path(chosen) / name
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "whylabel" / name


def write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a temporary file in the same folder, then a rename."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cpu() -> str:
    """The CPU's model name and the cores this process may use."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    except OSError:
        names = []
    return f"{names[0] if names else platform.processor()} x{len(os.sched_getaffinity(0))}"
