"""Classifiers that users upload: a TorchScript file with its labels, or a state_dict for a known architecture.

Nothing beyond tensors and plain containers is ever unpickled: weights go through `torch.load(weights_only=True)`
and TorchScript through `torch.jit.load`, whose archive holds TorchScript code, not Python objects. Every refusal is
a `ModelError` whose one-line message says what is wrong and what to do instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import time
import zipfile
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch

from whylabel.models.classifier import Classifier, from_module
from whylabel.models.efficientnet import INPUT_SIZES, build_efficientnet, wrap_efficientnet
from whylabel.models.labels import distinct_names
from whylabel.models.locks import module_lock
from whylabel.models.mnist import MnistCNN, wrap
from whylabel.models.onnx_model import OnnxClassifier, onnx_classifier
from whylabel.models.remote import ModelError, is_remote, load_onnx, load_script, model, models_here
from whylabel.models.sandbox import UnsafeModel, check_archive, check_graph
from whylabel.models.worker import ERRORS, operation
from whylabel.models.worker import one_line as _one_line
from whylabel.store.engines import state_dict_sha256

MAX_INPUT_SIZE = 1024
"""The largest input size accepted for an uploaded model, in pixels."""
SCRIPT_PREPROCESSING: dict[str, Any] = {
    "input_size": 224,
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
    "crop": 0.875,
}
"""What a TorchScript model gets unless told otherwise: the usual ImageNet preprocessing."""
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
"""Checkpoint keys that hold the state_dict itself, as training scripts often save it."""
CHECK_LEVELS = (64, 192)
"""Grey levels of the images `check_model` runs through the model."""

PICKLED = (
    "This file holds pickled Python objects (such as a whole model saved with torch.save(model)), not just weights: "
    "whylabel never unpickles those, because unpickling can run any code on the server. Save the model as TorchScript "
    "with torch.jit.script(model).save(path) (or torch.jit.trace), or save only its weights with "
    "torch.save(model.state_dict(), path) if it is one of the known architectures."
)
NOT_TORCH = (
    "This file is not a PyTorch model (or it is damaged): upload a TorchScript file (.pt), "
    "a state_dict saved with torch.save, or an ONNX file (.onnx)."
)


ERRORS["ModelError"] = ModelError  # a refusal in the worker is the same refusal on the server


def _efficientnet(name: str, state_dict: dict[str, torch.Tensor]) -> Classifier:
    head = state_dict.get("_fc.weight")
    module = build_efficientnet(name, head.shape[0] if head is not None and head.ndim == 2 else 1000)
    _fit(module, state_dict, name)
    return wrap_efficientnet(name, module)


def _mnist(state_dict: dict[str, torch.Tensor]) -> Classifier:
    module = MnistCNN()
    _fit(module, state_dict, "mnist_cnn")
    return wrap(module)


_BUILDERS: dict[str, Callable[[dict[str, torch.Tensor]], Classifier]] = {
    **{name: partial(_efficientnet, name) for name in INPUT_SIZES},
    "mnist_cnn": _mnist,
}
ARCHITECTURES = tuple(_BUILDERS)
"""The architectures a state_dict can be loaded into."""


def load_user_model(
    model: bytes,
    labels: bytes | None = None,
    name: str = "uploaded model",
    architecture: str | None = None,
    input_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    crop: float | None = None,
    layout: str | None = None,
) -> Classifier:
    """A checked classifier from an uploaded model file and optional labels file; ModelError if unusable.

    An ONNX file (named .onnx, or recognised by its first byte) needs labels, runs on onnxruntime in its
    isolated worker, and takes its input size and `layout` (NCHW or NHWC) from its graph where the graph fixes
    them. A TorchScript file needs labels and ignores `architecture`; a state_dict needs `architecture` (one of
    ARCHITECTURES) and defaults to its labels. Preprocessing left as None is the architecture's own, or for
    TorchScript the ImageNet one (224 px, crop 0.875). The name ends with a digest of everything that went in.
    """
    data = bytes(model)
    if not data:
        raise ModelError("The model file is empty.")
    names = None if labels is None else read_labels(labels)
    given = {"input_size": input_size, "mean": mean, "std": std, "crop": crop}
    given = {key: value for key, value in given.items() if value is not None}
    entries = _zip_entries(data)
    if not entries and _is_onnx(data, name):  # a graph: checked and run in its isolated worker only
        if names is None:
            raise ModelError("An ONNX model needs a labels file: one label per line, or JSON.")
        chosen = {**SCRIPT_PREPROCESSING, "input_size": None, **given}  # None: the size the graph fixes
        _check_size(chosen["input_size"])
        title = _content_name(name, data, labels, layout, chosen)
        return load_onnx(data, names, title, chosen, layout)
    if _is_torchscript(entries):  # code: checked and run in its isolated worker only
        if names is None:
            raise ModelError("A TorchScript model needs a labels file: one label per line, or JSON.")
        chosen = {**SCRIPT_PREPROCESSING, **given}
        _check_size(chosen["input_size"])
        return load_script(data, names, _content_name(name, data, labels, None, chosen), chosen)
    base = _from_state_dict(_load_weights(data, entries), architecture)  # weights into our own network: data
    chosen = {**_preprocessing(base), **given}
    title = _content_name(name, data, labels, architecture, chosen)
    clf = _classifier(_freeze(base.module), names or base.labels, title, chosen)
    _check_width(clf, _output_width(clf), None if labels is not None else architecture)
    return clf


def script_classifier(data: bytes, labels: list[str], name: str, preprocessing: dict[str, Any]) -> Classifier:
    """A TorchScript model, checked against the sandbox's rules, then loaded and run on test images.

    This runs the user's code: the worker calls it (`models.remote`), never the server.
    """
    return _checked_script(data, labels, name, preprocessing)[0]


def _checked_script(
    data: bytes, labels: list[str], name: str, preprocessing: dict[str, Any]
) -> tuple[Classifier, float]:
    """`script_classifier`, and the seconds of one forward pass in its check."""
    try:
        check_archive(data)
        module = _load_script(data)
        check_graph(module)
    except UnsafeModel as err:
        raise ModelError(str(err)) from None
    clf = _classifier(_freeze(module), labels, name, preprocessing)
    width, seconds = _measured_width(clf)
    _check_width(clf, width, None)
    return clf, seconds


def onnx_user_classifier(
    data: bytes, labels: list[str], name: str, preprocessing: dict[str, Any], layout: str | None
) -> OnnxClassifier:
    """An ONNX model, checked as a TorchScript one is (batch of 2 against alone, one score per label).

    This runs the user's graph: the worker calls it (`models.remote`), never the server.
    """
    return _checked_onnx(data, labels, name, preprocessing, layout)[0]


def _checked_onnx(
    data: bytes, labels: list[str], name: str, preprocessing: dict[str, Any], layout: str | None
) -> tuple[OnnxClassifier, float]:
    """`onnx_user_classifier`, and the seconds of one forward pass in its check."""
    try:
        clf = onnx_classifier(data, labels, name, preprocessing, layout)
    except ValueError as err:
        raise ModelError(str(err)) from None
    width, seconds = _measured_width(clf)
    _check_width(clf, width, None)
    return clf, seconds


def _is_onnx(data: bytes, name: str) -> bool:
    """Named .onnx, or starting as an ONNX ModelProto does (field 1, ir_version, a varint: byte 0x08)."""
    return name.lower().endswith(".onnx") or data[:1] == b"\x08"


def check_model(clf: Classifier) -> None:
    """Refuse (ModelError) a model that raises, gives no finite (N, classes) scores, or not one score per label."""
    if is_remote(clf):
        clf.call("check")  # type: ignore[attr-defined]
        return
    _check_width(clf, _output_width(clf), None)


def read_labels(data: bytes) -> list[str]:
    """Class names in index order from UTF-8 text (one per line) or JSON (a list, or a dict of index to name).

    A JSON value may be a list, as in ImageNet's class-index file (["n01440764", "tench"]): its last item is
    the name. Names that repeat get their index added, so that every class can be named.
    """
    try:
        text = bytes(data).decode("utf-8-sig").strip()
    except UnicodeDecodeError as err:
        raise ModelError(f"The labels file is not UTF-8 text (byte {err.start} cannot be decoded).") from err
    if not text:
        raise ModelError("The labels file is empty.")
    labels = _json_labels(text) if text[0] in "[{" else _lines(text)
    return distinct_names([[label] for label in labels])


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _json_labels(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelError(f"The labels file looks like JSON but is not valid ({err.msg}, line {err.lineno}).") from err
    items = list(enumerate(value)) if isinstance(value, list) else _indexed(value)
    if not items:
        raise ModelError("The labels file holds no labels.")
    return [_label(index, item) for index, item in items]


def _indexed(mapping: dict[str, Any]) -> list[tuple[int, Any]]:
    found: dict[int, tuple[str, Any]] = {}
    for key, value in mapping.items():
        try:
            index = int(key)
        except ValueError:
            raise ModelError(f"The labels JSON has the key {key!r}; keys must be class indices 0, 1, 2...") from None
        if index in found:
            raise ModelError(f"The labels JSON gives class index {index} twice (keys {found[index][0]!r} and {key!r}).")
        found[index] = (key, value)
    gaps = sorted(set(range(len(found))) - set(found))
    if gaps:
        raise ModelError(f"The labels JSON has no label for class {gaps[0]}: its keys must run from 0 with no gaps.")
    return [(index, found[index][1]) for index in range(len(found))]


def _label(index: int, value: Any) -> str:
    if isinstance(value, list) and value:
        value = value[-1]
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ModelError(f"The label of class {index} is {json.dumps(value)[:40]}; each label must be a name.")
    return value.strip()


def _zip_entries(data: bytes) -> list[str]:
    """The names in a zip archive; none for anything else."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except Exception:  # not a zip, or a damaged one
        return []


