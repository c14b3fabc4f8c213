"""A user's TorchScript model in its isolated worker, behind the same `Classifier` face as every other model.

The server keeps the model's bytes, labels and preprocessing, never the module: every forward pass, gradient
and check runs in the worker (`models.worker`). `RemoteClassifier.logits` and its engine's `logits` send
pixels there and get logits back; methods that need the module itself (gradients, hooks, a randomised copy)
run there whole through operations their rooms register.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from whylabel.models.classifier import Classifier
from whylabel.models.engine import Engine
from whylabel.models.worker import STATE, Worker, WorkerError, operation


class ModelError(ValueError):
    """A model or labels file whylabel cannot use; the message says why in plain words."""


KEEP_COPIES = 8
"""Models derived in a worker (randomised copies for the sanity check) kept besides the user's own."""
SERIAL = itertools.count(1)


class InWorker(torch.nn.Module):
    """Where the server would hold the module: the model runs only in its worker."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this model runs in its isolated worker; call it through its Classifier")


@dataclass(eq=False)
class RemoteClassifier(Classifier):
    """A classifier whose module lives in `worker` under `model_id`."""

    worker: Worker | None = field(default=None, repr=False)
    model_id: str = "user"
    layer_names: tuple[str, ...] = ()
    """The parametrised layers' names, output end first (what the sanity check randomises)."""
    weights: tuple[str, str] = ("", "")
    """The weights' sha256 and what it is of."""
    gradients: bool = True
    """False for an ONNX graph: the methods that need gradients refuse before calling the worker."""

    def logits(self, pixels: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.call("logits", wire(pixels)))

    def engine(self) -> Engine:
        with self._engine_lock:
            if self._engine is None:
                info = self.call("engine")
                self._engine = RemoteEngine(**info, run=self.engine_logits)
            return self._engine

    def engine_logits(self, pixels: np.ndarray) -> np.ndarray:
        return self.call("engine_logits", wire(pixels))

    def call(self, op: str, *args: Any) -> Any:
        assert self.worker is not None
        return self.worker.call(op, self.model_id, *args)

    def derived(self, model_id: str, name: str) -> RemoteClassifier:
        """Another model the worker made from this one (same labels and preprocessing)."""
        return dataclasses.replace(self, model_id=model_id, name=name)


@dataclass(frozen=True)
class RemoteEngine(Engine):
    """The worker's engine: each call's images cross to the worker at once; it splits them into its batches."""

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        return self.run(np.asarray(pixels))


def wire(pixels: np.ndarray) -> np.ndarray:
    """Pixels as they cross to the worker: uint8 when they are whole numbers in 0..255 (a quarter of float32)."""
    array = np.asarray(pixels)
    if array.dtype == np.uint8:
        return array
    small = array.astype(np.uint8)
    return small if np.array_equal(small, array) else np.ascontiguousarray(array, dtype=np.float32)


def load_script(data: bytes, labels: list[str], name: str, preprocessing: dict[str, Any]) -> RemoteClassifier:
    """A checked TorchScript model in a fresh worker; ModelError (or WorkerError, as ModelError) if unusable."""
    return load_in_worker(("load", (data, labels, name, preprocessing)), labels, name)


def load_onnx(
    data: bytes, labels: list[str], name: str, preprocessing: dict[str, Any], layout: str | None
) -> RemoteClassifier:
    """A checked ONNX model in a fresh worker (`models.onnx_model`); ModelError if unusable."""
    return load_in_worker(("load_onnx", (data, labels, name, preprocessing, layout)), labels, name)


def load_in_worker(setup: tuple[str, tuple[Any, ...]], labels: list[str], name: str) -> RemoteClassifier:
    """A fresh worker that runs `setup` (an operation that loads and checks the model) within the check's limit
    (`worker.check_limit`: CHECK_SECONDS, 20 s), and its classifier; a model that does not answer is refused."""
    worker = Worker(setup, name)
    try:
        with worker.lock:
            worker.start()
    except WorkerError as err:
        raise ModelError(str(err)) from None
    info = worker.ready
    return RemoteClassifier(
        name=name,
        module=InWorker(),
        labels=list(labels),
        input_size=info["input_size"],
        mean=tuple(info["mean"]),
        std=tuple(info["std"]),
        crop=info["crop"],
        worker=worker,
        layer_names=tuple(info["layers"]),
        weights=tuple(info["weights"]),
        gradients=info.get("gradients", True),
    )


def is_remote(clf: Classifier) -> bool:
    return isinstance(clf, RemoteClassifier)


# --- in the worker ------------------------------------------------------------------------------------------


def models_here() -> dict[str, Classifier]:
    return STATE.setdefault("models", {})


def model(model_id: str) -> Classifier:
    found = models_here().get(model_id)
    if found is None:
        raise ValueError(f"the worker has no model {model_id!r} (it was restarted); run the check again")
    return found


def keep(clf: Classifier) -> str:
    """Keep a model derived in the worker; its id. The oldest derived models are dropped past KEEP_COPIES."""
    held = models_here()
    model_id = f"copy-{next(SERIAL)}"
    held[model_id] = clf
    for old in [key for key in held if key != "user"][:-KEEP_COPIES]:
        del held[old]
    return model_id


def images(model_id: str, pixels: np.ndarray) -> int:
    """The forward passes of a call that scores `pixels`: one per image (a call's engine splits them into its
    batches; a pass of one image alone, which the check timed, costs at least a batched image's share)."""
    return len(pixels) if np.ndim(pixels) == 4 else 1


@operation("logits", passes=images)
def logits(model_id: str, pixels: np.ndarray) -> np.ndarray:
    return model(model_id).logits(pixels).numpy()


@operation("engine")
def engine(model_id: str) -> dict[str, Any]:
    fast = model(model_id).engine()
    note = f"{fast.note}; in the model's isolated worker" if fast.note else "in the model's isolated worker"
    return {
        "backend": fast.backend,
        "batch_size": fast.batch_size,
        "throughput": fast.throughput,
        "note": note,
        "rates": dict(fast.rates),
    }


@operation("engine_logits", passes=images)
def engine_logits(model_id: str, pixels: np.ndarray) -> np.ndarray:
    return np.asarray(model(model_id).engine().logits(pixels), dtype=np.float32)
