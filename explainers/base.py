"""The shared base of every explainer: parameters, the `Attribution` result, and the job a method computes."""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from whylabel.explainers.progressive import Estimate, Stage
from whylabel.models import Classifier

Progress = Callable[[float], None]
REFERENCE_SIZE = 224


@dataclass(frozen=True)
class Param:
    """One parameter of a method: its default, bounds or choices, and help text for the page."""

    name: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    at_most_input_size: bool = False
    """A length in model-input pixels: bounded by the input size, its default scaled from a 224-px input."""
    at_most: str = ""
    """The name of an earlier parameter this one may not exceed (occlusion's stride: at most its window)."""

    def default_for(self, input_size: int | None) -> Any:
        """The default, scaled to the model's input size where the parameter is a length."""
        if self.at_most_input_size and input_size is not None:
            return max(1, round(self.default * input_size / REFERENCE_SIZE))
        return self.default

    def bounded_by(self, earlier: Mapping[str, Any], input_size: int | None) -> Param:
        """This parameter with its upper bound and default lowered to the value of the one it may not exceed."""
        if not self.at_most:
            return self
        ceiling = earlier[self.at_most]
        high = ceiling if self.upper(input_size) is None else min(self.upper(input_size), ceiling)
        default = min(self.default_for(input_size), high)
        return dataclasses.replace(self, high=high, default=default, at_most_input_size=False)

    def kind(self) -> type:
        return type(self.default)

    def upper(self, input_size: int | None) -> float | None:
        """The upper bound, tightened to the model's input size where the parameter is a length."""
        if self.at_most_input_size and input_size is not None:
            return input_size if self.high is None else min(self.high, input_size)
        return self.high

    def describe(self, input_size: int | None = None) -> str:
        """The valid values in words, as every refusal states them: "a whole number between 1 and 16"."""
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        kind = "a whole number" if self.kind() is int else "a number"
        low, high = self.low, self.upper(input_size)
        if low is not None and high is not None:
            return f"{kind} between {_plain(low)} and {_plain(high)}" + (
                f" (the {self.at_most})" if self.at_most else ""
            )
        if low is not None:
            return f"{kind} of at least {_plain(low)}"
        return kind if high is None else f"{kind} of at most {_plain(high)}"

    def check(self, value: Any, input_size: int | None = None) -> Any:
        """The value in this parameter's type, or ValueError naming the valid range or choices."""
        if self.choices:
            if not isinstance(value, str) or value not in self.choices:
                raise self.refusal(value, input_size)
            return value
        if not self._is_number(value) or not self._in_range(value, input_size):
            raise self.refusal(value, input_size)
        try:
            return self.kind()(value)
        except OverflowError:  # a huge int for an unbounded float
            raise self.refusal(value, input_size) from None

    def refusal(self, value: Any, input_size: int | None = None) -> ValueError:
        """The ValueError for a value outside `describe`: one line, the valid values, what was given."""
        return ValueError(f"{self.name} must be {self.describe(input_size)}; got {shown(value)}")

    def _is_number(self, value: Any) -> bool:
        """A finite real number (never a bool), and a whole one for an int parameter."""
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            return False
        if isinstance(value, int | np.integer):
            return True
        return math.isfinite(value) and (self.kind() is not int or float(value).is_integer())

    def _in_range(self, value: int | float, input_size: int | None) -> bool:
        """Compared exactly, so a huge int is out of range rather than an OverflowError."""
        high = self.upper(input_size)
        return (self.low is None or value >= self.low) and (high is None or value <= high)


def _plain(number: float) -> str:
    """1 rather than 1.0, 0.5 as it is."""
    return str(int(number)) if float(number).is_integer() else str(number)


