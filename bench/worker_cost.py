"""What the isolated worker costs: one perturbation call (16 images) of the same traced network, in-process and
through a user's model's worker, uint8 pixels (LIME, occlusion's windows of whole pixel values) and float32
(SHAP's blurred mixes)."""

from __future__ import annotations

import io
import statistics
import time
from typing import Any

import numpy as np
import torch

from whylabel import models

IMAGES = 16
ROUNDS = 15


def measure(clf: models.Classifier, pixels: np.ndarray) -> dict[str, Any]:
    """Median seconds per call in-process and in the worker, for uint8 and float32 batches."""
    with torch.no_grad():
        traced = torch.jit.trace(clf.module.eval(), clf.to_tensor(pixels[None]))
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    settings = {"input_size": clf.input_size, "mean": clf.mean, "std": clf.std, "crop": clf.crop}
    labels = "\n".join(clf.labels).encode()
    start = time.perf_counter()
    user = models.load_user_model(buffer.getvalue(), labels, "traced", **settings)
    user.engine()
    load_seconds = time.perf_counter() - start
    local = models.from_module(torch.jit.load(io.BytesIO(buffer.getvalue())), clf.labels, **settings)
    rng = np.random.default_rng(0)
    whole = np.stack([pixels] * IMAGES)
    side = min(32, clf.input_size // 2)
    whole[:, :side, :side] = rng.integers(0, 256, (IMAGES, side, side, 3))  # a perturbed corner
    out: dict[str, Any] = {"images_per_call": IMAGES, "load_seconds": load_seconds,
                           "backend": user.engine().backend}  # fmt: skip
    for kind, batch in (("uint8", whole), ("float32", whole.astype(np.float32) + 0.5)):
        times = {}
        for where, c in (("in_process", local), ("worker", user)):
            c.engine().logits(batch)  # warm
            runs = []
            for _ in range(ROUNDS):
                t = time.perf_counter()
                c.engine().logits(batch)
                runs.append(time.perf_counter() - t)
            times[where] = statistics.median(runs)
        times["ratio"] = times["worker"] / times["in_process"]
        times["megabytes"] = batch.nbytes / 2**20
        out[kind] = times
    user.worker.stop()
    return out


def table(found: dict[str, Any]) -> str:
    lines = [
        f"Isolated worker (a user's model), one call of {found['images_per_call']} images, {found['backend']} "
        f"both ways (upload checks and engine {found['load_seconds']:.1f} s):",
        "",
        "| pixels | MB per call | in-process ms | worker ms | ratio |",
        "|---|---|---|---|---|",
    ]
    for kind in ("uint8", "float32"):
        r = found[kind]
        lines.append(
            f"| {kind} | {r['megabytes']:.1f} | {r['in_process'] * 1000:.0f} | {r['worker'] * 1000:.0f} "
            f"| {r['ratio']:.2f}x |"
        )
    return "\n".join(lines)
