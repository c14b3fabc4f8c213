"""Fast forward passes for perturbation methods: onnxruntime where it matches torch, else torch.

Perturbation methods (occlusion, LIME, SHAP) spend nearly all their time in forward passes of many
images and need no gradients. On this kind of CPU, onnxruntime runs EfficientNet-Lite0 about 4-5x
faster than eager PyTorch, so a model is exported to ONNX once, in memory, and its outputs are
checked against torch on the same inputs. Any failure (an export error, a missing package, outputs
that differ) falls back to torch, and the engine says why. The batch size is calibrated per model:
small batches are often fastest on a CPU, and the best size differs between models and backends.
Gradient methods keep using the torch module.
"""

from __future__ import annotations

import io
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from whylabel.models.locks import module_lock
from whylabel.store import engines as engine_store

if TYPE_CHECKING:
    from whylabel.models.classifier import Classifier


BACKENDS = ("auto", "onnxruntime", "torch")
BATCH_SIZES = (1, 2, 4, 8, 16, 32)
RTOL, ATOL = 1e-3, 1e-4
"""How close onnxruntime's logits must be to torch's for the fast path to be used."""
CALIBRATION_SECONDS = 0.2
"""Time spent timing each candidate batch size (at least 3 runs each)."""

Run = Callable[[np.ndarray], np.ndarray]


class PixelInput(torch.nn.Module):
    """A classifier behind its own normalisation: float (N, H, W, 3) pixels in 0..255 to logits.

    Normalising inside the graph keeps torch operations out of the loop between forward passes: on two
    cores, torch's threads and onnxruntime's (which spin briefly after each run, to start the next one
    sooner) compete, and a torch op between two runs can take ten times longer.
    """

    def __init__(self, module: torch.nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.module = module
        std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std_t))
        self.register_buffer("shift", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) / std_t)

    scale: torch.Tensor
    shift: torch.Tensor

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.module(pixels.permute(0, 3, 1, 2) * self.scale - self.shift)


class EngineError(RuntimeError):
    """The fast backend could not be built or does not match torch."""


@dataclass(frozen=True)
class Engine:
    """Runs float32 (N, H, W, 3) pixels (0..255, the model view) to float32 logits, `batch_size` at a time."""

    backend: str
    batch_size: int
    throughput: float
    """Images per second at `batch_size`, as measured by the calibration."""
    note: str
    run: Run = field(repr=False)
    rates: dict[int, float] = field(default_factory=dict)
    """Measured images per second for every candidate batch size."""

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """Logits for any number of (N, H, W, 3) pixel arrays (uint8 or float), in batches of `batch_size`."""
        size = self.batch_size
        chunks = (np.asarray(pixels[i : i + size], np.float32) for i in range(0, len(pixels), size))
        return np.concatenate([self.run(chunk) for chunk in chunks])


def build(clf: Classifier, backend: str | None = None, batch_size: int | None = None) -> Engine:
    """The fastest engine that matches torch for `clf`; `backend` (or $WHYLABEL_BACKEND) can force one.

    `batch_size` skips the calibration of batch sizes (for copies of a model already calibrated).
    """
    backend = backend or os.environ.get("WHYLABEL_BACKEND", "auto")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    sizes = BATCH_SIZES if batch_size is None else (check_batch_size(batch_size),)
    example = _example(clf.input_size)
    if backend != "torch":
        try:
            return onnx_engine(clf, example, sizes)
        except Exception as err:  # any failure means torch: correct, only slower
            if backend == "onnxruntime":
                raise EngineError(f"onnxruntime backend unavailable: {err}") from err
            return _calibrated("torch", torch_run(clf), example, f"onnxruntime not used: {err}", sizes)
    return _calibrated("torch", torch_run(clf), example, "torch chosen", sizes)


def onnx_engine(clf: Classifier, example: np.ndarray, sizes: tuple[int, ...]) -> Engine:
    """The onnxruntime engine: from the disk cache when an entry there passes the check, else exported anew."""
    name = engine_store.key(clf.module, clf.input_size, clf.mean, clf.std, sizes)
    stored = engine_store.load(name)
    if stored is not None:
        try:
            run = onnx_session(stored[0])
            note = f"max |logit difference| from torch {check(run, clf, example):.1e}; export and calibration cached"
            info = stored[1]
            rates = {int(size): float(rate) for size, rate in info["rates"].items()}
            best = int(info["batch_size"])
            return Engine("onnxruntime", best, rates[best], note, run, rates)
        except Exception:  # stale or corrupt: built again below, and the entry replaced
            pass
    with module_lock(clf.module):  # tracing runs the module: no other thread's hooks may be on it
        model = onnx_export(PixelInput(clf.module, clf.mean, clf.std).eval(), example)
    run = onnx_session(model)
    note = f"max |logit difference| from torch {check(run, clf, example):.1e}"
    engine = _calibrated("onnxruntime", run, example, note, sizes)
    engine_store.save(name, model, {"batch_size": engine.batch_size, "rates": engine.rates})
    return engine


