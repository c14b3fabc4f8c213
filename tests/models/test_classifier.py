"""The Classifier: preprocessing, tensors, predictions and targets, from their definitions; the named models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from whylabel import models
from whylabel.models import mnist

# --- preprocessing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(40, 24), (24, 40)])
def test_input_image_crop_1_is_the_centred_square_resized(tiny, noise_image, width, height):
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 8, crop=1.0)
    img = noise_image(width, height)
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    expected = np.asarray(img.crop((left, top, left + side, top + side)).resize((8, 8), Image.Resampling.BICUBIC))

    got = clf.input_image(img)

    assert got.dtype == np.uint8
    assert got.shape == (8, 8, 3)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("width", "height", "crop"), [(40, 24, 1.0), (41, 24, 1.0), (24, 41, 1.0), (40, 30, 0.875), (25, 37, 0.6)]
)
def test_pixels_outside_the_kept_square_never_reach_the_model(tiny, noise_image, width, height, crop):
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 8, crop=crop)
    pixels = np.asarray(noise_image(width, height, seed=1))
    side = min(width, height) * crop
    left, top = (width - side) / 2, (height - side) / 2
    xs, ys = np.arange(width), np.arange(height)
    outside_x = (xs + 1 <= left) | (xs >= left + side)  # pixels that lie wholly outside the square
    outside_y = (ys + 1 <= top) | (ys >= top + side)
    outside = outside_y[:, None] | outside_x[None, :]
    assert outside.any()
    other = np.asarray(noise_image(width, height, seed=2))
    outer_changed, inner_changed = pixels.copy(), pixels.copy()
    outer_changed[outside] = other[outside]
    inner_changed[~outside] = other[~outside]

    seen = clf.input_image(Image.fromarray(pixels))

    np.testing.assert_array_equal(clf.input_image(Image.fromarray(outer_changed)), seen)
    assert not np.array_equal(clf.input_image(Image.fromarray(inner_changed)), seen)


def test_input_image_crop_half_keeps_only_the_centre():
    rng = np.random.default_rng(1)
    centre = rng.integers(0, 200, (16, 16, 3), dtype=np.uint8)
    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    pixels[...] = (0, 0, 255)  # a pure-blue border the crop must drop
    pixels[8:24, 8:24] = centre
    img = Image.fromarray(pixels)

    half = models.from_module(torch.nn.Identity(), ["x"], 16, crop=0.5).input_image(img)
    whole = models.from_module(torch.nn.Identity(), ["x"], 32, crop=1.0).input_image(img)

    np.testing.assert_array_equal(half, centre)  # a 16-px box resized to 16 px is the box itself
    np.testing.assert_array_equal(whole, pixels)
    assert not (half == (0, 0, 255)).all(axis=-1).any()


def test_input_image_is_identity_when_already_model_sized(noise_image):
    clf = models.from_module(torch.nn.Identity(), ["x"], 12, crop=1.0)
    img = noise_image(12, 12, seed=3)

    got = clf.input_image(img)

    np.testing.assert_array_equal(got, np.asarray(img))
    got[...] = 0  # a copy: writing to it leaves the image alone
    assert np.asarray(img).any()


def test_input_image_converts_other_modes_to_rgb():
    clf = models.from_module(torch.nn.Identity(), ["x"], 4, crop=1.0)
    grey = Image.new("L", (4, 4), 77)

    got = clf.input_image(grey)

    assert got.shape == (4, 4, 3)
    assert (got == 77).all()


def test_to_tensor_normalises_each_channel():
    mean, std = (0.5, 0.25, 0.1), (0.2, 0.5, 0.25)
    clf = models.from_module(torch.nn.Identity(), ["x"], 2, mean=mean, std=std)
    pixels = np.zeros((2, 2, 3), dtype=np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 0, 128, 255
    pixels[1, 1] = (51, 102, 204)

    x = clf.to_tensor(pixels)

    assert x.dtype == torch.float32
    assert tuple(x.shape) == (1, 3, 2, 2)
    expected = (pixels.astype(np.float64) / 255 - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(x[0].numpy(), expected.transpose(2, 0, 1), rtol=1e-6, atol=1e-6)
    assert x[0, 0, 0, 0].item() == pytest.approx((0 - 0.5) / 0.2)
    assert x[0, 2, 0, 0].item() == pytest.approx((1 - 0.1) / 0.25)


def test_to_tensor_accepts_a_batch(tiny_clf, noise_image):
    batch = np.stack([np.asarray(noise_image(16, 16, seed=s)) for s in range(3)])

    x = tiny_clf.to_tensor(batch)

    assert tuple(x.shape) == (3, 3, 16, 16)
    torch.testing.assert_close(x[1:2], tiny_clf.to_tensor(batch[1]))


@pytest.mark.parametrize("shape", [(16, 16), (16, 16, 4), (3, 16, 16), (1, 1, 16, 16, 3), (2, 16, 16, 1), (3,)])
def test_to_tensor_rejects_other_shapes(tiny_clf, shape):
    with pytest.raises(ValueError, match="shape"):
        tiny_clf.to_tensor(np.zeros(shape, dtype=np.uint8))


# --- predictions and targets -----------------------------------------------------------------------------------


def five_class_clf(tiny):
    return models.from_module(tiny.TinyConv(n_classes=5, seed=4), ["a", "b", "c", "d", "e"], 16, crop=1.0)


def test_predict_top_k_sorted_and_probs_are_the_softmax(tiny, noise_image):
    clf = five_class_clf(tiny)
    img = noise_image(20, 16)

    prediction = clf.predict(img, k=3)

    logits = clf.module(clf.to_tensor(clf.input_image(img))).detach()[0].double()
    expected = torch.softmax(logits, -1).numpy()
    np.testing.assert_allclose(prediction.probs, expected, rtol=1e-5)
    assert prediction.probs.sum() == pytest.approx(1.0, abs=1e-6)
    assert len(prediction.top) == 3
    assert [i for i, _, _ in prediction.top] == list(np.argsort(-expected)[:3])
    assert [label for _, label, _ in prediction.top] == [clf.labels[i] for i, _, _ in prediction.top]
    probs = [p for _, _, p in prediction.top]
    assert probs == sorted(probs, reverse=True)
    assert probs == pytest.approx([expected[i] for i, _, _ in prediction.top], rel=1e-5)


def test_predict_k_larger_than_classes_gives_all_of_them(tiny_clf, noise_image):
    assert len(tiny_clf.predict(noise_image(16, 16), k=10).top) == 3


def test_predict_rejects_k_below_one(tiny_clf, noise_image):
    with pytest.raises(ValueError, match="k"):
        tiny_clf.predict(noise_image(16, 16), k=0)


def test_resolve_target_by_index_label_and_none(tiny, noise_image):
    clf = five_class_clf(tiny)
    img = noise_image(16, 16)

    assert clf.resolve_target(3, img) == 3
    assert clf.resolve_target(np.int64(4), img) == 4
    assert clf.resolve_target("b", img) == 1
    assert clf.resolve_target(None, img) == int(np.argmax(clf.predict(img).probs))


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (3, "0..2"),
        (-1, "0..2"),
        (100, "0..2"),
        ("horse", "'cat', 'dog', 'fish'"),
        (True, "class index from 0 to 2, a label or None"),
        (False, "class index from 0 to 2, a label or None"),
        (1.0, "class index from 0 to 2, a label or None"),
    ],
)
def test_resolve_target_refusals(tiny_clf, noise_image, target, message):
    with pytest.raises(ValueError, match=message):
        tiny_clf.resolve_target(target, noise_image(16, 16))


# --- from_module validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crop": 0.0}, "crop"),
        ({"crop": -0.5}, "crop"),
        ({"crop": 1.01}, "crop"),
        ({"crop": float("nan")}, "crop"),
        ({"input_size": 0}, "input_size"),
        ({"input_size": -4}, "input_size"),
        ({"input_size": 16.0}, "input_size"),
        ({"input_size": True}, "input_size"),
        ({"mean": (0.5, 0.5)}, "mean"),
        ({"mean": (0.5, 0.5, 0.5, 0.5)}, "mean"),
        ({"std": (0.2,)}, "std"),
        ({"std": (0.2, 0.0, 0.2)}, "std"),
        ({"labels": []}, "labels"),
    ],
)
def test_from_module_validations(tiny, kwargs, message):
    arguments = {"module": tiny.TinyConv(), "labels": tiny.labels, "input_size": 16, **kwargs}
    with pytest.raises(ValueError, match=message):
        models.from_module(**arguments)


def test_from_module_rejects_a_non_module():
    with pytest.raises(ValueError, match=r"torch\.nn\.Module"):
        models.from_module(lambda x: x, ["a"], 8)


def test_from_module_keeps_its_settings_and_puts_the_module_in_eval_mode(tiny):
    module = tiny.TinyConv().train()

    clf = models.from_module(module, (0, 1, 2), 24, mean=[0.1, 0.2, 0.3], std=[1, 2, 3], crop=0.75, name="mine")

    assert (clf.name, clf.input_size, clf.crop) == ("mine", 24, 0.75)
    assert clf.labels == ["0", "1", "2"]
    assert clf.mean == (0.1, 0.2, 0.3)
    assert clf.std == (1.0, 2.0, 3.0)
    assert not module.training


# --- the named models ------------------------------------------------------------------------------------------


def test_available_models():
    names = models.available()
    assert sorted(names) == [
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
        "mnist_cnn",
        "mnist_marked",
    ]
    assert names[0] == "efficientnet_lite0"  # the default comes first


def test_unknown_model_lists_the_names():
    with pytest.raises(ValueError, match="resnet") as info:
        models.load("resnet")
    for name in models.available():
        assert name in str(info.value)


def test_load_returns_the_same_classifier_each_time(lite0):
    assert models.load("efficientnet_lite0") is lite0


def test_efficientnet_lite0_preprocessing(lite0):
    assert lite0.input_size == 224
    assert lite0.crop == pytest.approx(224 / 256)
    assert lite0.input_image(Image.new("RGB", (300, 200))).shape == (224, 224, 3)


def test_efficientnet_labels_are_1000_distinct_names(lite0):
    labels = lite0.labels
    assert len(labels) == 1000
    assert all(isinstance(label, str) and label.strip() for label in labels)
    assert len(set(labels)) == 1000
    assert labels[281] == "tabby"
    assert "crane" in labels[134] and "crane" in labels[517]
    assert labels[134] != labels[517]
    assert labels[638] != labels[639]


def test_efficientnet_top1_for_the_cat_photo_is_a_cat(lite0):
    prediction = lite0.predict(models.sample_image("chelsea (cat)"), k=5)

    assert 281 <= prediction.top[0][0] <= 285
    assert prediction.top[0][2] > 0.2


def test_mnist_split_is_fixed_disjoint_and_held_out():
    images, labels = mnist.digits()
    train, test = mnist.split()

    assert images.shape == (5000, 28, 28, 3) and images.dtype == np.uint8
    assert len(test) == 1000 and len(train) == 4000
    assert not set(train) & set(test)
    np.testing.assert_array_equal(mnist.split()[1], test)
    assert set(np.unique(labels[test])) == set(range(10))


def test_mnist_cnn_accuracy_recorded_and_remeasured():
    clf = models.load("mnist_cnn")
    images, labels = mnist.digits()
    test = mnist.split()[1]

    predicted = clf.logits(images[test]).argmax(-1).numpy()
    measured = float((predicted == labels[test]).mean())

    assert mnist.recorded_accuracy() >= 0.95
    assert measured >= 0.95
    assert measured == pytest.approx(mnist.recorded_accuracy(), abs=0.005)


def test_mnist_default_image_is_the_digit_it_shows():
    clf = models.load("mnist_cnn")
    name = models.default_image_for("mnist_cnn")
    assert name == "mnist digit 3"
    assert clf.predict(models.sample_image(name)).top[0][1] == "3"


class NanScores(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((len(x), 3), float("nan"))


def test_predict_refuses_nan_scores_with_a_message(noise_image):
    clf = models.from_module(NanScores(), ["a", "b", "c"], 8, crop=1.0, name="broken")
    with pytest.raises(ValueError, match="broken returned NaN or infinite scores for this image"):
        clf.predict(noise_image(8, 8))
