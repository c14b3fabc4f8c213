"""What decides a result besides its inputs: this code, the libraries that compute it, Python and the CPU.

One `environment()` serves both the result store's key (a change of any part is a new key) and record.json's
provenance (`versions`, `code_sha256`), so the two can never list different libraries.
"""

from __future__ import annotations

import functools
import hashlib
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from whylabel.store import disk

LIBRARIES = (
    "torch",
    "captum",
    "lime",
    "shap",
    "numpy",
    "scipy",
    "scikit-image",
    "scikit-learn",
    "onnxruntime",
    "pillow",
)
"""Every library whose version can change a map, a score or an image's pixels (scipy: the blur fill;
scikit-learn: LIME's fit; pillow: decoding and resizing)."""
NOT_SHIPPED = ("tests", "bench", "scripts", "docs")
"""Folders of a checkout that decide no result."""


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def code_digest() -> str:
    """sha256 of whylabel's own Python files (names and contents): a change to any method is a new key."""
    root = Path(__file__).resolve().parent.parent
    rooms = [d for d in sorted(root.iterdir()) if (d / "__init__.py").is_file() and d.name not in NOT_SHIPPED]
    digest = hashlib.sha256()
    for path in [*sorted(root.glob("*.py")), *(p for room in rooms for p in sorted(room.rglob("*.py")))]:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def environment() -> dict[str, Any]:
    """whylabel's version and code digest, Python's version, each library's version (None: not installed)
    and the CPU."""
    return {
        "whylabel": version("whylabel") or "0+unknown",
        "code_sha256": code_digest(),
        "python": platform.python_version(),
        "libraries": {library: version(library) for library in LIBRARIES},
        "cpu": disk.cpu(),
    }
