"""ONNX models from any framework: run in their worker on onnxruntime, forward-only methods work, gradients refuse.

Each graph here is exported from a small torch CNN, so the map it must give is known: the torch original's.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import external_data_helper
from PIL import Image

from whylabel import explainers, models, trust
from whylabel.models.onnx_model import choose_layout
from whylabel.models.remote import is_remote

SIZE = 32
LABELS = b"round\nsquare\nother\n"
PREPROCESSING = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "crop": 1.0}
FORWARD_ONLY = ("occlusion", "lime", "shap")
PARAMS = {"lime": {"samples": 120, "n_segments": 20}, "shap": {"evaluations": 80}}


def cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 5, padding=2),
        torch.nn.ReLU(),
        torch.nn.AvgPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(6 * (SIZE // 4) ** 2, 3),
    ).eval()


class ChannelsLast(torch.nn.Module):
    """The same network taking NHWC input, as Keras exports."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.permute(0, 3, 1, 2))


def exported(module: torch.nn.Module, shape: tuple[int, ...], free_batch: bool = True) -> bytes:
    buffer = io.BytesIO()
    axes = {"image": {0: "n"}, "scores": {0: "n"}} if free_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated
        torch.onnx.export(
            module, (torch.zeros(shape),), buffer, dynamo=False, input_names=["image"], output_names=["scores"],
            dynamic_axes=axes,
        )  # fmt: skip
    return buffer.getvalue()


@pytest.fixture(scope="module")
def original() -> models.Classifier:
    return models.from_module(
        cnn(), ["round", "square", "other"], name="torch original", input_size=SIZE, **PREPROCESSING
    )


def onnx_model(data: bytes, **chosen) -> models.Classifier:
    return models.load_user_model(data, LABELS, name="model.onnx", **{**PREPROCESSING, **chosen})


@pytest.fixture(scope="module")
def graphs() -> dict[str, models.Classifier]:
    return {
        "NCHW": onnx_model(exported(cnn(), (1, 3, SIZE, SIZE))),
        "NHWC": onnx_model(exported(ChannelsLast(cnn()), (1, SIZE, SIZE, 3))),
        "NCHW, batch fixed at 1": onnx_model(exported(cnn(), (1, 3, SIZE, SIZE), free_batch=False)),
    }


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(5).integers(0, 256, (40, 48, 3), dtype=np.uint8))


@pytest.mark.parametrize("kind", ["NCHW", "NHWC", "NCHW, batch fixed at 1"])
def test_an_onnx_graph_gives_the_torch_originals_forward_maps(graphs, original, image, kind):
    clf = graphs[kind]
    assert is_remote(clf) and clf.input_size == SIZE  # the size the graph fixes
    assert kind.split(",")[0] in clf.weights[1]  # the layout read from the graph's input shape
    np.testing.assert_allclose(clf.predict(image).probs, original.predict(image).probs, atol=1e-5)
    target = original.predict(image).top[0][0]
    for method in FORWARD_ONLY:
        got = explainers.explain(clf, image, method, target=target, **PARAMS.get(method, {}))
        want = explainers.explain(original, image, method, target=target, **PARAMS.get(method, {}))
        scale = float(np.abs(want.heatmap).max())
        np.testing.assert_allclose(got.heatmap, want.heatmap, atol=1e-4 * scale, err_msg=f"{kind}: {method}")


def test_a_graph_with_batch_1_runs_one_image_at_a_time(graphs):
    assert graphs["NCHW, batch fixed at 1"].engine().batch_size == 1


def test_methods_that_need_gradients_refuse_and_say_which_work(graphs, image):
    clf = graphs["NCHW"]
    gradient_methods = [m for m in explainers.available() if explainers.get(m).runs_module]
    assert {"saliency", "integrated_gradients", "smoothgrad", "gradcam", "guided_backprop"} <= set(gradient_methods)
    for method in gradient_methods:
        with pytest.raises(ValueError, match="needs the model's gradients") as refused:
            explainers.explain(clf, image, method)
        assert "occlusion, lime, shap" in str(refused.value)
    request = explainers.Request.make(clf, image, "occlusion")
    with pytest.raises(ValueError, match=r"sanity check .* needs the model.s gradients"):
        trust.sanity(request)


