"""`explain`: look a method up, check its inputs, run it, and return an `Attribution`."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PIL import Image

from explainers.base import Attribution, Job, Progress
from explainers.hooks import no_leaked_hooks
from explainers.registry import get
from models import Classifier


def explain(
    clf: Classifier,
    img: Image.Image,
    method: str,
    target: int | str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    **params: Any,
) -> Attribution:
    """Attribute `clf`'s score for `target` (default: its top-1 class) on `img` with `method`.

    Raises ValueError for an unknown method, a bad parameter value or a target outside the labels.
    """
    cls = get(method)
    resolved = cls.resolve(params, clf.input_size)
    seed = _check_seed(seed)
    index = clf.resolve_target(target, img)
    pixels = clf.input_image(img)
    pixels.flags.writeable = False
    job = Job(clf, pixels, index, seed, resolved, progress or (lambda _: None))
    start = time.perf_counter()
    with no_leaked_hooks(clf.module):
        heatmap, extras = cls().compute(job)
    seconds = time.perf_counter() - start
    return Attribution(
        method=method,
        target=index,
        label=clf.labels[index],
        heatmap=_check_map(heatmap, pixels.shape[:2], method),
        params={**resolved, "seed": seed},
        seconds=seconds,
        signed=cls.signed,
        score=cls.score,
        extras=extras,
    )


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be a whole number between 0 and {2**32 - 1}; got {seed!r}")
    return int(seed)


def _check_map(heatmap: np.ndarray, shape: tuple[int, ...], method: str) -> np.ndarray:
    out = np.ascontiguousarray(heatmap, dtype=np.float32)
    if out.shape != shape:
        raise RuntimeError(f"{method} returned a map of shape {out.shape}, expected {shape}")
    if not np.isfinite(out).all():
        raise RuntimeError(f"{method} returned non-finite values; the model may output NaN or inf")
    return out