def _is_torchscript(entries: list[str]) -> bool:
    """A TorchScript archive: `<root>/code/` and `<root>/constants.pkl` (a torch.save zip has neither)."""
    roots = {name.split("/", 1)[0] for name in entries}
    return any(f"{r}/constants.pkl" in entries and any(n.startswith(f"{r}/code/") for n in entries) for r in roots)


def _load_script(data: bytes) -> torch.jit.ScriptModule:
    try:
        return torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as err:
        raise ModelError(f"The TorchScript file could not be loaded; it may be damaged ({_one_line(err)}).") from err


def _load_weights(data: bytes, entries: list[str]) -> object:
    """What `torch.load(weights_only=True)` reads: tensors and plain containers only, never other objects.

    A torch.save file is a zip with `<root>/data.pkl`, or (before PyTorch 1.6) a pickle; a pickle that holds
    other objects is refused, whatever the file looked like.
    """
    is_pickle = data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    if not is_pickle and not any(name.count("/") == 1 and name.endswith("/data.pkl") for name in entries):
        raise ModelError(NOT_TORCH)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # a global (a class, a function) or an opcode the loader refuses
        if is_pickle or "GLOBAL" in str(err):
            raise ModelError(PICKLED) from err
        raise ModelError("This PyTorch file could not be read; it may be damaged.") from err
    except Exception as err:
        raise ModelError(f"This PyTorch file could not be read; it may be damaged ({_one_line(err)}).") from err


