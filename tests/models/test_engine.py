"""The fast forward engine: onnxruntime only where it matches torch, torch otherwise, batch size calibrated."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from whylabel import explainers, models
from whylabel.models import engine
from whylabel.models.engine import BATCH_SIZES, Engine, EngineError


def pixels(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def off_by(run, delta: float):
    return lambda x: run(x) + delta


def torch_logits(clf: models.Classifier, images: np.ndarray) -> np.ndarray:
    return clf.logits(images).numpy()


class ValueBranch(torch.nn.Module):
    """Python control flow on a tensor value: a traced graph would keep only the branch it saw."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        return out if float(x.mean()) > 0 else -out


def test_auto_uses_onnxruntime_and_matches_torch(tiny):
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0)
    images = pixels(11, 16)  # not a multiple of any batch size above 1

    fast = clf.engine()

    assert fast.backend == "onnxruntime", fast.note
    assert np.allclose(fast.logits(images), torch_logits(clf, images), rtol=engine.RTOL, atol=engine.ATOL)
    assert fast.logits(images).shape == (11, len(tiny.labels))


def test_the_real_model_runs_on_onnxruntime_with_torch_outputs(lite0):
    photo = lite0.input_image(models.sample_image("chelsea (cat)"))
    images = np.stack([photo, photo[::-1], np.full_like(photo, 128)])

    fast = lite0.engine()

    assert fast.backend == "onnxruntime", fast.note
    assert np.allclose(fast.logits(images), torch_logits(lite0, images), rtol=engine.RTOL, atol=engine.ATOL)
    assert fast.logits(images[:1]).argmax() == lite0.predict(models.sample_image("chelsea (cat)")).top[0][0]


def test_calibration_picks_the_fastest_measured_batch_size(tiny_clf):
    fast = tiny_clf.engine()

    assert set(fast.rates) == set(BATCH_SIZES)
    assert fast.batch_size == max(fast.rates, key=lambda size: fast.rates[size])
    assert fast.throughput == fast.rates[fast.batch_size] > 0


def test_a_given_batch_size_skips_the_calibration(tiny):
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0, batch_size=4)

    fast = clf.engine()

    assert (fast.batch_size, list(fast.rates)) == (4, [4])
    assert fast.throughput == fast.rates[4] > 0


@pytest.mark.parametrize("size", [0, -1, 2.5, True, 5000])
def test_a_bad_batch_size_is_refused(tiny, size):
    with pytest.raises(ValueError, match="batch_size must be a whole number from 1 to 1024"):
        models.from_module(tiny.TinyConv(), tiny.labels, 16, batch_size=size)


def test_the_engine_is_built_once_and_shared(tiny_clf):
    assert tiny_clf.engine() is tiny_clf.engine()


def test_torch_can_be_forced(tiny, monkeypatch):
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0, backend="torch")
    monkeypatch.setenv("WHYLABEL_BACKEND", "onnxruntime")  # the classifier's own choice wins

    assert clf.engine().backend == "torch"


def test_the_environment_picks_the_backend_when_the_classifier_does_not(tiny, monkeypatch):
    monkeypatch.setenv("WHYLABEL_BACKEND", "torch")
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0)

    assert clf.engine().backend == "torch"


def test_an_unknown_backend_is_refused(tiny):
    with pytest.raises(ValueError, match="auto, onnxruntime, torch"):
        models.from_module(tiny.TinyConv(), tiny.labels, 16, backend="tensorrt")


def test_outputs_that_differ_from_torch_fall_back_to_torch(tiny, monkeypatch):
    real = engine.onnx_session
    monkeypatch.setattr(engine, "onnx_session", lambda model: off_by(real(model), 0.01))
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0)
    images = pixels(5, 16)

    fast = clf.engine()

    assert fast.backend == "torch"
    assert "differ" in fast.note
    assert np.array_equal(fast.logits(images), torch_logits(clf, images))


def test_forcing_onnxruntime_reports_why_it_cannot_be_used(tiny, monkeypatch):
    real = engine.onnx_session
    monkeypatch.setattr(engine, "onnx_session", lambda model: off_by(real(model), 0.01))
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0, backend="onnxruntime")

    with pytest.raises(EngineError, match="differ"):
        clf.engine()


