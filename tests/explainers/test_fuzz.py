"""Fuzzing `explain`'s inputs: valid ones give a finite map of the model's input shape, invalid ones a ValueError.

Which inputs are valid is decided here from the definitions (each Param's bounds or choices, the occlusion rule
that a stride given may not exceed the window, the seed's range, the labels), never by asking the code under test.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from whylabel import explainers, models
from whylabel.explainers.base import Param

SIZE = 12
LABELS = ("cat", "dog", "fish")
METHODS = explainers.available()
EXPLAIN_ARGUMENTS = {"clf", "img", "method", "target", "seed", "progress", "contrast"}
"""Names `explain` takes itself: never drawn as method parameters."""
COST_CAP = {"samples": 150, "evaluations": 150, "steps": 60}
"""Valid draws of these stay below the cap so that each example is quick; the full ranges are in test_params."""
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class Tiny(torch.nn.Module):
    """Conv, ReLU (a module, used once), pooling, linear: every method runs on it, Grad-CAM and guided backprop
    included. It counts the images it is shown."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.act = torch.nn.ReLU()
        self.pool = torch.nn.AdaptiveAvgPool2d(2)
        self.head = torch.nn.Linear(16, len(LABELS))
        self.images = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images += len(x)
        return self.head(self.pool(self.act(self.conv(x))).flatten(1))


@cache
def classifier() -> models.Classifier:
    return models.from_module(Tiny(), LABELS, SIZE, crop=0.875, name="fuzz", backend="torch", batch_size=32)


@cache
def photo() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (13, 15, 3), dtype=np.uint8))


# --- what is valid, from the definitions -------------------------------------------------------------------------


def valid_value(p: Param, value: Any) -> bool:
    if p.choices:
        return isinstance(value, str) and value in p.choices
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return False  # numpy numbers count as numbers
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number) or (p.kind() is int and not number.is_integer()):
            return False
    return p.low <= value <= p.upper(SIZE)


def default(method: str, name: str) -> Any:
    return next(p for p in explainers.get(method).params if p.name == name).default_for(SIZE)


def valid_params(method: Any, params: dict[str, Any]) -> bool:
    if not isinstance(method, str) or method not in METHODS:
        return False
    known = {p.name: p for p in explainers.get(method).params}
    if not set(params) <= set(known) or not all(valid_value(known[k], v) for k, v in params.items()):
        return False
    if method == "occlusion" and "stride" in params:  # a stride left out follows the window down
        return params["stride"] <= params.get("window", default(method, "window"))
    return True


def index_of(value: Any) -> int | None:
    """The class a target or contrast names, or None when it names none."""
    if isinstance(value, str):
        return LABELS.index(value) if value in LABELS else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(LABELS):
        return value
    return None


def valid_call(call: dict[str, Any]) -> bool:
    if not valid_params(call["method"], call["params"]):
        return False
    seed = call["seed"]
    whole = isinstance(seed, int) or (isinstance(seed, float) and math.isfinite(seed) and seed.is_integer())
    if isinstance(seed, bool) or not whole or not 0 <= seed <= 2**32 - 1:
        return False
    target = call["target"]
    if target is not None and index_of(target) is None:
        return False
    contrast = call["contrast"]
    if contrast is None:
        return True
    top = classifier().predict(photo(), k=1).top[0][0]
    return index_of(contrast) is not None and index_of(contrast) != (top if target is None else index_of(target))


# --- strategies --------------------------------------------------------------------------------------------------

ODD = [None, True, False, math.nan, math.inf, -math.inf, [], [1], {}, (), b"4", "", "3", 10**400, -(10**400), 0.5]
JUNK = st.one_of(
    st.sampled_from(ODD),
    st.text(max_size=6),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
)
"""Anything at all: out-of-range numbers, strings, None, bools, NaN, containers."""


def in_range(p: Param) -> st.SearchStrategy[Any]:
    if p.choices:
        return st.sampled_from(p.choices)
    high = min(p.upper(SIZE), COST_CAP.get(p.name, p.upper(SIZE)))
    if p.kind() is float:
        return st.floats(p.low, high)
    whole = st.integers(int(p.low), int(high))
    return st.one_of(whole, whole.map(float), whole.map(np.int64))


def near_range(p: Param) -> st.SearchStrategy[Any]:
    """Values just outside the bounds (and inside), and, for choices, near misses."""
    if p.choices:
        return st.sampled_from([c.upper() for c in p.choices] + [c + " " for c in p.choices] + ["", "none"])
    low, high = p.low, p.upper(SIZE)
    step = 1 if p.kind() is int else 0.001
    edges = [low - step, high + step, low - 100 * step, high * 10 + 1, low + step / 2, high - step / 2]
    return st.sampled_from(edges)


