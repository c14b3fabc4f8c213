"""load_user_model: TorchScript with labels, state_dicts of known architectures, a one-line ModelError for the rest."""

from __future__ import annotations

import builtins
import copy
import io
import json
import pickle
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from whylabel import explainers, models
from whylabel.models import ModelError, engine
from whylabel.models.efficientnet import build_efficientnet, weights_file
from whylabel.models.mnist import MnistCNN
from whylabel.models.remote import InWorker
from whylabel.models.user import script_classifier
from whylabel.trust import randomised

LABELS = b"cat\ndog\nfish\n"
SIZE = 16
RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
pytestmark = [
    pytest.mark.filterwarnings("ignore:.torch.jit.* is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning"),
]


class TwoConv(nn.Module):
    """Two convolutions, global average pool, linear head."""

    def __init__(self, classes: int = 3, channels: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(channels, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(x.mean(dim=(2, 3)))


class ChannelMeans(nn.Module):
    """logits = W @ (mean of each input channel) + b, with W and b fixed."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight", torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, -3.0]]))
        self.register_buffer("bias", torch.tensor([0.5, 0.0, -1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) @ self.weight.T + self.bias


class Returns(nn.Module):
    """Returns `fn(x)`: for models whose output is wrong in a given way."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class Raises(nn.Module):
    """A TorchScript model that checks its input size itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] != 32:
            raise ValueError("expected 32x32 input")
        return x.mean(dim=(2, 3))


class PairOut(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.mean(dim=(2, 3)), x.amax(dim=(2, 3))


class Payload:
    """A pickle that, if unpickled, creates `marker` and sets `builtins.WHYLABEL_RAN`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        code = f"open({str(self.marker)!r}, 'w').close(); import builtins; builtins.WHYLABEL_RAN = True"
        return (exec, (code,))


def script(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module.eval()), buffer)
    return buffer.getvalue()


def trace(module: nn.Module, size: int = SIZE) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.trace(module.eval(), torch.rand(2, 3, size, size)), buffer)
    return buffer.getvalue()


def saved(obj: object, **options) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, **options)
    return buffer.getvalue()


