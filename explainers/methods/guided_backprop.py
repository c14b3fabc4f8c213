"""Guided Backpropagation (Springenberg et al., 2015) through Captum, refused where it would not be itself."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import torch
from captum.attr import GuidedBackprop as CaptumGuidedBackprop

from whylabel.explainers.base import Explainer, Job
from whylabel.explainers.methods.gradcam import SCRIPTED
from whylabel.explainers.registry import register

IGNORED = (torch.nn.ReLU6, torch.nn.Hardtanh, torch.nn.LeakyReLU, torch.nn.SiLU, torch.nn.GELU, torch.nn.ELU)
"""Activations Captum's guided backprop does not modify: only `torch.nn.ReLU` modules get the guided rule."""


@register
class GuidedBackprop(Explainer):
    name = "guided_backprop"
    title = "Guided Backprop"
    paper = "Springenberg, Dosovitskiy, Brox & Riedmiller (2015), Striving for Simplicity"
    paper_url = "https://arxiv.org/abs/1412.6806"
    how_to_read = (
        "The gradient, with negative gradients stopped at every ReLU on the way back: sharp, edge-like maps. "
        "Known to depend little on the model's higher layers (see the sanity check). Refused for models whose "
        "ReLUs Captum cannot modify (reused modules, ReLU6), where it would silently return the plain gradient."
    )
    signed = False
    default_on = False

    def compute(self, job: Job) -> tuple[np.ndarray, dict[str, Any]]:
        problem = why_invalid(job.clf.module, job.tensor())
        if problem:
            raise ValueError(f"guided backprop is not valid for {job.clf.name}: {problem}")
        x = job.tensor().requires_grad_(True)
        grads = CaptumGuidedBackprop(job.model()).attribute(x, target=job.target)
        job.progress(1.0)
        return grads.detach()[0].abs().amax(dim=0).numpy(), {}


def why_invalid(module: torch.nn.Module, x: torch.Tensor) -> str | None:
    """Why Captum's guided rule would not reach every activation, or None when it would.

    Captum swaps the backward pass of each `torch.nn.ReLU` module through hooks; a module used twice in one
    forward pass breaks that, and other activations (ReLU6, SiLU, ...) are left as plain gradients.
    """
    if isinstance(module, torch.jit.ScriptModule):
        return f"Captum's guided rule hooks each ReLU, and {SCRIPTED}"
    calls: Counter[str] = Counter()
    names = {m: n for n, m in module.named_modules()}
    handles = [
        m.register_forward_hook(lambda mod, *_: calls.update([names[mod]]))
        for m in module.modules()
        if isinstance(m, (torch.nn.ReLU, *IGNORED))
    ]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for handle in handles:
            handle.remove()
    others = sorted({type(m).__name__ for m in module.modules() if isinstance(m, IGNORED)})
    if others:
        return f"it uses {', '.join(others)}, which Captum's guided backprop leaves as the plain gradient"
    reused = sorted(name for name, n in calls.items() if n > 1)
    if reused:
        return f"ReLU modules are reused within one forward pass ({', '.join(reused[:3])}), so Captum's hooks misfire"
    if not calls:
        return "it has no torch.nn.ReLU modules for the guided rule to modify (functional ReLUs cannot be seen)"
    return None
