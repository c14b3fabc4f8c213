"""`explainers.run` with the result store: a map computed once, by the page or the command, is read back.

A map's entry is keyed on the model's identity (`models.identity.model_id`), the forward engine for methods
that use it, the model-view pixels, the target, contrast, method, seed and every parameter (`request_key`);
`store.results.key` adds this code and the libraries. A user's uploaded model is never kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

from whylabel import models
from whylabel.explainers.base import Attribution, Progress
from whylabel.explainers.explain import Request, run
from whylabel.explainers.progressive import Stage
from whylabel.models.identity import model_id
from whylabel.store import results

results.keeps(Attribution)
results.keeps(Stage)


def request_key(request: Request, kind: str, per_method: bool = True) -> str | None:
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
    parts: dict[str, Any] = {
        "kind": kind,
        "model": model,
        "engine": engine_of(clf) if uses_engine else None,
        "pixels": [list(pixels.shape), hashlib.sha256(pixels.tobytes()).hexdigest()],
        "target": request.target,
        "contrast": request.contrast,
    }
    if per_method:
        parts.update(method=request.method, seed=request.seed, params=dict(request.params))
    return results.key(parts)


def engine_of(clf: models.Classifier) -> list[Any]:
    fast = clf.engine()
    return [fast.backend, fast.batch_size]


def attribution(
    request: Request,
    progress: Progress | None = None,
    on_stage: Callable[[Attribution], None] | None = None,
    keep: bool = True,
) -> Attribution:
    """`explainers.run(request, ...)`, or the converged map an earlier run kept (then no stage is heard).

    A kept map says so in `extras["kept"]` (True), and its `seconds` are those of the run that computed it.
    `keep` False computes anew and keeps nothing.
    """

    def compute() -> Attribution:
        att = run(request, progress, on_stage)
        return dataclasses.replace(att, request=None)  # the request holds the model and image: not kept

    att, hit = results.kept(request_key(request, "map") if keep else None, compute)
    if hit and progress is not None:
        progress(1.0)
    return dataclasses.replace(att, request=request, extras={**att.extras, "kept": hit})