def _from_state_dict(obj: object, architecture: str | None) -> Classifier:
    state_dict = _state_dict(obj)
    if architecture is None:
        raise ModelError(
            "This file holds only weights (a state_dict), not the network: choose its architecture "
            f"({', '.join(ARCHITECTURES)}), or upload the model as TorchScript."
        )
    if architecture not in _BUILDERS:
        raise ModelError(f"Unknown architecture {architecture!r}; known architectures: {', '.join(ARCHITECTURES)}.")
    return _BUILDERS[architecture](state_dict)


def _state_dict(obj: object) -> dict[str, torch.Tensor]:
    """The weight tensors by name, out of a checkpoint wrapper and without DataParallel's "module." prefix."""
    if isinstance(obj, dict):
        obj = next((obj[key] for key in WRAPPER_KEYS if isinstance(obj.get(key), dict)), obj)
    if not isinstance(obj, dict) or not obj:
        what = "an empty dict" if isinstance(obj, dict) else f"a {type(obj).__name__}"
        raise ModelError(f"The file holds {what}, not a model: upload TorchScript, or a state_dict of weight tensors.")
    bad = [key for key, value in obj.items() if not isinstance(key, str) or not isinstance(value, torch.Tensor)]
    if bad:
        raise ModelError(f"The file holds a dict that is not a state_dict: {bad[0]!r} is not a weight tensor.")
    if all(key.startswith("module.") for key in obj):
        return {key.removeprefix("module."): value for key, value in obj.items()}
    return dict(obj)