def shown(value: Any, limit: int = 60) -> str:
    """A value's repr for a message: one line, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Attribution:
    """One method's map for one image and target, aligned with `clf.input_image(img)`.

    `heatmap` is float32 (H, W); positive values are evidence for the target.
    `params` holds every resolved parameter, the seed included.
    """

    method: str
    target: int
    label: str
    heatmap: np.ndarray
    params: dict[str, Any]
    seconds: float
    signed: bool
    score: str
    extras: dict[str, Any] = field(default_factory=dict)
    contrast: int | None = None
    """The class B of "why the target rather than B": the map explains score(target) - score(B)."""
    contrast_label: str | None = None
    request: Any = None
    """The `explainers.Request` that made this map (model, image, method, target, contrast, seed, parameters):
    what the trust metrics re-run and score. None only for a map built by hand (to draw it)."""
    stage: Stage | None = None
    """Which estimate this map is (first estimate, refining, converged); None for a map built by hand."""
    warnings: list[str] = field(default_factory=list)
    """What this map cannot show or how far its own numbers disown it, one sentence each (see `blindspots`)."""


@dataclass
class Job:
    """What a method computes from: the model-view pixels (read-only), the target and the parameters."""

    clf: Classifier
    pixels: np.ndarray
    target: int
    seed: int
    params: dict[str, Any]
    progress: Progress
    contrast: int | None = None

    def tensor(self) -> torch.Tensor:
        """The normalised (1, 3, H, W) model input."""
        return self.clf.to_tensor(self.pixels)

    def model(self, passes: int | None = None) -> torch.nn.Module:
        """The module for gradient methods: the logits, less the contrast class's logit when there is one.

        Its output column `target` is then the score explained, logit(target) - logit(contrast), so Captum's
        `target=job.target` needs no other change. With `passes`, the forward passes the method will make, each
        pass reports progress: a long run shows it, and a run the user replaced can stop between passes.
        """
        module = self.clf.module if self.contrast is None else Versus(self.clf.module, self.contrast)
        return module if passes is None else Reporting(module, self.progress, passes)

    def versus(self, scores: np.ndarray) -> np.ndarray:
        """Scores (N, classes) from the engine, less the contrast class's column when there is one."""
        return scores if self.contrast is None else scores - scores[:, [self.contrast]]


class Versus(torch.nn.Module):
    """A classifier's logits minus one class's logit: column k is then logit(k) - logit(contrast)."""

    def __init__(self, module: torch.nn.Module, contrast: int) -> None:
        super().__init__()
        self.module, self.contrast = module, contrast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        return out - out[:, self.contrast : self.contrast + 1]


class Reporting(torch.nn.Module):
    """A module that reports the share of its expected forward passes done after each one."""

    def __init__(self, module: torch.nn.Module, progress: Progress, passes: int) -> None:
        super().__init__()
        self.module, self.progress, self.passes, self.done = module, progress, max(passes, 1), 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        self.done += 1
        self.progress(min(self.done / self.passes, 1.0))
        return out


class Explainer(ABC):
    """One attribution method. Subclasses set the class attributes and implement `compute`."""

    name: ClassVar[str]
    title: ClassVar[str]
    paper: ClassVar[str]
    paper_url: ClassVar[str]
    how_to_read: ClassVar[str]
    signed: ClassVar[bool] = True
    stochastic: ClassVar[bool] = False
    default_on: ClassVar[bool] = True
    """Shown by default in the dashboard (the four fast panels); other methods are one click away."""
    runs_module: ClassVar[bool] = True
    """Runs the shared torch module itself (gradients, hooks), holding its lock; perturbation methods that only
    use the fast engine set False and run alongside other sessions."""
    score: ClassVar[str] = "logit"
    params: ClassVar[tuple[Param, ...]] = ()

    @classmethod
    def uses_randomness(cls, params: Mapping[str, Any]) -> bool:
        """Whether the seed can change the map for these resolved parameters (a test holds every False to it)."""
        return cls.stochastic

    @classmethod
    def resolve(cls, given: Mapping[str, Any], input_size: int | None = None) -> dict[str, Any]:
        """Every parameter, checked, with defaults filled in; unknown names raise ValueError."""
        known = {p.name: p for p in cls.params}
        unknown = sorted(name if str(name).isidentifier() else shown(name) for name in set(given) - set(known))
        if unknown:
            valid = ", ".join(known) or "none"
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for {cls.name}; valid parameters: {valid}")
        resolved: dict[str, Any] = {}
        for name, p in known.items():
            bounded = p.bounded_by(resolved, input_size)
            resolved[name] = bounded.check(
                given[name] if name in given else bounded.default_for(input_size), input_size
            )
        return resolved

    @classmethod
    def warnings(cls, heatmap: np.ndarray, extras: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
        """This method's warnings for one map, from the measurements its `compute` put in `extras`.

        A method with a blind spot by construction (a fill that hides little) or a fit of its own overrides this;
        every map is also checked for being zero everywhere.
        """
        return []

    @abstractmethod
    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        """The (H, W) map and any extras (segments, fit scores) for the panel."""

    def estimates(self, job: Job) -> Iterator[Estimate]:
        """The maps this method can show on the way to its answer, the last one `final` (see `progressive`).

        By default one: `compute`'s map. A method that can refine overrides this and `compute` stays its
        whole-budget answer.
        """
        heatmap, extras = self.compute(job)
        evaluations = int(extras.get("evaluations", 1))
        yield Estimate(heatmap, extras, evaluations, evaluations, final=True)
