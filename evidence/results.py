"""Computed maps and their scores kept on disk, shared by the page and the `whylabel explain` command.

A map is a few seconds of computation; its scores (deletion and insertion against random maps) a few more. Both
are kept here, so a photo explained once is not explained again: not by the page after a restart, not by the
command line over the same files, not by another session. An entry is keyed on everything that decides it
(`key`): this code (a digest of whylabel's own source files), the versions of the libraries that compute it, the
torch thread count and the CPU, the model (name, weights' sha256, preprocessing, labels, the forward engine for
methods that use it), the model-view pixels (sha256), the target, contrast, method, seed and every parameter.

Entries hold only arrays and JSON (one `.npz` read with `allow_pickle=False`), never pickles, so a damaged or
planted file can at worst be unreadable; an entry whose stored key is not the key asked for, or that cannot
be read, is ignored and computed again. Each is written to a temporary file and renamed into place, so two
processes writing one entry leave a whole one; at most `MAX_BYTES` are kept, least recently used out first.
Any error reading or writing the folder means only that the result is computed as if there were no store.

Users' uploaded models are not kept: their identity is their worker's word, and copies the worker derives
(the randomised ones of the sanity check) share it.

The folder: $WHYLABEL_RESULTS, else the engine cache's folder (`models.engine_store`) with `results` for
`engines`; WHYLABEL_RESULTS=off (or WHYLABEL_CACHE=off) turns it off.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
import time
import weakref
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import whylabel
from whylabel import explainers, models, trust
from whylabel.explainers.base import Progress
from whylabel.explainers.progressive import Stage
from whylabel.models import engine_store
from whylabel.models.remote import is_remote
from whylabel.trust.faithfulness import Curve, RandomBaseline

FORMAT = 1
MAX_BYTES = 256 * 2**20
TYPES: dict[str, type] = {t.__name__: t for t in (explainers.Attribution, Stage, Curve, RandomBaseline)}
"""The only classes an entry may rebuild (from their fields, never by running stored code)."""
NOT_SHIPPED = ("tests", "bench", "scripts")
"""Folders of a checkout that decide no result."""
LIBRARIES = ("torch", "captum", "lime", "shap", "numpy", "scipy", "onnxruntime", "scikit-image", "scikit-learn")


def folder() -> Path | None:
    """Where results are kept, or None when the store is off."""
    chosen = os.environ.get("WHYLABEL_RESULTS", "")
    if chosen.lower() == engine_store.OFF:
        return None
    if chosen:
        return Path(chosen)
    engines = engine_store.folder()
    return None if engines is None else engines.parent / "results"


@functools.cache
def code_digest() -> str:
    """sha256 of whylabel's own Python files (names and contents): a change to any method is a new key."""
    root = Path(whylabel.__file__).parent
    rooms = [d for d in sorted(root.iterdir()) if (d / "__init__.py").is_file() and d.name not in NOT_SHIPPED]
    digest = hashlib.sha256()
    for path in [*sorted(root.glob("*.py")), *(p for room in rooms for p in sorted(room.rglob("*.py")))]:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def environment() -> dict[str, Any]:
    from importlib import metadata

    found = {}
    for library in LIBRARIES:
        try:
            found[library] = metadata.version(library)
        except metadata.PackageNotFoundError:
            found[library] = None
    return {"code": code_digest(), "libraries": found, "cpu": engine_store.cpu()}


MODEL_IDS: weakref.WeakKeyDictionary[models.Classifier, str] = weakref.WeakKeyDictionary()
"""Each classifier's identity, computed once (hashing the weights file takes tens of milliseconds)."""


def model_id(clf: models.Classifier) -> str | None:
    """The sha256 of what decides a classifier's outputs; None for a user's uploaded model (see above)."""
    if is_remote(clf):
        return None
    if clf not in MODEL_IDS:
        from whylabel.evidence.record import weights_sha256

        parts = {
            "name": clf.name,
            "weights": weights_sha256(clf),
            "preprocessing": [clf.input_size, list(clf.mean), list(clf.std), clf.crop, int(clf.resample)],
            "labels": clf.labels,
        }
        MODEL_IDS[clf] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return MODEL_IDS[clf]


def key(request: explainers.Request, kind: str, per_method: bool = True) -> str | None:
    """The entry name for one result of a request, or None when it is not kept.

    `kind` is "map", "baseline" or "scores"; `per_method` False leaves the method, seed and parameters out (the
    random baseline depends only on the image, target and contrast). The forward engine is part of the key
    wherever it is used: perturbation maps and every score.
    """
    model = model_id(request.clf)
    if model is None:
        return None
    clf, pixels = request.clf, request.clf.input_image(request.image)
    uses_engine = kind != "map" or not request.explainer.runs_module
    parts = {
        "format": FORMAT,
        "kind": kind,
        **environment(),
        "threads": torch.get_num_threads(),
        "model": model,
        "engine": engine_of(clf) if uses_engine else None,
        "pixels": [list(pixels.shape), hashlib.sha256(pixels.tobytes()).hexdigest()],
        "target": request.target,
        "contrast": request.contrast,
    }
    if per_method:
        parts.update(method=request.method, seed=request.seed, params=dict(request.params))
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()


def engine_of(clf: models.Classifier) -> list[Any]:
    fast = clf.engine()
    return [fast.backend, fast.batch_size]


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
    arrays: dict[str, np.ndarray] = {}
    try:
        meta = json.dumps({"key": name, "value": encode(value, arrays), "written": time.time()})
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.frombuffer(meta.encode(), dtype=np.uint8), **arrays)
        where.mkdir(parents=True, exist_ok=True)
        engine_store.write(where / f"{name}.npz", buffer.getvalue())
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


def attribution(
    request: explainers.Request,
    progress: Progress | None = None,
    on_stage: Callable[[explainers.Attribution], None] | None = None,
    keep: bool = True,
) -> explainers.Attribution:
    """`explainers.run(request, ...)`, or the converged map an earlier run kept (then no stage is heard).

    A kept map says so in `extras["kept"]` (True), and its `seconds` are those of the run that computed it.
    `keep` False computes anew and keeps nothing (here and in `baseline` and `scores`).
    """

    def compute() -> explainers.Attribution:
        att = explainers.run(request, progress, on_stage)
        return dataclasses.replace(att, request=None)  # the request holds the model and image: not kept

    att, hit = kept(key(request, "map") if keep else None, compute)
    if hit and progress is not None:
        progress(1.0)
    return dataclasses.replace(att, request=request, extras={**att.extras, "kept": hit})


def baseline(att: explainers.Attribution, keep: bool = True) -> RandomBaseline:
    """The random maps' curves for the map's image, target and contrast (`trust.baseline_for`), kept."""
    name = key(att.request, "baseline", per_method=False) if keep and att.request is not None else None
    return kept(name, lambda: trust.baseline_for(att))[0]


def scores(att: explainers.Attribution, random: RandomBaseline | None = None, keep: bool = True) -> dict[str, Any]:
    """Deletion and insertion scores of a map against the random baseline (`trust.evaluate`), kept."""
    random = random or baseline(att, keep)
    name = key(att.request, "scores") if keep and att.request is not None else None
    return kept(name, lambda: trust.evaluate(att, baseline=random))[0]
