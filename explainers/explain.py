"""`explain`: look a method up, check its inputs, run it, and return an `Attribution`."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PIL import Image

from explainers.base import Attribution, Job, Param, Progress, shown
from explainers.hooks import no_leaked_hooks
from explainers.registry import get
from models import Classifier
from models.locks import module_lock

SEED = Param("seed", 0, "Random seed for the methods that sample.", low=0, high=2**32 - 1)


def explain(
    clf: Classifier,
    img: Image.Image,
    method: str,
    target: int | str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    contrast: int | str | None = None,
    **params: Any,
) -> Attribution:
    """Attribute `clf`'s score for `target` (default: its top-1 class) on `img` with `method`.

    With `contrast` (a class index or label), explain "why `target` rather than `contrast`": the map is of
    score(target) - score(contrast), in the method's score (logit or probability).
    Raises ValueError for an unknown method, a bad parameter value, or a target or contrast outside the labels.
    """
    cls = get(method)
    check_inputs(clf, img, progress)
    resolved = cls.resolve(params, clf.input_size)
    seed = check_seed(seed)
    index = clf.resolve_target(target, img)
    versus = resolve_contrast(clf, img, contrast, index)
    pixels = clf.input_image(img)
    pixels.flags.writeable = False
    job = Job(clf, pixels, index, seed, resolved, progress or (lambda _: None), versus)
    start = time.perf_counter()
    if cls.runs_module:
        with module_lock(clf.module), no_leaked_hooks(clf.module):
            heatmap, extras = cls().compute(job)
    else:  # engine passes only: no hooks, no lock, so a long LIME run holds up nobody
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
        contrast=versus,
        contrast_label=None if versus is None else clf.labels[versus],
    )


def resolve_contrast(clf: Classifier, img: Image.Image, contrast: int | str | None, target: int) -> int | None:
    """The contrast class's index (None for none); ValueError outside the labels or equal to the target."""
    if contrast is None:
        return None
    try:
        index = clf.resolve_target(contrast, img)
    except ValueError as err:
        raise ValueError(f"contrast: {err}") from None
    if index == target:
        raise ValueError(f"the contrast class must differ from the target; both are {clf.labels[index]!r} ({index})")
    return index


def check_seed(seed: Any) -> int:
    """The seed as an int, or ValueError stating the valid range."""
    return SEED.check(seed)


def check_inputs(clf: Classifier, img: Any, progress: Any) -> None:
    """ValueError for a classifier, image or progress callback of the wrong kind, before any work."""
    if not isinstance(clf, Classifier):
        raise ValueError(f"clf must be a models.Classifier (see models.load, models.from_module); got {shown(clf)}")
    if not isinstance(img, Image.Image):
        raise ValueError(f"img must be a PIL image (see models.open_image); got {shown(img)}")
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be a function of one float, or None; got {shown(progress)}")


def _check_map(heatmap: np.ndarray, shape: tuple[int, ...], method: str) -> np.ndarray:
    out = np.ascontiguousarray(heatmap, dtype=np.float32)
    if out.shape != shape:
        raise RuntimeError(f"{method} returned a map of shape {out.shape}, expected {shape}")
    if not np.isfinite(out).all():
        raise RuntimeError(f"{method} returned non-finite values; the model may output NaN or inf")
    return out
