"""A user's ONNX model (exported from Keras, TensorFlow, JAX, scikit-learn or PyTorch), run on onnxruntime.

The graph is checked and run only in the isolated worker (`models.worker`), as TorchScript is: the server never
parses it. An ONNX graph gives logits but no gradients here, so a `OnnxClassifier` says `gradients = False` and
the methods that need them refuse (`explainers.explain`); every method and check that only runs forward passes
works. The input layout is read from the graph's input shape (channels at axis 1: NCHW; at axis 3: NHWC, as
Keras exports) or given; a graph whose batch axis is fixed at 1 is run one image at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from whylabel.models.classifier import Classifier
from whylabel.models.engine import BATCH_SIZES, Engine, _calibrated, _example, ort_session

LAYOUTS = ("NCHW", "NHWC")
ALLOWED_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}
"""Operator sets onnxruntime implements itself; any other needs a custom-op library, which is never loaded."""
FLOAT = 1
"""onnx.TensorProto.FLOAT"""


class OnnxModule(torch.nn.Module):
    """The graph behind a torch face: normalised NCHW float input in, logits out; no gradients flow through."""

    def __init__(self, run: Any, layout: str, batch: int | None) -> None:
        super().__init__()
        self.run, self.layout, self.batch = run, layout, batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().cpu().numpy().astype(np.float32, copy=False)
        if self.layout == "NHWC":
            array = array.transpose(0, 2, 3, 1)
        step = self.batch or len(array)
        parts = [self.run(np.ascontiguousarray(array[i : i + step])) for i in range(0, len(array), step)]
        return torch.from_numpy(np.concatenate(parts).astype(np.float32, copy=False))


@dataclass(eq=False)
class OnnxClassifier(Classifier):
    """A classifier whose module is an onnxruntime session (`OnnxModule`)."""

    gradients: bool = field(default=False, init=False)
    layout: str = "NCHW"
    fixed_batch: int | None = None
    """The graph's batch size when its input fixes one (then every run has exactly that many images)."""

    def engine(self) -> Engine:
        """The graph itself, calibrated over the batch sizes it accepts (only 1 when it fixes the batch)."""
        with self._engine_lock:
            if self._engine is None:
                sizes = BATCH_SIZES if self.fixed_batch is None else (1,)
                run = lambda x: self.logits(x).numpy()  # noqa: E731 - normalisation, layout, batches: one path
                note = f"your ONNX graph ({self.layout}{', batch 1' if self.fixed_batch else ''})"
                self._engine = _calibrated("onnxruntime", run, _example(self.input_size), note, sizes)
            return self._engine


def check_graph(model: Any) -> None:
    """Refuse a graph that reads files (external data) or needs operators onnxruntime does not ship."""
    from onnx import TensorProto

    tensors = list(model.graph.initializer)
    tensors += [attr.t for node in all_nodes(model.graph) for attr in node.attribute if attr.HasField("t")]
    if any(t.data_location == TensorProto.EXTERNAL for t in tensors):
        raise ValueError(
            "The ONNX file refers to external data files, which are never read on the server: "
            "save it with every weight inside (onnx.save_model(model, path, save_as_external_data=False))."
        )
    domains = {node.domain for node in all_nodes(model.graph)} - ALLOWED_DOMAINS
    if domains:
        raise ValueError(f"The ONNX graph uses custom operators ({', '.join(sorted(domains))}), which are not loaded.")


def all_nodes(graph: Any) -> list[Any]:
    """Every node, those in subgraphs (If, Loop, Scan bodies) included."""
    found = []
    for node in graph.node:
        found.append(node)
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                found += all_nodes(sub)
    return found


