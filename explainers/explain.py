"""A `Request` (model, image, method, target, contrast, seed, parameters), checked once; `run` computes its map.

`explain(clf, img, method, ...)` is the short form: `run(Request.make(clf, img, method, ...))`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from PIL import Image

from whylabel.explainers import blindspots
from whylabel.explainers.base import Attribution, Explainer, Job, Param, Progress, shown
from whylabel.explainers.hooks import no_leaked_hooks
from whylabel.explainers.progressive import Estimate, Stage, converge
from whylabel.explainers.registry import available, get
from whylabel.models import Classifier
from whylabel.models.locks import module_lock
from whylabel.models.remote import is_remote, model
from whylabel.models.worker import operation

SEED = Param("seed", 0, "Random seed for the methods that sample.", low=0, high=2**32 - 1)


@dataclass(frozen=True)
class Request:
    """One map asked for, every part checked and resolved: what `run`, the trust checks and the evidence take.

    `target` and `contrast` are class indices; `params` holds every parameter of the method, defaults filled in
    (the seed apart). Build one with `Request.make`, which refuses bad input with a ValueError before any work.
    """

    clf: Classifier
    image: Image.Image
    method: str
    target: int
    contrast: int | None = None
    seed: int = 0
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def make(
        cls,
        clf: Classifier,
        img: Image.Image,
        method: str,
        target: int | str | None = None,
        contrast: int | str | None = None,
        seed: int = 0,
        **params: Any,
    ) -> Request:
        """Check and resolve a request: target None is the top-1 class; `contrast` asks "why target rather than B"."""
        explainer = get(method)
        check_inputs(clf, img, None)
        if explainer.runs_module and not clf.gradients:
            raise ValueError(needs_gradients(method, clf))
        resolved = explainer.resolve(params, clf.input_size)
        seed = check_seed(seed)
        index = clf.resolve_target(target, img)
        versus = resolve_contrast(clf, img, contrast, index)
        return cls(clf, img, method, index, versus, seed, MappingProxyType(resolved))

    @property
    def explainer(self) -> type[Explainer]:
        return get(self.method)

    def with_seed(self, seed: int) -> Request:
        return dataclasses.replace(self, seed=check_seed(seed))

    def with_model(self, clf: Classifier) -> Request:
        """The same request of another classifier with the same labels (a randomised copy, say)."""
        return dataclasses.replace(self, clf=clf)

    def uses_randomness(self) -> bool:
        return self.explainer.uses_randomness(self.params)


def run(
    request: Request, progress: Progress | None = None, on_stage: Callable[[Attribution], None] | None = None
) -> Attribution:
    """The converged map for a request; `progress` hears the fraction done (a replaced page run may stop there).

    `on_stage` hears every estimate on the way, the converged one last (see `progressive`).
    """
    if on_stage is not None and not callable(on_stage):
        raise ValueError(f"on_stage must be a function of one Attribution, or None; got {shown(on_stage)}")
    for att in stages(request, progress):
        if on_stage is not None:
            on_stage(att)
    return att


def stages(request: Request, progress: Progress | None = None) -> Iterator[Attribution]:
    """The maps of a request as they improve: a first estimate, refinements, and the converged map last.

    Each `Attribution.stage` says which it is; the rule that ends the refinement is in `explainers.stages`.
    Methods that cannot refine give one map. Stopping early (closing the iterator) stops the work.
    """
    check_inputs(request.clf, request.image, progress)
    cls, clf = request.explainer, request.clf
    pixels = clf.input_image(request.image)
    pixels.flags.writeable = False
    heard = Heard(progress or (lambda _: None))
    job = Job(clf, pixels, request.target, request.seed, dict(request.params), heard, request.contrast)
    start = time.perf_counter()
    if cls.runs_module:  # gradients and hooks: the whole run under the module's lock, then its maps
        found = in_worker(request, pixels) if is_remote(clf) else module_estimates(cls, job)
        for estimate, stage in found:
            yield attribution(request, pixels, estimate, stage, time.perf_counter() - start)
        return
    for estimate, stage in converge(cls().estimates(job)):  # engine passes only: no hooks, no lock
        if stage.converged and heard.last < 1.0:  # done, though repeats or an early stop left budget unspent
            heard(1.0)
        yield attribution(request, pixels, estimate, stage, time.perf_counter() - start)


@dataclass
class Heard:
    """A progress callback that remembers the last fraction it passed on, so 1.0 is said once."""

    progress: Progress
    last: float = 0.0

    def __call__(self, fraction: float) -> None:
        self.last = fraction
        self.progress(fraction)


def module_estimates(cls: type[Explainer], job: Job) -> list[tuple[Estimate, Stage]]:
    """Every estimate of a method that runs the module itself, computed under its lock with no hook left."""
    with module_lock(job.clf.module), no_leaked_hooks(job.clf.module):
        return list(converge(cls().estimates(job)))


def in_worker(request: Request, pixels: np.ndarray) -> list[tuple[Estimate, Stage]]:
    """The same, for a user's model: computed in its isolated worker, which holds the module."""
    args = (request.method, pixels, request.target, request.seed, dict(request.params), request.contrast)
    return request.clf.call("estimates", *args)  # type: ignore[attr-defined]