@st.composite
def valid_calls(draw: st.DrawFn) -> dict[str, Any]:
    method = draw(st.sampled_from(METHODS))
    params = {p.name: draw(in_range(p)) for p in explainers.get(method).params if draw(st.booleans())}
    if method == "occlusion":  # keep a stride the window allows
        window = params.get("window", default(method, "window"))
        params["stride"] = min(params.get("stride", window), window)
    classes = st.one_of(st.integers(0, len(LABELS) - 1), st.sampled_from(LABELS))
    target = draw(st.one_of(st.none(), classes))
    return {"method": method, "params": params, "seed": draw(st.integers(0, 2**32 - 1)), "target": target}


JUNK_METHODS = st.one_of(st.text(max_size=12), st.sampled_from(["LIME", "gradcam ", "deconvnet", ""]), JUNK)
JUNK_NAMES = st.text(min_size=1, max_size=8).filter(lambda name: name not in EXPLAIN_ARGUMENTS)
CLASSES_OR_JUNK = st.one_of(st.integers(-1, len(LABELS)), st.sampled_from([*LABELS, "horse"]), JUNK)


@st.composite
def any_calls(draw: st.DrawFn) -> dict[str, Any]:
    """A valid call with none, one or two of its parts replaced by junk (which may happen to be valid)."""
    call = {**draw(valid_calls()), "contrast": draw(st.one_of(st.none(), CLASSES_OR_JUNK))}
    for part in draw(st.lists(st.sampled_from(["method", "param", "name", "seed", "target"]), max_size=2)):
        if part == "param" and call["method"] in METHODS and explainers.get(call["method"]).params:
            p = draw(st.sampled_from(explainers.get(call["method"]).params))
            call["params"] = {**call["params"], p.name: draw(st.one_of(near_range(p), JUNK))}
        elif part == "name":
            call["params"] = {**call["params"], draw(JUNK_NAMES): draw(JUNK)}
        elif part in ("method", "seed", "target"):
            call[part] = draw(JUNK_METHODS if part == "method" else CLASSES_OR_JUNK if part == "target" else JUNK)
    return call


def run(call: dict[str, Any]) -> explainers.Attribution:
    return explainers.explain(
        classifier(),
        photo(),
        call["method"],
        target=call["target"],
        seed=call["seed"],
        contrast=call["contrast"],
        **call["params"],
    )


def check_map(att: explainers.Attribution, call: dict[str, Any]) -> None:
    assert att.heatmap.shape == (SIZE, SIZE) and att.heatmap.dtype == np.float32
    assert np.isfinite(att.heatmap).all()
    for name, value in call["params"].items():
        assert att.params[name] == value


# --- the properties ----------------------------------------------------------------------------------------------


@FUZZ
@given(valid_calls())
def test_valid_parameters_give_a_finite_map_of_the_input_shape(call):
    call = {**call, "contrast": None}
    assert valid_call(call), call  # the strategy draws only what the definitions allow
    check_map(run(call), call)


@settings(FUZZ, max_examples=80)
@given(any_calls())
def test_any_parameters_give_a_map_or_a_value_error_and_nothing_else(call):
    event("valid" if valid_call(call) else "invalid")
    if valid_call(call):
        check_map(run(call), call)
        return
    try:
        run(call)
    except ValueError as err:
        message = str(err)
        assert message and "\n" not in message
    else:
        raise AssertionError(f"accepted an invalid call: {call!r}")


@st.composite
def one_bad_value(draw: st.DrawFn) -> dict[str, Any]:
    """A valid call but for one parameter, whose value the definitions refuse."""
    method = draw(st.sampled_from([m for m in METHODS if explainers.get(m).params]))
    bad = draw(st.sampled_from(explainers.get(method).params))
    value = draw(st.one_of(near_range(bad), JUNK).filter(lambda v: not valid_value(bad, v)))
    return {"method": method, "params": {bad.name: value}, "seed": 0, "target": 1, "contrast": None}


@settings(FUZZ, max_examples=150)
@given(one_bad_value())
def test_one_bad_value_is_refused_before_the_model_runs(call):
    shown = classifier().module.images

    try:
        run(call)
    except ValueError as err:
        assert call["params"] and next(iter(call["params"])) in str(err)
    else:
        raise AssertionError(f"accepted an invalid call: {call!r}")

    assert classifier().module.images == shown
