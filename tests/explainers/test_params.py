"""Every parameter of the public API is checked: a bad value is a ValueError that states the valid range or choices.

The registry walk below covers every `Param` of every registered method, so a new method's parameters are
checked without a new test. Expected range texts are built from each Param's own bounds.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
import torch

from whylabel import explainers, models, trust
from whylabel.explainers.base import Param
from whylabel.render import Display
from whylabel.trust.faithfulness import curve

INPUT_SIZE = 16
METHODS = explainers.available()
SEED_RANGE = f"between 0 and {2**32 - 1}"
ROOMY: dict[str, dict[str, Any]] = {"occlusion": {"window": INPUT_SIZE}}
"""Settings that leave every other parameter its full range (a stride may not exceed the window)."""


def plain(number: float) -> str:
    """How a bound reads in a message: 16, not 16.0; 0.5 as it is."""
    return str(int(number)) if float(number).is_integer() else str(number)


def range_text(p: Param, input_size: int | None = INPUT_SIZE) -> str:
    """The range as a refusal states it; a parameter bounded by another names it ("(the window)")."""
    bounded_by = f" (the {p.at_most})" if p.at_most else ""
    return f"between {plain(p.low)} and {plain(p.upper(input_size))}{bounded_by}"


def all_params() -> list[tuple[str, Param]]:
    return [(method, p) for method in METHODS for p in explainers.get(method).params]


def numeric_params() -> list:
    return [pytest.param(m, p, id=f"{m}-{p.name}") for m, p in all_params() if not p.choices]


def choice_params() -> list:
    return [pytest.param(m, p, id=f"{m}-{p.name}") for m, p in all_params() if p.choices]


@pytest.fixture
def counting(tiny):
    """A 16-px classifier that counts the images its module is shown: refusals must come before any."""
    module = tiny.Counting(tiny.TinyConv())
    return models.from_module(module, tiny.labels, INPUT_SIZE, crop=1.0, backend="torch"), module


@pytest.fixture
def photo(noise_image):
    return noise_image(20, 18, seed=3)


def refused(clf: models.Classifier, img, method: str, **kwargs: Any) -> str:
    """The message of the ValueError `explain` raises; it must be one plain line."""
    with pytest.raises(ValueError) as info:
        explainers.explain(clf, img, method, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# --- the registry walk: every Param of every method --------------------------------------------------------------


def test_the_walk_covers_every_registered_parameter():
    walked = {(m, p.name) for m, p in all_params()}
    assert walked == {(m, p.name) for m in METHODS for p in explainers.get(m).params}
    assert {m for m, _ in walked} >= {"occlusion", "lime", "shap", "integrated_gradients", "smoothgrad", "gradcam"}


@pytest.mark.parametrize(("method", "p"), numeric_params())
def test_every_number_has_both_bounds_and_its_defaults_inside_them(method, p):
    """No parameter is open-ended: a user cannot ask for 10**9 samples."""
    assert p.low is not None and p.high is not None and p.low <= p.high
    assert p.kind() in (int, float)
    for size in (INPUT_SIZE, 224, None):
        default = p.default_for(size)
        assert p.low <= default <= p.upper(size)
        assert p.check(default, size) == default


@pytest.mark.parametrize(("method", "p"), numeric_params())
def test_the_bounds_themselves_are_accepted(method, p):
    for value in (p.low, p.upper(INPUT_SIZE)):
        resolved = explainers.get(method).resolve({**ROOMY.get(method, {}), p.name: value}, INPUT_SIZE)[p.name]
        assert resolved == value and type(resolved) is p.kind()


@pytest.mark.parametrize(("method", "p"), numeric_params())
def test_numbers_out_of_range_or_of_the_wrong_kind_are_refused_with_the_range(counting, photo, method, p):
    clf, module = counting
    high = p.upper(INPUT_SIZE)
    step = 1 if p.kind() is int else 0.01
    bad: list[Any] = [p.low - step, high + step, -(10**400), 10**400, "3", None, True, False, [1], {}]
    bad += [math.nan, math.inf, -math.inf, np.float64("nan")]
    if p.kind() is int:
        bad += [p.low + 0.5, np.float32(p.low + 0.25)]
    kind = "a whole number" if p.kind() is int else "a number"

    for value in bad:
        message = refused(clf, photo, method, target=0, **{**ROOMY.get(method, {}), p.name: value})
        assert message.startswith(f"{p.name} must be {kind} {range_text(p)}; got "), (value, message)
    assert module.images == 0  # refused before the model ran


@pytest.mark.parametrize(("method", "p"), choice_params())
def test_unknown_choices_are_refused_with_the_choices(counting, photo, method, p):
    clf, module = counting
    for value in ["nope", p.choices[0].upper(), f" {p.choices[0]}", "", 3, None, True, [p.choices[0]], math.nan]:
        message = refused(clf, photo, method, target=0, **{p.name: value})
        assert message.startswith(f"{p.name} must be one of {', '.join(p.choices)}; got "), (value, message)
    assert module.images == 0


@pytest.mark.parametrize("method", METHODS)
def test_unknown_parameter_names_list_the_valid_ones(counting, photo, method):
    clf, module = counting
    valid = ", ".join(p.name for p in explainers.get(method).params) or "none"
    for name in ["no_such_param", "Samples", "seed_"]:
        message = refused(clf, photo, method, target=0, **{name: 1})
        assert name in message and message.endswith(f"valid parameters: {valid}")
    assert module.images == 0


def test_non_string_parameter_names_are_refused_too():
    with pytest.raises(ValueError, match="unknown parameter"):
        explainers.get("lime").resolve({1: 2, "x\ny": 3}, INPUT_SIZE)


# --- the cases named in the issue --------------------------------------------------------------------------------


def test_an_occlusion_window_larger_than_the_model_input_is_refused(counting, photo):
    clf, _ = counting
    message = refused(clf, photo, "occlusion", window=INPUT_SIZE + 1)
    assert message == f"window must be a whole number between 1 and {INPUT_SIZE}; got {INPUT_SIZE + 1}"


@pytest.mark.parametrize("input_size", [16, 28, 224])
def test_the_window_and_stride_bounds_follow_the_input_size(input_size):
    occlusion = explainers.get("occlusion")
    for name, bound in (("window", f"{input_size}"), ("stride", rf"{input_size} \(the window\)")):
        with pytest.raises(ValueError, match=f"^{name} must be a whole number between 1 and {bound}; got"):
            occlusion.resolve({"window": input_size, "stride": input_size, name: input_size + 1}, input_size)
    assert occlusion.resolve({"window": input_size, "stride": input_size}, input_size)["window"] == input_size


def test_a_stride_larger_than_the_window_is_refused_with_its_range(counting, photo):
    clf, _ = counting
    message = refused(clf, photo, "occlusion", window=4, stride=5)
    assert message == "stride must be a whole number between 1 and 4 (the window); got 5"
    explainers.get("occlusion").resolve({"window": 1, "stride": 1}, INPUT_SIZE)  # the finest grid is allowed
    resolved = explainers.get("occlusion").resolve({"window": 1}, INPUT_SIZE)  # a stride left out follows it down
    assert resolved == {"window": 1, "stride": 1, "refine": 1.0}


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        ("lime", {"samples": 0}, "samples must be a whole number between 10 and 10000; got 0"),
        ("shap", {"evaluations": 0}, "evaluations must be a whole number between 10 and 20000; got 0"),
        ("smoothgrad", {"samples": 0}, "samples must be a whole number between 1 and 500; got 0"),
        ("integrated_gradients", {"steps": -5}, "steps must be a whole number between 2 and 1000; got -5"),
        ("lime", {"samples": 10**9}, "samples must be a whole number between 10 and 10000; got 1000000000"),
        ("lime", {"segmentation": "watershed"}, "segmentation must be one of slic, quickshift, felzenszwalb"),
        ("lime", {"n_segments": 7.5}, "n_segments must be a whole number between 2 and 500; got 7.5"),
        ("smoothgrad", {"noise": math.nan}, "noise must be a number between 0 and 1; got nan"),
        ("smoothgrad", {"noise": math.inf}, "noise must be a number between 0 and 1; got inf"),
        ("smoothgrad", {"samples": True}, "samples must be a whole number between 1 and 500; got True"),
        ("integrated_gradients", {"steps": "10"}, "steps must be a whole number between 2 and 1000; got '10'"),
        ("gradcam", {"layer": "first"}, "layer must be one of last, second last, third last, middle; got 'first'"),
    ],
)
def test_named_bad_values(counting, photo, method, params, expected):
    clf, module = counting
    assert refused(clf, photo, method, target=0, **params).startswith(expected)
    assert module.images == 0


def test_a_long_bad_value_is_cut_short_in_the_message(counting, photo):
    clf, _ = counting
    message = refused(clf, photo, "lime", samples="x" * 10_000)
    assert len(message) < 200 and message.endswith("...")


def test_numpy_numbers_and_whole_floats_are_accepted_in_the_parameter_type():
    assert explainers.get("occlusion").resolve({"window": np.int64(4), "stride": 4.0}, INPUT_SIZE) == {
        "window": 4,
        "stride": 4,
        "refine": 1.0,
    }
    noise = explainers.get("smoothgrad").resolve({"noise": np.float32(0.5), "samples": np.int32(3)})
    assert noise == {"noise": 0.5, "samples": 3} and type(noise["noise"]) is float and type(noise["samples"]) is int


@pytest.mark.parametrize("method", ["deconvnet", "", "LIME", " lime", None, 3, ["lime"], {"lime": 1}])
def test_unknown_method_names_list_every_method(counting, photo, method):
    clf, module = counting
    message = refused(clf, photo, method)
    assert message.startswith("unknown method ")
    assert message.endswith(f"available methods: {', '.join(METHODS)}")
    assert module.images == 0


@pytest.mark.parametrize("seed", [-1, 2**32, 10**400, 1.5, math.nan, "0", None, True, [0]])
def test_a_seed_out_of_range_states_the_range(counting, photo, seed):
    clf, module = counting
    assert refused(clf, photo, "lime", seed=seed).startswith(f"seed must be a whole number {SEED_RANGE}; got ")
    assert module.images == 0


@pytest.mark.parametrize("target", [3, -1, 10**400])
def test_a_target_outside_the_labels_states_the_valid_indices(tiny_clf, photo, target):
    assert "valid indices are 0..2" in refused(tiny_clf, photo, "saliency", target=target)


@pytest.mark.parametrize("contrast", [3, -1])
def test_a_contrast_outside_the_labels_states_the_valid_indices(tiny_clf, photo, contrast):
    message = refused(tiny_clf, photo, "saliency", target=0, contrast=contrast)
    assert message.startswith("contrast:") and "valid indices are 0..2" in message


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"img": np.zeros((16, 16, 3), np.uint8)}, "img must be a PIL image"),
        ({"img": "photo.jpg"}, "img must be a PIL image"),
        ({"clf": torch.nn.Identity()}, "clf must be a models.Classifier"),
        ({"progress": 0.5}, "progress must be a function"),
    ],
)
def test_inputs_of_the_wrong_kind_are_value_errors(tiny_clf, photo, kwargs, expected):
    call = {"clf": tiny_clf, "img": photo, "method": "saliency", **kwargs}
    with pytest.raises(ValueError, match=f"^{expected}"):
        explainers.explain(**call)


# --- evaluate, sanity, stability, cascade_depths, curve, Display --------------------------------------------------


@pytest.fixture
def attribution(tiny_clf, photo) -> explainers.Attribution:
    return explainers.explain(tiny_clf, photo, "saliency", target=1)


@pytest.mark.parametrize("steps", [0, -1, 101, 1.5, math.nan, "20", None, True])
def test_evaluate_refuses_steps_outside_1_to_100(attribution, steps):
    with pytest.raises(ValueError, match=r"^steps must be a whole number between 1 and 100; got "):
        trust.evaluate(attribution, steps=steps)


@pytest.mark.parametrize("fill", ["pink", "", None, 0, ["blur"]])
def test_evaluate_refuses_an_unknown_fill(attribution, fill):
    with pytest.raises(ValueError, match=r"^fill must be one of blur, grey, black; got "):
        trust.evaluate(attribution, fill=fill)


def test_evaluate_accepts_its_bounds(attribution):
    for steps in (1, 100):
        scores = trust.evaluate(attribution, steps=steps)
        assert len(scores["curves"]["deletion"].fractions) == steps + 1


def test_evaluate_refuses_a_map_that_explain_did_not_make(attribution):
    with pytest.raises(ValueError, match="att must be an Attribution"):
        trust.evaluate(attribution.heatmap)
    with pytest.raises(ValueError, match="att must be an Attribution"):
        trust.evaluate(dataclasses.replace(attribution, request=None))  # drawn by hand: nothing to score against
    with pytest.raises(ValueError, match=r"target 4 is outside this model's labels: valid indices are 0\.\.2"):
        trust.evaluate(dataclasses.replace(attribution, target=4))


@pytest.mark.parametrize(("mode", "steps"), [("sideways", 5), ("deletion", 0), ("insertion", 101)])
def test_curve_states_the_valid_modes_and_steps(tiny_clf, photo, attribution, mode, steps):
    pixels = tiny_clf.input_image(photo)
    with pytest.raises(ValueError, match=r"^(mode must be one of deletion, insertion|steps .* between 1 and 100)"):
        curve(tiny_clf, pixels, attribution.heatmap, 0, mode=mode, steps=steps)


def layer_count(clf: models.Classifier) -> int:
    return len(trust.layers_top_down(clf.module))


TOO_DEEP = "one more than the model's layers"


@pytest.mark.parametrize("depths", [[0], [TOO_DEEP], [1, 0], ["1"], [1.5], [True], [], 3, "12"])
def test_sanity_depths_are_refused_before_any_run(counting, photo, depths):
    clf, module = counting
    layers = layer_count(clf)
    if depths == [TOO_DEEP]:
        depths = [layers + 1]
    with pytest.raises(ValueError, match=f"depths must be .*a whole number between 1 and {layers}"):
        trust.sanity_cascade(explainers.Request.make(clf, photo, "saliency", target=0), depths=depths)
    assert module.images == 0


def test_sanity_needs_a_model_with_weights(tiny, photo):
    clf = models.from_module(tiny.TopLeftBrightness(), tiny.labels, INPUT_SIZE, crop=1.0)
    with pytest.raises(ValueError, match="needs a model with weights to randomise"):
        trust.sanity(explainers.Request.make(clf, photo, "saliency", target=0))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"method": "deconvnet"}, "unknown method"),
        ({"seed": -1}, "seed must be a whole number " + SEED_RANGE),
        ({"target": 7}, "valid indices are 0..2"),
        ({"samples": 0}, "samples must be a whole number between 10 and 10000"),
    ],
)
def test_a_request_refuses_what_explain_refuses_before_any_run(counting, photo, kwargs, expected):
    clf, module = counting
    call = {"method": "lime", "target": 0, **kwargs}
    with pytest.raises(ValueError) as info:
        trust.sanity(explainers.Request.make(clf, photo, **call))
    assert expected in str(info.value)
    assert module.images == 0


@pytest.mark.parametrize("seeds", [(1, 1), (1,), (), 5, "01", (0, -1), (0, 1.5), tuple(range(21)), iter((0, 1))])
@pytest.mark.parametrize("method", ["lime", "saliency"])  # stochastic or not: the same refusals
def test_stability_refuses_bad_seeds_before_any_run(counting, photo, method, seeds):
    clf, module = counting
    with pytest.raises(ValueError, match=r"seeds must be a list of 2 to 20 seeds|two different seeds|seed must be"):
        trust.stability(explainers.Request.make(clf, photo, method, target=0), seeds=seeds)
    assert module.images == 0


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"target": 3}, "valid indices are 0..2"),
        ({"target": 0, "contrast": 9}, "contrast: target 9 is outside"),
        ({"target": 0, "contrast": 0}, "must differ from the target"),
        ({"target": 0, "window": 0}, "window must be a whole number between 1 and 16"),
    ],
)
def test_a_request_of_a_deterministic_method_checks_its_inputs(tiny_clf, photo, kwargs, expected):
    with pytest.raises(ValueError) as info:
        trust.stability(explainers.Request.make(tiny_clf, photo, "occlusion", **kwargs))
    assert expected in str(info.value)
    assert trust.stability(explainers.Request.make(tiny_clf, photo, "occlusion", target=0, contrast=1)) == 1.0


@pytest.mark.parametrize("steps", [0, 101, 2.5, "4"])
def test_cascade_depths_steps_state_the_range(tiny_clf, steps):
    with pytest.raises(ValueError, match=r"^steps must be a whole number between 1 and 100"):
        trust.cascade_depths(tiny_clf, steps)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"percentile": 100.5}, "percentile must be a number between 0 and 100"),
        ({"percentile": -1}, "percentile must be a number between 0 and 100"),
        ({"percentile": math.nan}, "percentile must be a number between 0 and 100"),
        ({"percentile": "99"}, "percentile must be a number between 0 and 100"),
        ({"opacity": 1.5}, "opacity must be a number between 0 and 1"),
        ({"opacity": None}, "opacity must be a number between 0 and 1"),
        ({"shared": "yes"}, "shared must be True or False"),
    ],
)
def test_display_options_state_their_range(kwargs, expected):
    with pytest.raises(ValueError, match=f"^{expected}"):
        Display(**kwargs)
    assert Display(percentile=100, opacity=0) == Display(percentile=100.0, opacity=0.0)