def _fit(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], architecture: str) -> None:
    """Load the weights strictly; ModelError naming what does not fit."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    wrong = [key for key in expected if key in state_dict and state_dict[key].shape != expected[key].shape]
    parts = [f"missing {len(missing)} ({_examples(missing)})"] if missing else []
    parts += [f"unexpected {len(unexpected)} ({_examples(unexpected)})"] if unexpected else []
    if wrong:
        key = wrong[0]
        shapes = f"{tuple(state_dict[key].shape)} in the file, {tuple(expected[key].shape)} expected"
        parts.append(f"wrong shape {len(wrong)} (e.g. {key!r}: {shapes})")
    if parts:
        raise ModelError(f"The weights do not fit {architecture}: {'; '.join(parts)}.")
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        raise ModelError(f"The weights do not fit {architecture} ({_one_line(err)}).") from err


def _examples(keys: list[str], n: int = 3) -> str:
    shown = ", ".join(repr(key) for key in keys[:n])
    return f"e.g. {shown}" if len(keys) > n else shown


def _preprocessing(clf: Classifier) -> dict[str, Any]:
    return {"input_size": clf.input_size, "mean": clf.mean, "std": clf.std, "crop": clf.crop}


def _freeze(module: torch.nn.Module) -> torch.nn.Module:
    """No gradients for the weights (explainers take them for the input), in eval mode; works on ScriptModules."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module.eval()


def digest(model: bytes, labels: bytes | None, architecture: str | None, preprocessing: dict[str, Any]) -> str:
    """The sha256 of everything that decides an uploaded classifier: files, architecture and preprocessing."""
    settings = repr(sorted(preprocessing.items()))
    parts = [bytes(model), b"" if labels is None else bytes(labels), (architecture or "").encode(), settings.encode()]
    return hashlib.sha256(b"".join(hashlib.sha256(part).digest() for part in parts)).hexdigest()


def _content_name(name: str, data: bytes, labels: bytes | None, architecture: str | None, chosen: dict) -> str:
    """The name with a digest of the model, labels, architecture and preprocessing (results are cached on it)."""
    return f"{name.strip() or 'uploaded model'} ({digest(data, labels, architecture, chosen)[:8]})"


def _check_size(size: object) -> None:
    if isinstance(size, int) and size > MAX_INPUT_SIZE:
        raise ModelError(f"The input size {size} is too large: at most {MAX_INPUT_SIZE} pixels are accepted.")


def _classifier(module: torch.nn.Module, labels: list[str], name: str, chosen: dict[str, Any]) -> Classifier:
    _check_size(chosen["input_size"])
    try:
        return from_module(module, labels, name=name, **chosen)
    except ValueError as err:
        raise ModelError(f"Bad preprocessing: {err}.") from err