def test_a_model_with_value_dependent_python_branches_stays_on_torch(tiny):
    clf = models.from_module(ValueBranch(tiny.TinyConv()), tiny.labels, 16, crop=1.0)
    bright, dark = np.full((1, 16, 16, 3), 250, np.uint8), np.full((1, 16, 16, 3), 5, np.uint8)

    fast = clf.engine()

    assert fast.backend == "torch"
    assert "traced graph" in fast.note
    for images in (bright, dark):  # both branches, as torch computes them
        assert np.array_equal(fast.logits(images), torch_logits(clf, images))


def test_a_model_that_cannot_be_exported_falls_back_to_torch(tiny, monkeypatch, tmp_path):
    def refuse(*_args, **_kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setenv("WHYLABEL_CACHE", str(tmp_path))  # an empty cache: no earlier export of this model to load
    monkeypatch.setattr(torch.onnx, "export", refuse)
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0)

    fast = clf.engine()

    assert fast.backend == "torch"
    assert "unsupported operator" in fast.note


def test_a_model_that_always_raises_raises_from_the_engine(tiny):
    clf = models.from_module(tiny.Flaky(tiny.TinyConv(), fail_on=1), tiny.labels, 16, crop=1.0, backend="torch")

    with pytest.raises(RuntimeError, match="boom"):
        clf.engine()


def test_logits_of_uint8_and_float_pixels_agree(tiny_clf):
    images = pixels(3, 16)
    fast = tiny_clf.engine()

    assert np.array_equal(fast.logits(images), fast.logits(images.astype(np.float32)))


def test_engine_repr_names_backend_and_batch_size():
    fast = Engine(backend="torch", batch_size=4, throughput=10.0, note="n", run=lambda x: x)

    assert "torch" in repr(fast) and "batch_size=4" in repr(fast)


# --- the engine changes speed, not maps: the methods that run through it ----------------------------------------

ENGINE_METHODS = [m for m in explainers.available() if not explainers.get(m).runs_module]
"""The perturbation methods: gradient methods run the torch module itself and never touch the engine."""
SMALL = {"occlusion": {"window": 5, "stride": 2}, "lime": {"samples": 20, "n_segments": 6}, "shap": {"evaluations": 64}}
"""Settings small enough for a 16-px model (a method without an entry runs at its defaults), and large enough that
grouping a method's images by the engine's batch size changes occlusion's and SHAP's maps (on the linear model)."""


def spy_on_engine(monkeypatch, clf: models.Classifier) -> tuple[Engine, list[int]]:
    """The classifier's engine, from now on recording the size of every batch its backend runs."""
    real, sizes = clf.engine(), []
    spy = dataclasses.replace(real, run=lambda x: sizes.append(len(x)) or real.run(x))
    monkeypatch.setattr(clf, "engine", lambda: spy)
    return spy, sizes


def engine_map(clf: models.Classifier, method: str) -> np.ndarray:
    img = np.random.default_rng(5).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    return explainers.explain(clf, Image.fromarray(img), method, target=1, **SMALL.get(method, {})).heatmap


def test_some_methods_run_through_the_engine():
    assert ENGINE_METHODS  # else the two tests below would check nothing


@pytest.mark.parametrize("method", ENGINE_METHODS)
def test_onnxruntime_and_torch_give_the_same_map(tiny, monkeypatch, method):
    maps, batches = {}, {}
    for backend in ("onnxruntime", "torch"):
        clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0, backend=backend, batch_size=4)
        spy, batches[backend] = spy_on_engine(monkeypatch, clf)
        assert spy.backend == backend, spy.note
        maps[backend] = engine_map(clf, method)

    assert batches["onnxruntime"] and batches["torch"]  # each backend ran the method's images
    assert max(batches["onnxruntime"]) <= 4 and max(batches["torch"]) <= 4
    scale = float(np.abs(maps["torch"]).max())
    np.testing.assert_allclose(maps["onnxruntime"], maps["torch"], rtol=1e-3, atol=1e-4 * scale)


@pytest.mark.parametrize("method", ENGINE_METHODS)
def test_the_engine_batch_size_leaves_the_map_byte_identical(tiny, monkeypatch, method):
    """The batch size is calibrated per process, so a map that depended on it would not be reproducible."""
    maps = []
    for size in (1, 4, 16):
        clf = models.from_module(tiny.Linear(16), tiny.labels, 16, crop=1.0, batch_size=size)
        spy, batches = spy_on_engine(monkeypatch, clf)
        maps.append(engine_map(clf, method).tobytes())
        assert spy.batch_size == size
        # the engine ran, in batches of that size (a repeated image is run once, so a call may fill fewer)
        assert batches and size // 2 < max(batches) <= size

    assert maps[0] == maps[1] == maps[2]