def damaged(data: bytes, entry: str, content: bytes) -> bytes:
    """The zip archive `data` with the entry whose name ends with `entry` replaced by `content`."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, old in entries.items():
            archive.writestr(name, content if name.endswith(entry) else old)
    return buffer.getvalue()


def refused(match: str, load: Callable[..., object], *args, **kwargs) -> str:
    """The ModelError message, checked to be one line that matches `match`."""
    with pytest.raises(ModelError, match=match) as info:
        load(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def clf_settings(clf: models.Classifier) -> dict:
    return {"input_size": clf.input_size, "mean": clf.mean, "std": clf.std, "crop": clf.crop}


def load_script(module: nn.Module, labels: bytes = LABELS, **kwargs) -> models.Classifier:
    return models.load_user_model(script(module), labels, "mine", input_size=SIZE, **kwargs)


def mnist_state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return MnistCNN().state_dict()


# --- TorchScript ---------------------------------------------------------------------------------------------------


def test_scripted_model_computes_its_function_with_the_given_preprocessing():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    clf = load_script(ChannelMeans(), mean=mean, std=std, crop=1.0)
    assert clf.labels == ["cat", "dog", "fish"]
    assert (clf.input_size, clf.mean, clf.std, clf.crop) == (SIZE, mean, std, 1.0)
    x = (PIXELS.astype(np.float64) / 255 - mean) / std
    channel_means = x.mean(axis=(1, 2))
    expected = channel_means @ np.array([[1, 0, 0], [0, 2, 0], [1, 1, -3]]).T + [0.5, 0, -1]
    np.testing.assert_allclose(clf.logits(PIXELS).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_torchscript_defaults_to_imagenet_preprocessing():
    clf = models.load_user_model(script(ChannelMeans()), LABELS, "mine")
    assert (clf.input_size, clf.crop) == (224, 0.875)
    assert (clf.mean, clf.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.mark.parametrize("export", [script, trace])
def test_scripted_and_traced_models_match_the_original(export):
    original = TwoConv().eval()
    clf = models.load_user_model(export(original), LABELS, "two conv", input_size=SIZE)
    assert isinstance(clf.module, InWorker)  # the code runs in its worker only (tests/models/test_worker.py)
    with torch.no_grad():
        expected = original(clf.to_tensor(PIXELS))
    torch.testing.assert_close(clf.logits(PIXELS), expected)
    held = script_classifier(export(original), ["cat", "dog", "fish"], "two conv", clf_settings(clf))
    assert isinstance(held.module, torch.jit.ScriptModule)  # what the worker holds: frozen, in eval mode
    assert not any(p.requires_grad for p in held.module.parameters())
    assert not held.module.training


def test_the_name_carries_a_digest_of_everything_that_went_in():
    data = script(TwoConv())
    first = models.load_user_model(data, LABELS, "net", input_size=SIZE)
    assert re.fullmatch(r"net \([0-9a-f]{8}\)", first.name)
    assert models.load_user_model(data, LABELS, "net", input_size=SIZE).name == first.name
    others = [
        models.load_user_model(script(ChannelMeans()), LABELS, "net", input_size=SIZE),
        models.load_user_model(data, b"a\nb\nc\n", "net", input_size=SIZE),
        models.load_user_model(data, LABELS, "net", input_size=SIZE, crop=1.0),
    ]
    assert len({first.name, *(clf.name for clf in others)}) == 4
    assert models.load_user_model(data, LABELS, "  ", input_size=SIZE).name.startswith("uploaded model (")


def test_torchscript_needs_labels():
    refused("TorchScript model needs a labels file", models.load_user_model, script(TwoConv()), None, "x")


def test_a_damaged_torchscript_file_is_refused():
    data = damaged(script(TwoConv()), "data.pkl", b"garbage")
    refused("TorchScript file could not be loaded", models.load_user_model, data, LABELS, "x")


# --- explaining an uploaded model ------------------------------------------------------------------------------------


def test_saliency_and_occlusion_explain_a_scripted_model(monkeypatch):
    monkeypatch.setattr(engine, "CALIBRATION_SECONDS", 0.0)
    monkeypatch.delenv("WHYLABEL_BACKEND", raising=False)
    clf = load_script(TwoConv())
    img = Image.fromarray(PIXELS[0])
    for method, params in (("saliency", {}), ("occlusion", {"window": 4, "stride": 2})):
        att = explainers.explain(clf, img, method, target="dog", **params)
        assert att.heatmap.shape == (SIZE, SIZE)
        assert np.isfinite(att.heatmap).all() and np.ptp(att.heatmap) > 0
    fast = clf.engine()  # the ONNX export of a ScriptModule inside PixelInput fails: torch it is
    assert fast.backend == "torch" and "onnxruntime not used" in fast.note
    np.testing.assert_allclose(fast.logits(PIXELS), clf.logits(PIXELS).numpy(), rtol=1e-6)


def test_a_scripted_model_can_be_copied_and_randomised(monkeypatch):
    monkeypatch.setattr(engine, "CALIBRATION_SECONDS", 0.0)  # `randomised` builds the engine
    held = script_classifier(script(TwoConv()), ["cat", "dog", "fish"], "mine", {"input_size": SIZE})
    copied = copy.deepcopy(held.module)  # what the worker does for the sanity check
    torch.testing.assert_close(copied(held.to_tensor(PIXELS)), held.module(held.to_tensor(PIXELS)))
    clf = load_script(TwoConv())
    before = clf.logits(PIXELS)
    shuffled = randomised(clf, layers=1)
    torch.testing.assert_close(clf.logits(PIXELS), before)  # the original is untouched
    assert not torch.allclose(shuffled.logits(PIXELS), before)


@pytest.mark.parametrize("method", ["gradcam", "guided_backprop"])
def test_hooking_methods_refuse_a_scripted_model_and_say_why(method):
    clf = load_script(TwoConv())  # ScriptModules take no hooks, and their layers are not nn.Conv2d
    with pytest.raises(ValueError, match="TorchScript model's layers take no hooks: upload its state_dict"):
        explainers.explain(clf, Image.fromarray(PIXELS[0]), method)


# --- never unpickling objects ----------------------------------------------------------------------------------------


def test_a_pickled_whole_model_is_refused_with_the_reason_and_the_fix():
    message = refused("pickled Python objects", models.load_user_model, saved(TwoConv()), LABELS, "x", "mnist_cnn")
    for words in ("torch.save(model)", "never unpickles", "any code", "torch.jit.script", "model.state_dict()"):
        assert words in message


@pytest.mark.parametrize(
    "encode",
    [
        saved,
        lambda obj: saved({"weights": torch.zeros(2), "extra": obj}),
        lambda obj: saved(obj, _use_new_zipfile_serialization=False),
        lambda obj: pickle.dumps(obj, protocol=2),
        lambda obj: pickle.dumps(obj, protocol=5),
    ],
    ids=["torch.save", "inside a dict", "legacy torch.save", "pickle protocol 2", "pickle protocol 5"],
)
def test_a_malicious_pickle_is_refused_without_running_it(tmp_path, encode):
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(Payload(control)))  # the payload works when unpickled
    assert control.exists() and builtins.WHYLABEL_RAN
    del builtins.WHYLABEL_RAN
    marker = tmp_path / "marker"
    refused("pickled Python objects", models.load_user_model, encode(Payload(marker)), LABELS, "x", "mnist_cnn")
    assert not marker.exists() and not hasattr(builtins, "WHYLABEL_RAN")


# --- state_dicts -----------------------------------------------------------------------------------------------------


def wrapped(state_dict: dict, how: str) -> object:
    if how == "plain":
        return state_dict
    if how == "DataParallel":
        return {f"module.{key}": value for key, value in state_dict.items()}
    return {how: state_dict, "epoch": 3, "optimizer": {"lr": 0.1}}


@pytest.mark.parametrize("how", ["plain", "DataParallel", "state_dict", "model_state_dict", "model"])
def test_an_mnist_state_dict_loads_with_the_mnist_preprocessing(how):
    state_dict = mnist_state_dict()
    clf = models.load_user_model(saved(wrapped(state_dict, how)), None, "digits", architecture="mnist_cnn")
    assert clf.labels == [str(d) for d in range(10)]
    assert (clf.input_size, clf.crop, clf.mean) == (28, 1.0, models.mnist.wrap(MnistCNN()).mean)
    reference = MnistCNN().eval()
    reference.load_state_dict(state_dict)
    pixels = RNG.integers(0, 256, (3, 28, 28, 3), dtype=np.uint8)
    with torch.no_grad():
        torch.testing.assert_close(clf.logits(pixels), reference(clf.to_tensor(pixels)))
    att = explainers.explain(clf, Image.fromarray(pixels[0]), "saliency")
    assert att.heatmap.shape == (28, 28) and np.isfinite(att.heatmap).all()


def test_a_known_architecture_takes_a_labels_file():
    labels = "\n".join(f"digit {d}" for d in range(10)).encode()
    clf = models.load_user_model(saved(mnist_state_dict()), labels, "digits", architecture="mnist_cnn")
    assert clf.labels[7] == "digit 7"


def test_the_packaged_efficientnet_weights_load_as_an_upload(lite0):
    data = Path(weights_file("efficientnet_lite0")).read_bytes()
    clf = models.load_user_model(data, None, "lite0", architecture="efficientnet_lite0")
    assert clf.labels == lite0.labels
    assert (clf.input_size, clf.mean, clf.std, clf.crop) == (lite0.input_size, lite0.mean, lite0.std, lite0.crop)
    pixels = RNG.integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    torch.testing.assert_close(clf.logits(pixels), lite0.logits(pixels))


def test_a_fine_tuned_efficientnet_head_needs_its_labels():
    data = saved(build_efficientnet("efficientnet_lite0", classes=5).state_dict())
    labels = json.dumps(["a", "b", "c", "d", "e"]).encode()
    clf = models.load_user_model(data, labels, "tuned", architecture="efficientnet_lite0")
    assert clf.logits(np.zeros((1, 224, 224, 3), np.uint8)).shape == (1, 5)
    message = "outputs 5 scores but the default efficientnet_lite0 labels are 1000: upload a labels file with 5 labels"
    refused(message, models.load_user_model, data, None, "tuned", architecture="efficientnet_lite0")


def test_a_state_dict_needs_its_architecture():
    message = refused("only weights", models.load_user_model, saved(mnist_state_dict()), None, "x")
    assert "choose its architecture" in message and all(name in message for name in models.ARCHITECTURES)
    refused("Unknown architecture 'resnet50'", models.load_user_model, saved(mnist_state_dict()), None, "x", "resnet50")


def test_weights_for_another_network_are_refused_with_counts_and_examples():
    state_dict = mnist_state_dict()
    del state_dict["classifier.3.bias"]
    state_dict["extra.weight"] = torch.zeros(2)
    state_dict["classifier.3.weight"] = torch.zeros(7, 64)
    message = refused("do not fit mnist_cnn", models.load_user_model, saved(state_dict), None, "x", "mnist_cnn")
    assert "missing 1 ('classifier.3.bias')" in message and "unexpected 1 ('extra.weight')" in message
    assert "wrong shape 1 (e.g. 'classifier.3.weight': (7, 64) in the file, (10, 64) expected)" in message
    lite = Path(weights_file("efficientnet_lite0")).read_bytes()
    message = refused(r"missing 8 \(e\.g\. 'features", models.load_user_model, lite, None, "x", "mnist_cnn")
    assert re.search(r"unexpected \d{3} \(e\.g\. '_conv_stem\.weight'", message)


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        (torch.zeros(3), "holds a Tensor, not a model"),
        ([torch.zeros(3)], "holds a list, not a model"),
        ({}, "holds an empty dict, not a model"),
        ({"conv.weight": torch.zeros(3), "epoch": 3}, "not a state_dict: 'epoch' is not a weight tensor"),
    ],
)
def test_a_file_that_holds_no_model_is_refused(obj, match):
    refused(match, models.load_user_model, saved(obj), None, "x", "mnist_cnn")


# --- files that are not PyTorch at all -------------------------------------------------------------------------------


def plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes/readme.txt", "hello")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "The model file is empty"),
        (b"tench\ngoldfish\n", "not a PyTorch model"),
        (np.random.default_rng(1).bytes(4096), "not a PyTorch model"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a PyTorch model"),
        (saved(mnist_state_dict())[:5000], "not a PyTorch model \\(or it is damaged\\)"),
        (plain_zip(), "not a PyTorch model"),
        (damaged(saved(mnist_state_dict()), "data.pkl", b"\x80\x02garbage"), "could not be read; it may be damaged"),
        (damaged(saved(mnist_state_dict()), "data/0", b""), "could not be read; it may be damaged"),
    ],
    ids=["empty", "text", "random", "png", "truncated", "another zip", "bad data.pkl", "bad tensor"],
)
def test_a_file_that_is_not_pytorch_is_refused(data, match):
    refused(match, models.load_user_model, data, LABELS, "x", "mnist_cnn")


# --- check_model -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "match"),
    [
        (TwoConv(channels=1), r"fails on 2 RGB images of 16x16 pixels \(RuntimeError: Given groups=1.*1 channels"),
        (Raises(), r"fails on 2 RGB images of 16x16 pixels \(ValueError: expected 32x32 input\)"),
        (TwoConv(classes=7), "outputs 7 scores but the labels file has 3 labels"),
        (Returns(lambda x: x.mean(dim=3)), r"returns shape \(2, 3, 16\) for 2 images"),
        (Returns(lambda x: x.mean(dim=(2, 3)) * torch.nan), "outputs NaN scores"),
        (Returns(lambda x: x.mean(dim=(2, 3)) / 0.0), "outputs infinite scores"),
        (Returns(lambda x: x.mean(dim=(2, 3)) - x.mean()), "different scores alone and in a batch of 2"),
        (PairOut(), "returns a tuple, not a tensor"),
    ],
    ids=["one channel", "raises", "width", "3-D", "NaN", "inf", "batch-dependent", "tuple"],
)
def test_check_model_names_the_problem(module, match):
    clf = models.from_module(module, ["cat", "dog", "fish"], SIZE)
    refused(match, models.check_model, clf)
    if not isinstance(module, Returns):  # lambdas do not script; the others are refused as uploads too
        refused(match, load_script, module)


def test_a_trace_that_fixed_the_batch_size_is_refused():
    fixed = Returns(lambda x: x.reshape(1, -1)[:, :3])
    refused(r"returns shape \(1, 3\) for 2 images", models.load_user_model, trace(fixed), LABELS, "x", input_size=SIZE)


def test_check_model_passes_a_working_model(tiny_clf):
    assert models.check_model(tiny_clf) is None


def test_bad_preprocessing_is_a_model_error():
    refused("Bad preprocessing: crop must be in", load_script, TwoConv(), crop=1.5)
    refused("Bad preprocessing: mean needs three values", load_script, TwoConv(), mean=(0.5,))
    refused("input size 5000 is too large", models.load_user_model, script(TwoConv()), LABELS, "x", input_size=5000)


# --- labels ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"cat\ndog\nfish",
        b"\xef\xbb\xbf  cat \r\n\r\ndog\n\n  fish  \n\n",
        b'["cat", "dog", "fish"]',
        b'{"2": "fish", "0": "cat", "1": "dog"}',
        b'{"1": ["n02", "dog"], "0": ["n01", "cat"], "2": ["n03", "fish"]}',
        b'{"0": "cat", "1": "dog", "2": "fish"}\n',
    ],
    ids=["lines", "BOM, CRLF, blanks", "JSON list", "JSON dict", "ImageNet class index", "trailing newline"],
)
def test_labels_come_out_in_index_order(data):
    assert models.read_labels(data) == ["cat", "dog", "fish"]


def test_labels_that_repeat_are_made_distinct():
    labels = models.read_labels(b'{"0": ["n1", "crane"], "1": ["n2", "dog"], "2": ["n3", "crane"]}')
    assert labels == ["crane (class 0)", "dog", "crane (class 2)"]
    assert models.read_labels(b"[0, 1, 2]") == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "The labels file is empty"),
        (b" \n\n\t\n", "The labels file is empty"),
        (b"caf\xe9\n", r"not UTF-8 text \(byte 3"),
        (b'["cat", "dog"', "looks like JSON but is not valid"),
        (b"[]", "holds no labels"),
        (b'{"0": "cat", "00": "dog"}', "gives class index 0 twice"),
        (b'{"0": "cat", "2": "fish"}', "no label for class 1"),
        (b'{"1": "dog", "2": "fish"}', "no label for class 0"),
        (b'{"cat": 0}', "has the key 'cat'"),
        (b'["cat", ""]', "label of class 1 is"),
        (b'["cat", {"name": "dog"}]', "label of class 1 is"),
    ],
    ids=[
        "empty",
        "blank",
        "latin-1",
        "bad JSON",
        "empty list",
        "same index",
        "gap",
        "no zero",
        "not an index",
        "empty name",
        "object",
    ],
)
def test_bad_labels_are_refused(data, match):
    refused(match, models.read_labels, data)
    refused(match, models.load_user_model, script(TwoConv()), data, "x")
