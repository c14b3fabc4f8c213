"""The fast forward engine: onnxruntime only where it matches torch, torch otherwise, batch size calibrated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import models
from models import engine
from models.engine import BATCH_SIZES, Engine, EngineError


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
    real = engine.onnx_run
    monkeypatch.setattr(engine, "onnx_run", lambda model, example: off_by(real(model, example), 0.01))
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0)
    images = pixels(5, 16)

    fast = clf.engine()

    assert fast.backend == "torch"
    assert "differ" in fast.note
    assert np.array_equal(fast.logits(images), torch_logits(clf, images))


def test_forcing_onnxruntime_reports_why_it_cannot_be_used(tiny, monkeypatch):
    real = engine.onnx_run
    monkeypatch.setattr(engine, "onnx_run", lambda model, example: off_by(real(model, example), 0.01))
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


def test_a_model_that_cannot_be_exported_falls_back_to_torch(tiny, monkeypatch):
    def refuse(*_args, **_kwargs):
        raise RuntimeError("unsupported operator")

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
