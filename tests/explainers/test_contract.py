"""The contract every registered method keeps, checked on a tiny CNN with tiny settings."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from whylabel import explainers, models
from whylabel.explainers import registry
from whylabel.explainers.base import Explainer, Job
from whylabel.explainers.hooks import hook_ids, no_leaked_hooks

INPUT_SIZE = 16
METHODS = explainers.available()
TINY_PARAMS: dict[str, dict[str, Any]] = {
    "saliency": {},
    "occlusion": {"window": 4, "stride": 4},
    "lime": {"samples": 20, "n_segments": 6},
    "shap": {"evaluations": 20},
    "integrated_gradients": {"steps": 8},
    "smoothgrad": {"samples": 4},
    "gradcam": {},
    "guided_backprop": {},
}
"""Settings small enough for a 16-px model; every registered method must have an entry."""


def test_tiny_params_cover_every_registered_method():
    assert set(TINY_PARAMS) == set(explainers.available())


def test_available_methods_in_dashboard_order():
    assert explainers.available() == [
        *("saliency", "occlusion", "lime", "shap"),
        *("integrated_gradients", "smoothgrad", "gradcam", "guided_backprop"),
    ]
    assert [m for m in explainers.available() if explainers.get(m).default_on] == [
        "saliency",
        "occlusion",
        "lime",
        "shap",
    ]


@pytest.fixture
def photo(noise_image) -> Image.Image:
    """Not square and not the model's size, so the map must follow the model's view, not the file."""
    return noise_image(24, 20, seed=5)


def run(clf, img, method, **kwargs) -> explainers.Attribution:
    return explainers.explain(clf, img, method, **{**TINY_PARAMS[method], **kwargs})


# --- the map ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_map_is_finite_float32_aligned_with_the_model_view(tiny_clf, photo, method):
    att = run(tiny_clf, photo, method, target=1)

    assert att.method == method
    assert (att.target, att.label) == (1, "dog")
    assert att.heatmap.dtype == np.float32
    assert att.heatmap.shape == tiny_clf.input_image(photo).shape[:2] == (INPUT_SIZE, INPUT_SIZE)
    assert np.isfinite(att.heatmap).all()
    assert np.any(att.heatmap != 0)
    assert isinstance(att.seconds, float) and 0 <= att.seconds < 60
    assert att.signed == explainers.get(method).signed
    assert att.score == explainers.get(method).score


@pytest.mark.parametrize("method", METHODS)
def test_default_target_is_the_top_class_and_labels_work(tiny_clf, photo, method):
    top1 = tiny_clf.predict(photo, k=1).top[0][0]
    assert run(tiny_clf, photo, method).target == top1
    assert run(tiny_clf, photo, method, target="fish").target == 2


@pytest.mark.parametrize("method", METHODS)
def test_a_contrast_class_gives_a_different_finite_map(tiny_clf, photo, method):
    plain = run(tiny_clf, photo, method, target=1)

    att = run(tiny_clf, photo, method, target=1, contrast="cat")

    assert (att.target, att.contrast, att.contrast_label) == (1, 0, "cat")
    assert att.heatmap.shape == plain.heatmap.shape and np.isfinite(att.heatmap).all()
    assert not np.allclose(att.heatmap, plain.heatmap)


@pytest.mark.parametrize("method", METHODS)
def test_params_hold_every_resolved_value_and_the_seed(tiny_clf, photo, method):
    cls = explainers.get(method)
    given = TINY_PARAMS[method]

    att = run(tiny_clf, photo, method, target=0, seed=7)

    assert set(att.params) == {p.name for p in cls.params} | {"seed"}
    assert att.params["seed"] == 7
    for p in cls.params:
        expected = given.get(p.name, p.default_for(INPUT_SIZE))
        assert att.params[p.name] == expected
        assert type(att.params[p.name]) is type(p.default)


def test_length_defaults_are_scaled_to_the_input_size(tiny_clf, photo):
    att = explainers.explain(tiny_clf, photo, "occlusion", target=0)
    assert att.params["window"] == round(16 * INPUT_SIZE / 224)
    assert att.params["stride"] == max(1, round(16 * INPUT_SIZE / 224))


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_map(tiny_clf, photo, method):
    first = run(tiny_clf, photo, method, target=2, seed=3)
    second = run(tiny_clf, photo, method, target=2, seed=3)
    assert np.array_equal(first.heatmap, second.heatmap)


@pytest.mark.parametrize("method", [m for m in METHODS if explainers.get(m).stochastic])
def test_stochastic_methods_depend_on_the_seed(tiny_clf, photo, method):
    maps = [run(tiny_clf, photo, method, target=2, seed=seed).heatmap for seed in (0, 1, 2)]
    assert not (np.array_equal(maps[0], maps[1]) and np.array_equal(maps[0], maps[2]))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", [(INPUT_SIZE, INPUT_SIZE), (24, 20)])
def test_the_input_image_is_left_unchanged(tiny_clf, noise_image, method, size):
    img = noise_image(*size, seed=9)
    before = (img.mode, img.size, img.tobytes())
    view_before = tiny_clf.input_image(img)

    run(tiny_clf, img, method, target=0)

    assert (img.mode, img.size, img.tobytes()) == before
    np.testing.assert_array_equal(tiny_clf.input_image(img), view_before)


@pytest.mark.parametrize("method", METHODS)
def test_progress_rises_to_one(tiny_clf, photo, method):
    seen: list[float] = []
    run(tiny_clf, photo, method, target=0, progress=seen.append)
    assert seen
    assert all(0 <= value <= 1 for value in seen)
    assert seen == sorted(seen)
    assert seen[-1] == 1.0


# --- hooks -----------------------------------------------------------------------------------------------------


def add_user_hooks(module: torch.nn.Module) -> list[int]:
    """Hooks the caller put there on purpose; explaining must leave them alone. Returns a call log."""
    log: list[int] = []
    module.conv.register_forward_hook(lambda *_: log.append(1))
    module.head.register_forward_pre_hook(lambda *_: None)
    return log


@pytest.mark.parametrize("method", METHODS)
def test_no_hook_added_or_removed(tiny, photo, method):
    inner = tiny.TinyConv()
    log = add_user_hooks(inner)
    clf = models.from_module(inner, tiny.labels, INPUT_SIZE, crop=1.0)
    before = hook_ids(clf.module)
    assert before

    run(clf, photo, method, target=0)

    assert hook_ids(clf.module) == before
    assert log  # the caller's hook still runs


@pytest.mark.parametrize("method", METHODS)
def test_no_hook_left_after_the_model_raises(tiny, photo, method):
    inner = tiny.TinyConv()
    add_user_hooks(inner)
    flaky = tiny.Flaky(inner, fail_on=0)
    clf = models.from_module(flaky, tiny.labels, INPUT_SIZE, crop=1.0, backend="torch")  # the module runs every pass
    clf.engine()  # calibrated before the fault is armed
    flaky.calls, flaky.fail_on = 0, 1
    before = hook_ids(clf.module)

    with pytest.raises(RuntimeError, match="boom"):
        run(clf, photo, method, target=0)

    assert flaky.calls == 1
    assert hook_ids(clf.module) == before
    assert run(clf, photo, method, target=0).heatmap.shape == (INPUT_SIZE, INPUT_SIZE)  # still usable


class Hooky(Explainer):
    """A method that adds every kind of hook and never removes them."""

    name = "hooky"
    title = paper = paper_url = how_to_read = "test only"

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        module = job.clf.module
        for sub in module.modules():
            sub.register_forward_hook(lambda *_: None)
            sub.register_forward_hook(lambda *_, **__: None, with_kwargs=True, always_call=True)
            sub.register_forward_pre_hook(lambda *_: None)
            sub.register_forward_pre_hook(lambda *_, **__: None, with_kwargs=True)
            sub.register_full_backward_hook(lambda *_: None)
            sub.register_full_backward_pre_hook(lambda *_: None)
        x = job.tensor().requires_grad_(True)
        module(x)[0, job.target].backward()
        return np.zeros(job.pixels.shape[:2], dtype=np.float32), {}


@pytest.mark.parametrize("fail_on", [None, 1])
def test_hooks_a_method_adds_are_removed_even_when_the_model_raises(monkeypatch, tiny, photo, fail_on):
    monkeypatch.setitem(registry.REGISTRY, "hooky", Hooky)
    inner = tiny.TinyConv()
    add_user_hooks(inner)
    module = inner if fail_on is None else tiny.Flaky(inner, fail_on=fail_on)
    clf = models.from_module(module, tiny.labels, INPUT_SIZE, crop=1.0)
    before = hook_ids(clf.module)

    if fail_on is None:
        explainers.explain(clf, photo, "hooky", target=0)
    else:
        with pytest.raises(RuntimeError, match="boom"):
            explainers.explain(clf, photo, "hooky", target=0)

    assert hook_ids(clf.module) == before


def test_no_leaked_hooks_sees_the_hooks_it_removes(tiny):
    module = tiny.TinyConv()
    with no_leaked_hooks(module):
        module.conv.register_forward_hook(lambda *_: None)
        module.register_full_backward_hook(lambda *_: None)
        assert len(hook_ids(module)) == 2
    assert hook_ids(module) == {}


# --- refusals --------------------------------------------------------------------------------------------------


def junk_params() -> list:
    """For every registered parameter: values of the wrong type, out of range, or not among the choices."""
    cases = []
    for method in METHODS:
        cls = explainers.get(method)
        valid = ", ".join(p.name for p in cls.params) or "none"
        cases.append(pytest.param(method, {"no_such_param": 1}, [valid], id=f"{method}-unknown-name"))
        for p in cls.params:
            if p.choices:
                bad: list[Any] = ["nope", p.choices[0].upper(), 3, None, ""]
                expect = list(p.choices)
            else:
                bad = ["3", None, True, [1], math.nan, math.inf, p.low - 1, p.upper(INPUT_SIZE) + 1]
                if p.kind() is int:
                    bad.append(p.low + 0.5)
                expect = [p.name]
            cases += [pytest.param(method, {p.name: v}, expect, id=f"{method}-{p.name}={v!r}") for v in bad]
    return cases


@pytest.mark.parametrize(("method", "params", "expect"), junk_params())
def test_junk_params_are_value_errors(tiny, photo, method, params, expect):
    counting = tiny.Counting(tiny.TinyConv())
    clf = models.from_module(counting, tiny.labels, INPUT_SIZE, crop=1.0)

    with pytest.raises(ValueError) as info:
        explainers.explain(clf, photo, method, target=0, **params)

    for word in expect:
        assert word in str(info.value)
    assert counting.images == 0  # refused before running the model


def test_occlusion_refuses_a_stride_larger_than_the_window(tiny_clf, photo):
    with pytest.raises(ValueError, match="stride"):
        explainers.explain(tiny_clf, photo, "occlusion", window=2, stride=3)
    # A window as large as the image fits once, whatever the stride.
    att = explainers.explain(tiny_clf, photo, "occlusion", window=INPUT_SIZE, stride=INPUT_SIZE)
    assert np.isfinite(att.heatmap).all()


def test_unknown_method_lists_the_available_ones(tiny_clf, photo):
    with pytest.raises(ValueError, match="deconvnet") as info:
        explainers.explain(tiny_clf, photo, "deconvnet")
    for method in explainers.available():
        assert method in str(info.value)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("target", [3, -1, 1000, "horse", True, 1.0])
def test_target_outside_the_labels_is_a_value_error(tiny_clf, photo, method, target):
    with pytest.raises(ValueError, match=r"target|label"):
        run(tiny_clf, photo, method, target=target)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [-1, 1.5, "a", None, True, 2**32])
def test_bad_seed_is_a_value_error(tiny_clf, photo, method, seed):
    with pytest.raises(ValueError, match="seed"):
        run(tiny_clf, photo, method, target=0, seed=seed)


@pytest.mark.parametrize("seed", [0, 2**32 - 1, np.int64(5)])
def test_seed_limits_are_accepted(tiny_clf, photo, seed):
    assert explainers.explain(tiny_clf, photo, "saliency", target=0, seed=seed).params["seed"] == seed


# --- the fast engine changes speed, not results (the per-method invariance tests are in tests/models/test_engine.py,
# run only for the methods that use the engine, and check that it ran) ---------------------------------------------


@pytest.mark.parametrize(
    ("model", "image", "method"),
    [("efficientnet_lite0", "coffee", "shap"), ("mnist_cnn", "mnist digit 7", "occlusion")],
)
def test_real_models_maps_do_not_depend_on_the_engine_batch_size(model, image, method):
    """Both used to: SHAP expands its partition tree a batch at a time (lite0, batches of 4 and 16 differed),
    and Captum's occlusion sums each call's drops in float32 (mnist, batches of 1, 4 and 16 differed). The tiny
    model above is too small to show either."""
    clf, img = models.load(model), models.sample_image(image)
    maps = [
        explainers.explain(dataclasses.replace(clf, batch_size=size), img, method).heatmap.tobytes()
        for size in (1, 4, 16)
    ]

    assert maps[0] == maps[1] == maps[2]


def test_warm_up_runs_the_numba_code_paths_without_error():
    explainers.warm_up()  # the dashboard runs it in a background thread at start-up
