"""How far to trust a map: faithfulness, a sanity check with randomised weights, and stability over seeds.

- `evaluate`: deletion and insertion curves of the map beside those of a random map (Petsiuk et al., 2018).
- `sanity`: the model-parameter randomisation test of Adebayo et al., "Sanity Checks for Saliency Maps"
  (NeurIPS 2018). Re-draw the weights from the top layer down and re-run the method; a map that explains
  the model changes (Spearman correlation near 0), a map that only reflects the image does not.
- `stability`: mean pairwise Spearman correlation of the maps from several seeds (1.0 for methods that
  use no randomness).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy.stats import spearmanr

from explainers.base import Attribution, Param, Progress, shown
from explainers.explain import check_inputs, check_seed, explain, resolve_contrast
from explainers.faithfulness import STEPS, curve, random_map
from explainers.fill import FILL
from explainers.registry import get
from models import Classifier
from models.locks import module_lock

MAX_SEEDS = 20
"""Seeds one stability check may run: each is a full run of the method."""
CASCADE_STEPS = Param("steps", 4, "Depths in a quick sanity cascade.", low=1, high=100)


def evaluate(clf: Classifier, img: Image.Image, att: Attribution, steps: int = 20, fill: str = "blur") -> dict:
    """Deletion and insertion AUCs of `att` and of a random map (seeded like `att`), with the curves.

    The curves follow the target's probability, less the contrast class's for a contrastive map.
    """
    steps, fill = STEPS.check(steps), FILL.check(fill)
    check_inputs(clf, img, None)
    check_attribution(clf, att)
    pixels = clf.input_image(img)
    maps = {"": att.heatmap, "random_": random_map(pixels.shape[:2], seed=att.params.get("seed", 0))}
    versus = "" if att.contrast is None else f" - p({att.contrast_label})"
    out: dict[str, Any] = {"curves": {}, "score": f"p({att.label}){versus}"}
    for prefix, heatmap in maps.items():
        for mode in ("deletion", "insertion"):
            c = curve(clf, pixels, heatmap, att.target, mode=mode, steps=steps, fill=fill, contrast=att.contrast)
            out[f"{prefix}{mode}_auc"] = c.auc
            out["curves"][f"{prefix}{mode}"] = c
    return out


def check_attribution(clf: Classifier, att: Any) -> None:
    """ValueError unless `att` is an Attribution whose target and contrast are classes of `clf`."""
    if not isinstance(att, Attribution):
        raise ValueError(f"att must be an Attribution from explainers.explain; got {shown(att)}")
    last = len(clf.labels) - 1
    for what, index in (("target", att.target), ("contrast", att.contrast)):
        if index is not None and not 0 <= index <= last:
            raise ValueError(f"the map's {what} {index} is outside this model's labels: valid indices are 0..{last}")


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps; 0 when either is constant (no ranking to compare)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(np.ravel(a), np.ravel(b)).statistic)


def layers_top_down(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The submodules that own parameters, from the output end back to the input, as the paper cascades."""
    owners = [(name, m) for name, m in module.named_modules() if any(True for _ in m.parameters(recurse=False))]
    return owners[::-1]


def randomised(clf: Classifier, layers: int | None = None, seed: int = 0) -> Classifier:
    """A copy of `clf` with the weights of its top `layers` parametrised layers (all if None) re-initialised.

    Layers with `reset_parameters` get their own initialisation; others get Gaussian weights with the
    original's mean and standard deviation. The original classifier is not touched. The copy's engine uses
    the original's backend and batch size rather than timing its own.
    """
    with module_lock(clf.module):  # another session's hooks must not be copied with it
        module = copy.deepcopy(clf.module)
    chosen = layers_top_down(module)[: layers if layers is not None else None]
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        for _, layer in chosen:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
            else:
                for p in layer.parameters(recurse=False):
                    p.copy_(torch.randn_like(p) * p.std().nan_to_num(1.0) + p.mean())
    name = f"{clf.name} (randomised {'all' if layers is None else layers} layers)"
    fast = clf.engine()  # the copy has the same shapes: reuse the backend and batch size, skip the timing
    return dataclasses.replace(clf, module=module, name=name, backend=clf.backend, batch_size=fast.batch_size)


def sanity_cascade(
    clf: Classifier,
    img: Image.Image,
    method: str,
    target: int | str | None = None,
    seed: int = 0,
    depths: Collection[int] | None = None,
    contrast: int | str | None = None,
    progress: Progress | None = None,
    **params: Any,
) -> list[dict[str, Any]]:
    """Re-run `method` after randomising the top k layers, for each k in `depths` (default: every layer).

    Each step: the layers randomised, the deepest one's name, the randomised map and its Spearman rank
    correlation with the trained model's map. The last layer count is the full randomisation. `progress`
    hears the fraction of all the runs done.
    """
    check_inputs(clf, img, progress)
    names = [name or "(whole model)" for name, _ in layers_top_down(clf.module)]
    chosen = check_depths(depths, len(names))  # before the first run, not after it
    runs = len(chosen) + 1
    original = explain(
        clf, img, method, target=target, seed=seed, contrast=contrast, progress=share(progress, 0, runs), **params
    )
    steps = []
    for run, k in enumerate(chosen, start=1):
        randomised_clf = randomised(clf, k, seed)
        att = explain(
            randomised_clf, img, method, target=original.target, seed=seed, contrast=contrast,
            progress=share(progress, run, runs), **params,
        )  # fmt: skip
        correlation = rank_correlation(original.heatmap, att.heatmap)
        steps.append({"layers": k, "down_to": names[k - 1], "correlation": correlation, "heatmap": att.heatmap})
    return steps


