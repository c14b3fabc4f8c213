"""Issue 29: an upload whose forward hangs is refused within the check's short limit (CHECK_SECONDS, 20 s), not
after the 120 s a call gets; a slow but working model passes the check, and its long calls get a limit scaled
by the forward pass the check timed (`worker.call_limit`), so they are not refused."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image
from torch import nn

from whylabel import models
from whylabel.models import worker
from whylabel.models.worker import WorkerError

LABELS = b"red\ngreen\nblue\n"
SIZE = 32
SCALE = (1.0, 2.0, 3.0)
PASS = 0.2
"""Seconds the slow model's forward pass takes per image (its loop is sized to this on the test's machine)."""
STEPS = 20_000
"""Loop steps timed to size the slow model's loop."""
pytestmark = pytest.mark.filterwarnings("ignore:.torch.jit.* is deprecated:DeprecationWarning")


class Hang(nn.Module):
    """Never returns: a loop on a tensor condition that stays true (a float32 stops growing at 2**24)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        count = x.sum() * 0
        while bool(count >= 0):
            count = count + 1
        return x.mean(dim=(2, 3)) + count


class Slow(nn.Module):
    """The channel means times (1, 2, 3), after `steps` scripted additions per image; it never returns on an
    all-white image (input mean above 0.99)."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.register_buffer("scale", torch.tensor(SCALE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        busy = torch.zeros(1)
        for _ in range(x.shape[0] * self.steps):
            busy = busy + 1.0
        if bool(x.mean() > 0.99):
            while bool(busy >= 0):
                busy = busy + 1.0
        return x.mean(dim=(2, 3)) * self.scale + (busy - busy)


def script(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module.eval()), buffer)
    return buffer.getvalue()


def upload(module: nn.Module) -> models.Classifier:
    return models.load_user_model(script(module), LABELS, "mine", input_size=SIZE, mean=(0, 0, 0), std=(1, 1, 1),
                                  crop=1.0)  # fmt: skip


def steps_for(seconds: float) -> int:
    """Loop steps that make the slow model's pass on one image take about `seconds` here."""
    scripted = torch.jit.script(Slow(STEPS).eval())
    x = torch.full((1, 3, SIZE, SIZE), 0.5)
    for _ in range(2):  # TorchScript profiles the first runs
        scripted(x)
    began = time.perf_counter()
    scripted(x)
    return max(int(STEPS * seconds / (time.perf_counter() - began)), 1)