def torch_run(clf: Classifier) -> Run:
    """The classifier's own torch path: exactly the logits `clf.logits` gives."""
    return lambda x: clf.logits(x).numpy()


def onnx_run(model: PixelInput, example: np.ndarray) -> Run:
    """An onnxruntime session running `model`, exported in memory."""
    return onnx_session(onnx_export(model, example))


def onnx_export(model: PixelInput, example: np.ndarray) -> bytes:
    """`model` as ONNX bytes, with a dynamic batch; EngineError when the trace may not hold for other inputs."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught, torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("always")  # recorded, not shown: the TorchScript-based exporter is deprecated
        torch.onnx.export(
            model,
            (torch.from_numpy(example[:1]),),
            buffer,  # type: ignore[arg-type]  # torch writes to a file object as well as a path
            dynamo=False,
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}},
        )
    traced = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    if traced:  # Python control flow on tensor values: the traced graph may be wrong for other images
        raise EngineError(f"the traced graph may not hold for other inputs ({str(traced[0].message)[:120]})")
    return buffer.getvalue()


def onnx_session(model: bytes) -> Run:
    """An onnxruntime session for ONNX bytes, as a `Run`.

    Its threads spin (wait busily) between runs: 10-20% more images per second when runs follow each other
    with only numpy work between them. Callers that do torch work between runs (Captum) should run it on one
    torch thread (`explainers.forward.single_torch_thread`), or the two thread pools slow each other down.
    """
    session = ort_session(model)

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]

    return run


def ort_session(model: bytes) -> Any:
    """An onnxruntime CPU session with whylabel's options: as many threads as torch, one inter-op thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # No memory arena: it keeps the largest batch's buffers, which took the default view on Lite2 from 1.1 GB
    # to 1.6 GB, with no measurable gain in speed.
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def check(run: Run, clf: Classifier, example: np.ndarray) -> float:
    """The largest difference between `run` and the classifier's own torch logits; EngineError beyond tolerance."""
    expected = clf.logits(example).numpy()
    got = np.concatenate([run(example[:1]), run(example[1:])])  # a batch of 1 and a larger one
    if got.shape != expected.shape:
        raise EngineError(f"output shape {got.shape} differs from torch's {expected.shape}")
    if not np.allclose(got, expected, rtol=RTOL, atol=ATOL):
        raise EngineError(f"outputs differ from torch by up to {np.abs(got - expected).max():.2e}")
    return float(np.abs(got - expected).max())


def calibrate(
    run: Run, example: np.ndarray, sizes: tuple[int, ...] = BATCH_SIZES, seconds: float = CALIBRATION_SECONDS
) -> dict[int, float]:
    """Median images per second for each batch size, after one warm-up run of each."""
    rates = {}
    for size in sizes:
        batch = np.repeat(example[:1], size, axis=0)
        run(batch)
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < 3 or time.perf_counter() - start < seconds:
            began = time.perf_counter()
            run(batch)
            times.append(time.perf_counter() - began)
        rates[size] = size / statistics.median(times)
    return rates


def check_batch_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 1024:
        raise ValueError(f"batch_size must be a whole number from 1 to 1024; got {size!r}")
    return size


def _calibrated(backend: str, run: Run, example: np.ndarray, note: str, sizes: tuple[int, ...]) -> Engine:
    seconds = CALIBRATION_SECONDS if len(sizes) > 1 else 0.0  # one size: three timed runs for the throughput
    rates = calibrate(run, example, sizes, seconds)
    best = max(rates, key=lambda size: rates[size])
    return Engine(backend=backend, batch_size=best, throughput=rates[best], note=note, run=run, rates=rates)


def _example(input_size: int) -> np.ndarray:
    """Three fixed random images (N, H, W, 3) in 0..255: what export, check and calibration run on."""
    return np.random.default_rng(0).integers(0, 256, (3, input_size, input_size, 3)).astype(np.float32)