def share(progress: Progress | None, run: int, runs: int) -> Progress | None:
    """The progress of one run out of `runs`, reported as the fraction of them all done."""
    if progress is None:
        return None
    return lambda done: progress((run + done) / runs)


def check_depths(depths: Collection[int] | None, layers: int) -> list[int]:
    """The sorted, distinct layer counts to randomise (every one when None); ValueError stating the range."""
    if layers == 0:
        raise ValueError("the sanity check needs a model with weights to randomise; this one has none")
    depth = Param("depths", layers, "Top layers randomised (the layers with weights).", low=1, high=layers)
    if depths is None:
        return list(range(1, layers + 1))
    most = 10 * layers
    items = listed(depths, most)
    if not items:
        raise ValueError(f"depths must be a list of 1 to {most} counts, each {depth.describe()}; got {shown(depths)}")
    return sorted({depth.check(k) for k in items})


def cascade_depths(clf: Classifier, steps: int = 4) -> list[int]:
    """A few evenly spread depths for a quick cascade: the top layer, ..., all layers."""
    steps = CASCADE_STEPS.check(steps)
    total = len(layers_top_down(clf.module))
    return sorted({1, *(round(total * i / steps) for i in range(1, steps + 1))} - {0})


def sanity(
    clf: Classifier,
    img: Image.Image,
    method: str,
    target: int | str | None = None,
    seed: int = 0,
    contrast: int | str | None = None,
    **params: Any,
) -> float:
    """Spearman rank correlation between the maps of the trained and the fully randomised model."""
    steps = sanity_cascade(clf, img, method, target, seed, [len(layers_top_down(clf.module))], contrast, **params)
    return steps[-1]["correlation"]


def stability_details(
    clf: Classifier,
    img: Image.Image,
    method: str,
    seeds: Collection[int] = (0, 1, 2),
    target: int | str | None = None,
    contrast: int | str | None = None,
    progress: Progress | None = None,
    **params: Any,
) -> dict[str, Any]:
    """The maps of several seeds: their mean, per-pixel spread, mean pairwise Spearman and top-10% overlap."""
    seeds = check_seeds(seeds)
    maps = np.stack(
        [
            explain(clf, img, method, target, s, share(progress, i, len(seeds)), contrast, **params).heatmap
            for i, s in enumerate(seeds)
        ]
    )
    pairs = list(itertools.combinations(range(len(maps)), 2))
    return {
        "mean": maps.mean(axis=0),
        "disagreement": maps.std(axis=0),
        "spearman": float(np.mean([rank_correlation(maps[i], maps[j]) for i, j in pairs])),
        "top10_overlap": float(np.mean([top_overlap(maps[i], maps[j]) for i, j in pairs])),
    }


def stability(
    clf: Classifier,
    img: Image.Image,
    method: str,
    seeds: Collection[int] = (0, 1, 2),
    target: int | str | None = None,
    contrast: int | str | None = None,
    **params: Any,
) -> float:
    """1.0 for methods that use no randomness; otherwise the mean pairwise Spearman correlation, in [0, 1]."""
    cls = get(method)
    if not cls.stochastic:  # no run needed, but the same refusals as a real run
        check_inputs(clf, img, None)
        cls.resolve(params, clf.input_size)
        check_seeds(seeds)
        resolve_contrast(clf, img, contrast, clf.resolve_target(target, img))
        return 1.0
    details = stability_details(clf, img, method, seeds, target, contrast, **params)
    return min(max(details["spearman"], 0.0), 1.0)


def check_seeds(seeds: Collection[int]) -> list[int]:
    """The seeds as ints: 2 to MAX_SEEDS of them, at least two different; ValueError stating the range."""
    items = listed(seeds, MAX_SEEDS)
    if items is None or len(items) < 2:
        raise ValueError(f"seeds must be a list of 2 to {MAX_SEEDS} seeds; got {shown(seeds)}")
    chosen = [check_seed(seed) for seed in items]
    if len(set(chosen)) < 2:
        raise ValueError(f"stability needs at least two different seeds; got {chosen!r}")
    return chosen


def listed(value: Any, most: int) -> list[Any] | None:
    """The items of a collection of at most `most` (not a string, not a one-shot iterator), or None."""
    if isinstance(value, str | bytes) or not isinstance(value, Collection):
        return None
    try:
        size = len(value)
    except TypeError:  # a 0-d numpy array
        return None
    return list(value) if size <= most else None


def top_overlap(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> float:
    """Share of the top `fraction` of pixels (by value) that two maps have in common."""
    k = max(1, round(a.size * fraction))
    top_a = set(np.argsort(-a.ravel(), kind="stable")[:k].tolist())
    top_b = set(np.argsort(-b.ravel(), kind="stable")[:k].tolist())
    return len(top_a & top_b) / k


def agreement(maps: Sequence[np.ndarray]) -> np.ndarray:
    """Spearman rank correlations between every pair of maps (1 on the diagonal)."""
    n = len(maps)
    out = np.eye(n)
    for i, j in itertools.combinations(range(n), 2):
        out[i, j] = out[j, i] = rank_correlation(maps[i], maps[j])
    return out
