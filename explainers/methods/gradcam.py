"""Grad-CAM (Selvaraju et al., 2017) through Captum's `LayerGradCam`, on a convolutional layer chosen by position."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam

from whylabel.explainers.base import Explainer, Job, Param
from whylabel.explainers.registry import register

LAYERS = ("last", "second last", "third last", "middle")
SCRIPTED = (
    "a TorchScript model's layers take no hooks: upload its state_dict with a known architecture to use this method"
)


@register
class GradCam(Explainer):
    name = "gradcam"
    title = "Grad-CAM"
    paper = "Selvaraju et al. (2017), Grad-CAM: Visual Explanations from Deep Networks"
    paper_url = "https://arxiv.org/abs/1610.02391"
    how_to_read = (
        "The feature maps of one convolutional layer, each weighted by the average gradient of the target's "
        "logit with respect to it, summed, kept where positive, and scaled up to the image. Coarse (the "
        "layer's own resolution) and unsigned: it shows where the features that raise the score are active."
    )
    signed = False
    default_on = False
    params = (Param("layer", "last", "Which convolutional layer, counted from the output.", choices=LAYERS),)

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        name, layer = conv_layer(job.clf.module, job.params["layer"])
        x = job.tensor()
        cam = LayerGradCam(job.model(), layer).attribute(x, target=job.target, relu_attributions=True)
        job.progress(1.0)
        resolution = tuple(cam.shape[-2:])
        up = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")
        return up.detach()[0, 0].numpy(), {"layer": name, "resolution": resolution}


def conv_layer(module: torch.nn.Module, which: str) -> tuple[str, torch.nn.Module]:
    """The named `nn.Conv2d` at a position counted from the output; ValueError if the model has none."""
    if isinstance(module, torch.jit.ScriptModule):
        raise ValueError(f"Grad-CAM hooks a layer, and {SCRIPTED}")
    convs = [(name, m) for name, m in module.named_modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise ValueError("Grad-CAM needs a convolutional layer (torch.nn.Conv2d); this model has none")
    if which == "middle":
        return convs[len(convs) // 2]
    return convs[-min(LAYERS.index(which) + 1, len(convs))]