@operation("estimates")
def worker_estimates(
    model_id: str, method: str, pixels: np.ndarray, target: int, seed: int, params: dict[str, Any], contrast: int | None
) -> list[tuple[Estimate, Stage]]:
    """`module_estimates` in the worker, for the model it holds under `model_id`."""
    pixels.flags.writeable = False
    job = Job(model(model_id), pixels, target, seed, params, lambda _: None, contrast)
    return module_estimates(get(method), job)


def attribution(request: Request, pixels: np.ndarray, estimate: Estimate, stage: Stage, seconds: float) -> Attribution:
    """The `Attribution` of one estimate of a request."""
    cls, clf = request.explainer, request.clf
    heatmap = _check_map(estimate.heatmap, pixels.shape[:2], request.method)
    return Attribution(
        method=request.method,
        target=request.target,
        label=clf.labels[request.target],
        heatmap=heatmap,
        params={**request.params, "seed": request.seed},
        seconds=seconds,
        signed=cls.signed,
        score=cls.score,
        extras=estimate.extras,
        contrast=request.contrast,
        contrast_label=None if request.contrast is None else clf.labels[request.contrast],
        request=request,
        stage=stage,
        warnings=[*blindspots.zero_map(heatmap), *cls.warnings(heatmap, estimate.extras, request.params)],
    )


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
    get(method)
    check_inputs(clf, img, progress)  # the same refusals in the same order as before any work
    return run(Request.make(clf, img, method, target, contrast, seed, **params), progress)


def resolve_contrast(clf: Classifier, img: Image.Image | None, contrast: int | str | None, target: int) -> int | None:
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


def needs_gradients(what: str, clf: Classifier) -> str:
    """Why `what` cannot run on a model without gradients, and which methods can."""
    works = [name for name in available() if not get(name).runs_module]
    return (
        f"{what} needs the model's gradients, which {clf.name} does not give (an ONNX graph runs forward only); "
        f"these methods work with it: {', '.join(works)}"
    )


def check_request(request: Any) -> Request:
    """ValueError unless `request` is a `Request` (from `Request.make`)."""
    if not isinstance(request, Request):
        raise ValueError(f"request must be an explainers.Request (see Request.make); got {shown(request)}")
    return request


def _check_map(heatmap: np.ndarray, shape: tuple[int, ...], method: str) -> np.ndarray:
    out = np.ascontiguousarray(heatmap, dtype=np.float32)
    if out.shape != shape:
        raise RuntimeError(f"{method} returned a map of shape {out.shape}, expected {shape}")
    if not np.isfinite(out).all():
        raise RuntimeError(f"{method} returned non-finite values; the model may output NaN or inf")
    return out