@dataclass(frozen=True)
class Input:
    """The graph's one image input: its name, shape (an int per fixed axis, None per free one) and layout."""

    name: str
    shape: tuple[int | None, ...]
    layout: str

    @property
    def size(self) -> int | None:
        """The side its shape fixes, if it fixes a square one."""
        h, w = (self.shape[2], self.shape[3]) if self.layout == "NCHW" else (self.shape[1], self.shape[2])
        return h if h is not None and h == w else None

    @property
    def batch(self) -> int | None:
        return self.shape[0]


def image_input(model: Any, layout: str | None) -> Input:
    """The one input that is not a weight, as a 4-d float image; its layout from its shape or from `layout`."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise ValueError(f"The ONNX graph has {len(inputs)} inputs; whylabel runs graphs with one image input.")
    tensor = inputs[0].type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    if tensor.elem_type != FLOAT or len(shape) != 4:
        raise ValueError(f"The ONNX graph's input must be a 4-d float32 image batch; it is {describe(tensor, shape)}.")
    return Input(inputs[0].name, shape, choose_layout(shape, layout))


def choose_layout(shape: tuple[int | None, ...], layout: str | None) -> str:
    """NCHW or NHWC: the one whose channel axis holds 3; `layout` decides when the shape does not."""
    fits = [name for name, axis in (("NCHW", 1), ("NHWC", 3)) if shape[axis] in (3, None)]
    if layout is not None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be NCHW or NHWC; got {layout!r}")
        if layout not in fits:
            raise ValueError(f"The graph's input shape {list(shape)} is not {layout} with 3 colour channels.")
        return layout
    exact = [name for name, axis in (("NCHW", 1), ("NHWC", 3)) if shape[axis] == 3]
    if len(exact) == 1:
        return exact[0]
    if not fits:
        raise ValueError(f"The graph's input shape {list(shape)} has no axis of 3 colour channels (NCHW or NHWC).")
    raise ValueError(f"The graph's input shape {list(shape)} could be NCHW or NHWC: choose the layout.")


def describe(tensor: Any, shape: tuple[int | None, ...]) -> str:
    from onnx import TensorProto

    return f"{TensorProto.DataType.Name(tensor.elem_type).lower()} of shape {['?' if d is None else d for d in shape]}"


def session(data: bytes, name: str) -> Any:
    """A run of the graph on onnxruntime (`engine.ort_session`), returning its class scores."""
    made = ort_session(data)
    outputs = made.get_outputs()
    scores = [o.name for o in outputs if o.type in ("tensor(float)", "tensor(double)") and len(o.shape) == 2]
    wanted = (scores or [outputs[0].name])[:1]  # the class scores (a scikit-learn graph puts its label first)
    return lambda x: made.run(wanted, {name: x})[0]


def onnx_classifier(
    data: bytes, labels: list[str], name: str, preprocessing: dict[str, Any], layout: str | None = None
) -> OnnxClassifier:
    """A checked ONNX classifier; ValueError (the caller's ModelError) with a one-line reason if unusable.

    This parses and runs the user's graph: only the worker calls it (`models.remote`). `preprocessing` without
    an input size takes the one the graph fixes; one that contradicts the graph is refused.
    """
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:
        raise ValueError(f"This file is not an ONNX model (or it is damaged): {str(err)[:120]}") from None
    check_graph(model)
    found = image_input(model, layout)
    size = preprocessing.get("input_size") or found.size or 224
    if found.size is not None and size != found.size:
        raise ValueError(f"The graph takes {found.size}x{found.size} images; an input size of {size} was chosen.")
    if found.batch not in (None, 1):
        raise ValueError(f"The graph's batch axis is fixed at {found.batch}; export it with a free batch or 1.")
    try:
        run = session(data, found.name)
    except Exception as err:
        raise ValueError(f"onnxruntime cannot load this graph: {str(err)[:160]}") from None
    chosen = {**preprocessing, "input_size": size}
    module = OnnxModule(run, found.layout, found.batch)
    return OnnxClassifier(
        name=name, module=module, labels=labels, layout=found.layout, fixed_batch=found.batch, **chosen
    )