def _output_width(clf: Classifier) -> int:
    """The number of scores per image, after checking a batch of 2 and one image alone agree."""
    return _measured_width(clf)[0]


def _measured_width(clf: Classifier) -> tuple[int, float]:
    """`_output_width`, and the seconds of the forward pass of the image alone (what later calls' limits scale
    with, `models.worker.call_limit`)."""
    size = clf.input_size
    pixels = np.stack([np.full((size, size, 3), level, np.uint8) for level in CHECK_LEVELS])
    batch = _scores(clf, pixels)
    began = time.perf_counter()
    alone = _scores(clf, pixels[:1])
    seconds = time.perf_counter() - began
    if not torch.allclose(batch[:1], alone, rtol=1e-3, atol=1e-4):
        raise ModelError(
            "The model gives an image different scores alone and in a batch of 2 (does it depend on the batch, "
            "such as batch norm in training mode?); explanations need the same scores in any batch."
        )
    return batch.shape[1], seconds


def _scores(clf: Classifier, pixels: np.ndarray) -> torch.Tensor:
    n, size = len(pixels), clf.input_size
    try:
        with module_lock(clf.module), torch.inference_mode():
            out = clf.module(clf.to_tensor(pixels))
    except Exception as err:
        raise ModelError(
            f"The model fails on {n} RGB image{'s' if n > 1 else ''} of {size}x{size} pixels ({_one_line(err)}); "
            "check the input size, and that it takes a batch of 3-channel images."
        ) from err
    if not isinstance(out, torch.Tensor):
        raise ModelError(f"The model returns a {type(out).__name__}, not a tensor of scores.")
    if out.ndim != 2 or len(out) != n:
        raise ModelError(f"The model returns shape {tuple(out.shape)} for {n} images; it must return ({n}, classes).")
    out = out.float()
    if not torch.isfinite(out).all():
        what = "NaN" if out.isnan().any() else "infinite"
        raise ModelError(f"The model outputs {what} scores for plain grey images; it cannot be explained.")
    return out


def _check_width(clf: Classifier, width: int, default_for: str | None) -> None:
    if width == len(clf.labels):
        return
    if default_for is None:
        raise ModelError(
            f"The model outputs {width} scores but the labels file has {len(clf.labels)} labels; they must match."
        )
    raise ModelError(
        f"The model outputs {width} scores but the default {default_for} labels are {len(clf.labels)}: "
        f"upload a labels file with {width} labels."
    )


# The worker side of loading and checking: these run the user's code, in the worker (`models.remote` asks).


@operation("load")
def load(data: bytes, labels: list[str], name: str, preprocessing: dict[str, Any]) -> dict[str, Any]:
    clf, seconds = _checked_script(data, labels, name, preprocessing)
    models_here()["user"] = clf
    owners = [n or "(whole model)" for n, m in clf.module.named_modules() if any(True for _ in m.parameters(False))]
    return {
        "input_size": clf.input_size,
        "mean": clf.mean,
        "std": clf.std,
        "crop": clf.crop,
        "layers": owners[::-1],
        "weights": (state_dict_sha256(clf.module), "state_dict (float32, in order)"),
        "pass_seconds": seconds,
    }


@operation("load_onnx")
def load_onnx_here(
    data: bytes, labels: list[str], name: str, preprocessing: dict[str, Any], layout: str | None
) -> dict[str, Any]:
    import hashlib

    clf, seconds = _checked_onnx(data, labels, name, preprocessing, layout)
    models_here()["user"] = clf
    return {
        "input_size": clf.input_size,
        "mean": clf.mean,
        "std": clf.std,
        "crop": clf.crop,
        "layers": [],
        "weights": (hashlib.sha256(data).hexdigest(), f"ONNX file ({clf.layout} input)"),
        "gradients": False,
        "pass_seconds": seconds,
    }


@operation("check", passes=lambda model_id: len(CHECK_LEVELS) + 1)
def check(model_id: str) -> None:
    check_model(model(model_id))
