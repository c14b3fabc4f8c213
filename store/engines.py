"""The fast engine's ONNX export and batch-size calibration, kept on disk: a cold start skips about 6 s.

Exporting EfficientNet-Lite0 and timing its batch sizes took 2.6 s and 3.8 s here, at every server start and in
every CLI run. An entry is keyed on everything that decides it: the weights (sha256 of the state_dict), the
module's structure (its repr), the input size and normalisation, the batch sizes timed, the torch and
onnxruntime versions, this file's format, and the CPU (model name and cores: a calibration is a timing).

A loaded entry is checked against torch exactly as a fresh export is (`engine.check`), so a stale or corrupt
one is dropped and rebuilt, never used. Entries are written to a temporary file and renamed into place, so two
processes writing one entry leave a whole one; at most `MAX_BYTES` are kept, the least recently used dropped
first. Any error reading or writing the folder means only that the engine is built as if there were no cache.

The folder: `engines` in the store's folder (`store.disk.folder`); WHYLABEL_CACHE=off turns it off (the worker
that runs uploaded TorchScript models has it off: it may not write files).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from whylabel.store import disk

FORMAT = 1
MAX_BYTES = 512 * 2**20


def state_dict_sha256(module: torch.nn.Module) -> str:
    """The sha256 of every tensor of a module's state_dict, in order, as float32 (with the names)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def folder() -> Path | None:
    """Where engines are kept, or None when the cache is off."""
    return disk.folder("engines")


def key(
    module: torch.nn.Module, input_size: int, mean: tuple[float, ...], std: tuple[float, ...], sizes: tuple[int, ...]
) -> str:
    """The entry's name: a sha256 of every part that decides the export and the calibration."""
    import onnxruntime

    parts = {
        "format": FORMAT,
        "weights": state_dict_sha256(module),
        "structure": repr(module),
        "input_size": input_size,
        "mean": list(mean),
        "std": list(std),
        "sizes": list(sizes),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "threads": torch.get_num_threads(),
        "cpu": disk.cpu(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def load(name: str) -> tuple[bytes, dict[str, Any]] | None:
    """The stored ONNX model and calibration for `name`, or None when there is none or it cannot be read."""
    where = folder()
    if where is None:
        return None
    try:
        info = json.loads((where / f"{name}.json").read_text())
        model = (where / f"{name}.onnx").read_bytes()
        if not isinstance(info, dict) or hashlib.sha256(model).hexdigest() != info.get("onnx_sha256"):
            return None
        os.utime(where / f"{name}.json")  # recently used: pruned last
        return model, info
    except (OSError, ValueError):
        return None


def save(name: str, model: bytes, info: dict[str, Any]) -> None:
    """Keep an export and its calibration (the model first, then the record that makes the entry whole)."""
    where = folder()
    if where is None:
        return
    try:
        where.mkdir(parents=True, exist_ok=True)
        disk.write(where / f"{name}.onnx", model)
        disk.write(
            where / f"{name}.json", json.dumps({**info, "onnx_sha256": hashlib.sha256(model).hexdigest()}).encode()
        )
        prune(where)
    except OSError:
        pass  # a read-only or full disk: the engine works, it is only built again next time


def prune(where: Path, max_bytes: int = MAX_BYTES) -> None:
    """Drop the least recently used entries until the folder holds at most `max_bytes`."""
    entries = []
    for record in where.glob("*.json"):
        model = record.with_suffix(".onnx")
        try:
            entries.append((record.stat().st_mtime, record.stat().st_size + model.stat().st_size, record, model))
        except OSError:
            continue
    for model in where.glob("*.onnx"):  # a model whose record was never written: not an entry
        if not model.with_suffix(".json").exists():
            model.unlink(missing_ok=True)
    total = sum(size for _, size, _, _ in entries)
    for _, size, record, model in sorted(entries, key=lambda entry: entry[0]):
        if total <= max_bytes:
            break
        record.unlink(missing_ok=True)
        model.unlink(missing_ok=True)
        total -= size
