"""The path a user would otherwise write in a notebook: each library called as its tutorial shows.

- Captum `Saliency` (abs gradients, summed over channels as `visualize_image_attr` shows them);
- Captum `Occlusion`, window 15, stride 8, baseline 0 (the normalised mean colour), one image per pass;
- `lime_image` with 1,000 samples, its default quickshift segmentation, hide colour 0, batches of 10;
- a SHAP Partition explainer with `blur(128,128)` and 500 evaluations, batches of 50.

Every forward pass is plain eager PyTorch on `clf.module`. Each function returns a map aligned with the
model-view pixels and the number of images the model was shown.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shap
import torch
from captum.attr import Occlusion, Saliency
from lime import lime_image

from whylabel.models import Classifier

lime_image.tqdm = lambda rows: rows  # the tutorial's progress bar would only clutter the benchmark's output

Notebook = Callable[[Classifier, np.ndarray, int], tuple[np.ndarray, int]]


def probabilities(clf: Classifier, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(clf.module(clf.to_tensor(images)), dim=1).numpy()


def saliency(clf: Classifier, pixels: np.ndarray, target: int) -> tuple[np.ndarray, int]:
    x = clf.to_tensor(pixels).requires_grad_(True)
    grads = Saliency(clf.module).attribute(x, target=target)
    return grads.detach()[0].sum(dim=0).numpy(), 1


def occlusion(clf: Classifier, pixels: np.ndarray, target: int) -> tuple[np.ndarray, int]:
    seen = [0]

    def forward(x: torch.Tensor) -> torch.Tensor:
        seen[0] += len(x)
        return clf.module(x)

    with torch.no_grad():
        att = Occlusion(forward).attribute(
            clf.to_tensor(pixels), target=target, sliding_window_shapes=(3, 15, 15), strides=(3, 8, 8), baselines=0
        )
    return att[0].sum(dim=0).numpy(), seen[0]


def lime(clf: Classifier, pixels: np.ndarray, target: int) -> tuple[np.ndarray, int]:
    seen = [0]

    def batch_predict(images: np.ndarray) -> np.ndarray:
        seen[0] += len(images)
        return probabilities(clf, images)

    explanation = lime_image.LimeImageExplainer().explain_instance(
        np.array(pixels), batch_predict, top_labels=5, hide_color=0, num_samples=1000
    )
    weights = dict(explanation.local_exp[target])
    segments = explanation.segments
    return np.vectorize(lambda s: weights.get(s, 0.0))(segments).astype(np.float32), seen[0]


def shap_partition(clf: Classifier, pixels: np.ndarray, target: int) -> tuple[np.ndarray, int]:
    seen = [0]

    def f(images: np.ndarray) -> np.ndarray:
        seen[0] += len(images)
        with torch.no_grad():
            return clf.module(clf.to_tensor(images)).numpy()

    image = np.asarray(pixels, dtype=np.float64)
    masker = shap.maskers.Image("blur(128,128)", image.shape)
    explainer = shap.Explainer(f, masker)
    values = explainer(image[None], max_evals=500, batch_size=50, outputs=[target], silent=True).values
    return np.asarray(values)[0, ..., 0].sum(axis=-1), seen[0]


METHODS: dict[str, Notebook] = {"saliency": saliency, "occlusion": occlusion, "lime": lime, "shap": shap_partition}
