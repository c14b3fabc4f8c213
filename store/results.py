"""Computed maps and their scores kept on disk, shared by the page and the `whylabel explain` command.

A map is a few seconds of computation; its scores (deletion and insertion against random maps) a few more. Both
are kept here, so a photo explained once is not explained again: not by the page after a restart, not by the
command line over the same files, not by another session. An entry is keyed on everything that decides it:
the caller's parts (`explainers.kept` and `trust.kept` name the model, pixels, target, method, parameters)
plus this code and the libraries (`environment()`) and torch's thread count, hashed by `key`.

Entries hold only arrays and JSON (one `.npz` read with `allow_pickle=False`), never pickles, so a damaged or
planted file can at worst be unreadable; an entry whose stored key is not the key asked for, or that cannot
be read, is ignored and computed again. Only the classes registered with `keeps` are rebuilt, from their
fields, never by running stored code. Each entry is written to a temporary file and renamed into place, so
two processes writing one entry leave a whole one; at most `MAX_BYTES` are kept, least recently used out
first. Any error reading or writing the folder means only that the result is computed as if there were no
store.

The folder: $WHYLABEL_RESULTS, else `results` in the stores' folder (`store.disk.folder`);
WHYLABEL_RESULTS=off (or WHYLABEL_CACHE=off) turns it off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from whylabel.store import disk
from whylabel.store.environment import environment

FORMAT = 1
MAX_BYTES = 256 * 2**20
TYPES: dict[str, type] = {}
"""The only classes an entry may rebuild, by name (registered with `keeps`)."""
T = TypeVar("T", bound=type)


def keeps(cls: T) -> T:
    """Register a dataclass an entry may hold (a class decorator); TypeError for any other class."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"only dataclasses can be kept; {cls.__name__} is not one")
    TYPES[cls.__name__] = cls
    return cls


def folder() -> Path | None:
    """Where results are kept, or None when the store is off."""
    chosen = os.environ.get("WHYLABEL_RESULTS", "")
    if chosen.lower() == disk.OFF:
        return None
    return Path(chosen) if chosen else disk.folder("results")


def key(parts: dict[str, Any]) -> str:
    """An entry's name: the sha256 of the caller's parts with the format, environment and thread count."""
    parts = {"format": FORMAT, **environment(), "threads": torch.get_num_threads(), **parts}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()


def encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """`value` as JSON, its arrays moved into `arrays`; TypeError for anything else (then nothing is kept)."""
    if isinstance(value, np.ndarray):
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {"__array__": name}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [encode(v, arrays) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: encode(v, arrays) for k, v in value.items()}}
    if type(value).__name__ in TYPES and type(value) is TYPES[type(value).__name__]:
        assert dataclasses.is_dataclass(value)  # `keeps` registers dataclasses only
        fields = {f.name: encode(getattr(value, f.name), arrays) for f in dataclasses.fields(value) if f.init}
        return {"__type__": type(value).__name__, "fields": fields}
    raise TypeError(f"cannot keep a {type(value).__name__}")


def decode(value: Any, arrays: Any) -> Any:
    if isinstance(value, list):
        return [decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return arrays[value["__array__"]]
    if "__tuple__" in value:
        return tuple(decode(v, arrays) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: decode(v, arrays) for k, v in value["__dict__"].items()}
    cls = TYPES[value["__type__"]]  # KeyError for any other name: the entry is not used
    return cls(**{k: decode(v, arrays) for k, v in value["fields"].items()})


def load(name: str) -> Any | None:
    """The result kept under `name`, or None when there is none or it cannot be read whole."""
    where = folder()
    if where is None:
        return None
    path = where / f"{name}.npz"
    try:
        with np.load(path, allow_pickle=False) as entry:
            arrays = {k: entry[k] for k in entry.files}
        meta = json.loads(arrays.pop("meta").tobytes())
        if meta.get("key") != name:
            return None
        value = decode(meta["value"], arrays)
        os.utime(path)  # recently used: pruned last
        return value
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None


def save(name: str, value: Any) -> None:
    """Keep `value` under `name`; a value that cannot be kept, or a folder that cannot be written, keeps nothing."""
    where = folder()
    if where is None:
        return
    arrays: dict[str, Any] = {}
    try:
        meta = json.dumps({"key": name, "value": encode(value, arrays), "written": time.time()})
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.frombuffer(meta.encode(), dtype=np.uint8), **arrays)
        where.mkdir(parents=True, exist_ok=True)
        disk.write(where / f"{name}.npz", buffer.getvalue())
        prune(where)
    except (OSError, TypeError, ValueError):
        pass


def prune(where: Path, max_bytes: int = MAX_BYTES) -> None:
    """Drop the least recently used entries until the folder holds at most `max_bytes`."""
    entries = []
    for path in where.glob("*.npz"):
        try:
            stat = path.stat()
        except OSError:
            continue
        entries.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= max_bytes:
            break
        path.unlink(missing_ok=True)
        total -= size


def kept(name: str | None, compute: Callable[[], Any]) -> tuple[Any, bool]:
    """The value kept under `name`, else `compute()` kept there; and whether it came from the store."""
    found = None if name is None else load(name)
    if found is not None:
        return found, True
    value = compute()
    if name is not None:
        save(name, value)
    return value, False