def test_the_trust_scores_of_an_onnx_graph_are_the_torch_originals(graphs, original, image):
    """The curves the graph gives (in its worker) are the torch original's on the same images: the same map
    hidden step by step, and the unhidden image's probability from the torch module on a hand-normalised input."""
    att = explainers.explain(graphs["NHWC"], image, "occlusion")

    scores = trust.evaluate(att)

    pixels = original.input_image(image)
    for mode in ("deletion", "insertion"):
        torch_curve = trust.curve(original, pixels, att.heatmap, att.target, mode)
        np.testing.assert_allclose(scores["curves"][mode].probabilities, torch_curve.probabilities, atol=1e-5)
        assert scores[f"{mode}_auc"] == pytest.approx(torch_curve.auc, abs=1e-5)
    random = trust.random_baseline(original, pixels, att.target, None, 20, "blur")
    assert scores["random_deletion_auc"] == pytest.approx(float(random.aucs("deletion").mean()), abs=1e-5)
    x = (pixels.astype(np.float32) / 255 - 0.5) / 0.25  # PREPROCESSING's mean and std
    with torch.no_grad():
        shown = torch.softmax(cnn()(torch.from_numpy(x.transpose(2, 0, 1)[None].copy())), dim=1)[0, att.target]
    assert scores["curves"]["deletion"].probabilities[0] == pytest.approx(float(shown), abs=1e-5)
    assert scores["curves"]["insertion"].probabilities[-1] == pytest.approx(float(shown), abs=1e-5)
    assert abs(scores["deletion_auc"] - scores["insertion_auc"]) > 1e-3  # the curves are not one flat line


def test_the_layout_comes_from_the_shape_or_the_choice():
    assert choose_layout((None, 3, 32, 32), None) == "NCHW"
    assert choose_layout((None, 32, 32, 3), None) == "NHWC"
    assert choose_layout((None, None, None, None), "NHWC") == "NHWC"
    with pytest.raises(ValueError, match="could be NCHW or NHWC: choose"):
        choose_layout((None, None, None, None), None)
    with pytest.raises(ValueError, match="no axis of 3 colour channels"):
        choose_layout((None, 1, 28, 28), None)
    with pytest.raises(ValueError, match="is not NHWC"):
        choose_layout((None, 3, 32, 32), "NHWC")


def external(data: bytes) -> bytes:
    """The graph with its weights moved to an external file (which the server must never read)."""
    model = onnx.load_model_from_string(data)
    external_data_helper.convert_model_to_external_data(model, location="../../etc/weights.bin", size_threshold=0)
    return model.SerializeToString()


@pytest.mark.parametrize(
    ("make", "chosen", "message"),
    [
        (lambda: external(exported(cnn(), (1, 3, SIZE, SIZE))), {}, "external data files"),
        (lambda: exported(cnn(), (1, 3, SIZE, SIZE)), {"input_size": 64}, "takes 32x32 images"),
        (lambda: exported(cnn(), (1, 3, SIZE, SIZE)), {"layout": "NHWC"}, "is not NHWC"),
        (lambda: b"\x08\x07 not really a graph", {}, "not an ONNX model"),
    ],
)
def test_a_bad_graph_is_refused_with_one_line(make, chosen, message):
    with pytest.raises(models.ModelError, match=message) as refused:
        onnx_model(make(), **chosen)
    assert "\n" not in str(refused.value)


def test_labels_must_match_the_graphs_outputs():
    with pytest.raises(models.ModelError, match="3"):
        models.load_user_model(exported(cnn(), (1, 3, SIZE, SIZE)), b"a\nb\n", name="m.onnx", **PREPROCESSING)
    with pytest.raises(models.ModelError, match="labels file"):
        models.load_user_model(exported(cnn(), (1, 3, SIZE, SIZE)), None, name="m.onnx")


class LabelFirst(torch.nn.Module):
    """Outputs the predicted label first and the scores second, as scikit-learn's converters do."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = cnn()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.inner(x)
        return scores.argmax(dim=1), scores


def test_the_class_scores_are_found_among_several_outputs(original, image):
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LabelFirst().eval(), (torch.zeros(1, 3, SIZE, SIZE),), buffer, dynamo=False, input_names=["image"],
            output_names=["label", "scores"], dynamic_axes={"image": {0: "n"}},
        )  # fmt: skip
    clf = onnx_model(buffer.getvalue())
    np.testing.assert_allclose(clf.predict(image).probs, original.predict(image).probs, atol=1e-5)
