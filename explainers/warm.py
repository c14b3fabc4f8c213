"""`warm_up`: pay one-off start-up costs (numba compiling SHAP's code) before a user waits on them."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from whylabel.explainers.explain import explain
from whylabel.models import from_module

SIZE = 16


class _Mean(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3))
        return torch.stack([mean, -mean], dim=-1)


def warm_up() -> None:
    """Run SHAP and LIME once on a 16-px image and a two-class model: about 15 s of numba compilation here.

    numba compiles per argument type, and these runs pass the same types as real ones (float32 images,
    float64 outputs), so a real panel afterwards starts at once.
    """
    clf = from_module(_Mean(), ["a", "b"], SIZE, crop=1.0, name="warm-up", backend="torch")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    explain(clf, image, "shap", target=0, evaluations=20)
    explain(clf, image, "lime", target=0, samples=10, n_segments=4)