class Timed:
    """Records when each request of a kind reaches a worker and when it is answered or refused, and its worker."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, op: str) -> None:
        self.op, self.spans, self.pids = op, list[float](), list[int]()
        ask = worker.Worker.ask

        def timed(this: worker.Worker, op: str, *args: Any, **kwargs: Any) -> Any:
            if op != self.op:
                return ask(this, op, *args, **kwargs)
            assert this.process is not None
            self.pids.append(this.process.pid)
            began = time.monotonic()
            try:
                return ask(this, op, *args, **kwargs)
            finally:
                self.spans.append(time.monotonic() - began)

        monkeypatch.setattr(worker.Worker, "ask", timed)


def refused(load: Any) -> str:
    with pytest.raises((models.ModelError, WorkerError)) as info:
        load()
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def running(pid: int) -> bool:
    """Whether a process exists and has not ended (a zombie waiting to be reaped has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# --- the limits and their settings -------------------------------------------------------------------------------

READ = "from whylabel.models import worker as w; print(w.CHECK_SECONDS, w.CALL_SECONDS, w.MAX_CALL_SECONDS)"
SETTINGS = ("WHYLABEL_CHECK_SECONDS", "WHYLABEL_WORKER_SECONDS", "WHYLABEL_WORKER_MAX_SECONDS")


def limits_in_a_fresh_process(**settings: str) -> list[float]:
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS}
    out = subprocess.run([sys.executable, "-c", READ], env={**env, **settings}, capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    return [float(value) for value in out.stdout.split()]


def test_the_default_limits_are_20_120_and_1800_s_and_each_has_its_environment_variable():
    assert limits_in_a_fresh_process() == [20.0, 120.0, 1800.0]
    settings = dict(zip(SETTINGS, ("7", "30", "600"), strict=True))
    assert limits_in_a_fresh_process(**settings) == [7.0, 30.0, 600.0]


def test_a_calls_limit_scales_with_its_passes_and_the_measured_pass_between_the_floor_and_the_cap(monkeypatch):
    monkeypatch.setattr(worker, "CALL_SECONDS", 120.0)
    monkeypatch.setattr(worker, "MAX_CALL_SECONDS", 1800.0)
    assert worker.SLACK == 4 and worker.RUN_PASSES == 1000
    assert worker.call_limit(0.001, 16) == 120  # a small model: the floor
    assert worker.call_limit(0.5, 16) == 120  # one call of a LIME run on a 0.5 s model: 8 s of work
    assert worker.call_limit(0.5, 500) == 1000  # 4 x 500 x 0.5
    assert worker.call_limit(0.5, 1000) == 1800  # a whole run in the worker: the cap
    monkeypatch.setattr(worker, "CHECK_SECONDS", 20.0)
    assert worker.check_limit() == 20
    monkeypatch.setattr(worker, "CALL_SECONDS", 3.0)
    assert worker.check_limit() == 3  # the check never gets more than any call

    held = worker.Worker(("ping", ()))
    assert held.limit("logits", ("user", np.zeros((64, SIZE, SIZE, 3)))) == 3  # nothing measured yet
    held.pass_seconds = 0.5
    assert held.limit("logits", ("user", np.zeros((64, SIZE, SIZE, 3)))) == 128  # 4 x 64 x 0.5
    assert held.limit("engine_logits", ("user", np.zeros((16, SIZE, SIZE, 3)))) == 32
    assert held.limit("logits", ("user", np.zeros((SIZE, SIZE, 3)))) == 3  # one image: 2 s, the floor
    assert held.limit("check", ("user",)) == 6  # 4 x 3 passes x 0.5
    assert held.limit("estimates", ("user", "smoothgrad")) == 1800  # a whole method: RUN_PASSES, capped


def test_a_setup_reply_gives_a_pass_time_only_when_it_is_a_plausible_number():
    assert worker.measured({"pass_seconds": 0.25}) == 0.25
    for reply in ({"pass_seconds": float("nan")}, {"pass_seconds": -1.0}, {"pass_seconds": "1"}, {}, None, 3.0):
        assert worker.measured(reply) is None


# --- a hang while being checked -----------------------------------------------------------------------------------


def test_a_32_px_model_that_hangs_is_refused_within_the_default_20_s_and_its_worker_killed(monkeypatch):
    monkeypatch.setattr(worker, "CHECK_SECONDS", 20.0)  # the default (see above), whatever this run's settings
    monkeypatch.setattr(worker, "CALL_SECONDS", 120.0)
    load = Timed(monkeypatch, "load")
    began = time.monotonic()
    message = refused(lambda: upload(Hang()))
    took = time.monotonic() - began
    assert message == (
        "The model did not answer within 20 s while being checked (loading it and running it on grey images); "
        "it was stopped."
    )
    (span,) = load.spans
    assert 20 <= span < 22, span  # the load-and-check step itself
    assert took < 20 + 25, took  # and the worker's start (importing torch) around it, not 120 s
    assert not running(load.pids[0])


def test_a_check_limit_set_lower_refuses_sooner(monkeypatch):
    monkeypatch.setattr(worker, "CHECK_SECONDS", 2.0)
    monkeypatch.setattr(worker, "CALL_SECONDS", 120.0)
    load = Timed(monkeypatch, "load")
    message = refused(lambda: upload(Hang()))
    assert message.startswith("The model did not answer within 2 s while being checked"), message
    (span,) = load.spans
    assert 2 <= span < 4, span


# --- a slow model that works --------------------------------------------------------------------------------------


def test_a_slow_model_passes_the_check_and_a_call_longer_than_it_completes_under_its_scaled_limit(monkeypatch):
    monkeypatch.setattr(worker, "CHECK_SECONDS", 4.0)  # the load and 3 passes of 0.2 s (the first profiled) fit
    clf = upload(Slow(steps_for(PASS)))
    assert clf.worker is not None and clf.worker.pass_seconds is not None
    measured = clf.worker.pass_seconds
    assert PASS / 3 < measured < PASS * 3, measured

    monkeypatch.setattr(worker, "CALL_SECONDS", 1.0)  # the floor alone would stop a call of 32 images
    pixels = np.random.default_rng(0).integers(0, 256, (32, SIZE, SIZE, 3), dtype=np.uint8)
    assert clf.worker.limit("logits", ("user", pixels)) == pytest.approx(worker.SLACK * 32 * measured)
    began = time.monotonic()
    got = clf.logits(pixels)
    took = time.monotonic() - began
    assert took > worker.CHECK_SECONDS, took  # longer than the check was allowed, and not refused
    expected = pixels.mean(axis=(1, 2)) / 255 * np.array(SCALE)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
    assert clf.worker.starts == 1

    # A hang after the check is still stopped, at the limit its call gets: 4 x 1 pass x the measured pass.
    white = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    limit = max(worker.SLACK * measured, worker.CALL_SECONDS)
    began = time.monotonic()
    message = refused(lambda: clf.predict(white))
    took = time.monotonic() - began
    assert message == f"The model did not answer within {worker.show(limit)} s (logits); it was stopped."
    assert limit <= took < limit + 2, (limit, took)


def endless_onnx() -> bytes:
    """An ONNX graph whose Loop has no trip count and a condition that stays true: the channel means, never."""

    def value(name: str, kind: int, shape: list[Any]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, kind, shape)

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond"], ["cond_out"]), helper.make_node("Add", ["count", "one"], ["next"])],
        "body",
        [value("i", TensorProto.INT64, []), value("cond", TensorProto.BOOL, []), value("count", TensorProto.FLOAT, [])],
        [value("cond_out", TensorProto.BOOL, []), value("next", TensorProto.FLOAT, [])],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["means"], axes=[2, 3], keepdims=0),
        helper.make_node("Loop", ["", "true", "zero"], ["count"], body=body),
        helper.make_node("Mul", ["count", "zero"], ["nothing"]),
        helper.make_node("Add", ["means", "nothing"], ["y"]),
    ]
    constants = [
        helper.make_tensor("true", TensorProto.BOOL, [], [True]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
    ]
    graph = helper.make_graph(
        nodes,
        "endless",
        [value("x", TensorProto.FLOAT, ["n", 3, SIZE, SIZE])],
        [value("y", TensorProto.FLOAT, ["n", 3])],
        constants,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_an_onnx_graph_that_never_ends_is_refused_within_the_check_limit_too(monkeypatch):
    monkeypatch.setattr(worker, "CHECK_SECONDS", 2.0)
    monkeypatch.setattr(worker, "CALL_SECONDS", 120.0)
    load = Timed(monkeypatch, "load_onnx")
    message = refused(lambda: models.load_user_model(endless_onnx(), LABELS, "endless.onnx", mean=(0, 0, 0),
                                                     std=(1, 1, 1), crop=1.0))  # fmt: skip
    assert message.startswith("The model did not answer within 2 s while being checked"), message
    (span,) = load.spans
    assert 2 <= span < 4, span
