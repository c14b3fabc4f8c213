"""The model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

Re-draw the weights from the top layer down and re-run the method; a map that explains the model changes
(Spearman correlation near 0), a map that only reflects the image does not. The verdict and its rule live
here, so the page, the record and the audit say the same.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import torch

from whylabel.explainers.base import Param, Progress, shown
from whylabel.explainers.explain import Request, check_request, needs_gradients, run
from whylabel.models import Classifier, worker
from whylabel.models.locks import module_lock
from whylabel.models.remote import is_remote, keep, model
from whylabel.trust.agreement import rank_correlation
from whylabel.trust.progress import listed, share

PASS_BELOW = 0.5
"""|Spearman| between the trained and the fully randomised model's maps under which the check passes."""
RULE = f"passes when |Spearman| between the trained and the fully randomised model's maps is below {PASS_BELOW}"
CASCADE_STEPS = Param("steps", 4, "Depths in a quick sanity cascade.", low=1, high=100)


@dataclass(frozen=True)
class Verdict:
    """The sanity check's outcome for one map: the correlation, whether it passes, and the rule in words."""

    correlation: float
    passed: bool
    rule: str = RULE

    @property
    def says(self) -> str:
        return (
            "passes: the map depends on the model's weights"
            if self.passed
            else "fails: the map barely changes when the model is destroyed"
        )

    def record(self) -> dict[str, Any]:
        return {"correlation": self.correlation, "passed": self.passed, "rule": self.rule}


def verdict(correlation: float) -> Verdict:
    """Pass or fail for the correlation after full randomisation (`PASS_BELOW`)."""
    return Verdict(float(correlation), bool(abs(correlation) < PASS_BELOW))


def layer_names(clf: Classifier) -> list[str]:
    """The names of the parametrised layers, output end first; for a user's model, as its worker reported."""
    if is_remote(clf):
        return list(clf.layer_names)  # type: ignore[attr-defined]
    return [name or "(whole model)" for name, _ in layers_top_down(clf.module)]


def layers_top_down(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The submodules that own parameters, from the output end back to the input, as the paper cascades."""
    owners = [(name, m) for name, m in module.named_modules() if any(True for _ in m.parameters(recurse=False))]
    return owners[::-1]


def randomised(clf: Classifier, layers: int | None = None, seed: int = 0) -> Classifier:
    """A copy of `clf` with the weights of its top `layers` parametrised layers (all if None) re-initialised.

    Layers with `reset_parameters` get their own initialisation; others get Gaussian weights with the
    original's mean and standard deviation. The original classifier is not touched. The copy's engine uses
    the original's backend and batch size rather than timing its own. A user's model is copied in its worker.
    """
    name = f"{clf.name} (randomised {'all' if layers is None else layers} layers)"
    if is_remote(clf):
        return clf.derived(clf.call("randomised", layers, seed), name)  # type: ignore[attr-defined]
    with module_lock(clf.module):  # another session's hooks must not be copied with it
        module = copy.deepcopy(clf.module)
    chosen = layers_top_down(module)[: layers if layers is not None else None]
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        for _, layer in chosen:
            reset = getattr(layer, "reset_parameters", None)
            if callable(reset):
                reset()
            else:
                for p in layer.parameters(recurse=False):
                    p.copy_(torch.randn_like(p) * p.std().nan_to_num(1.0) + p.mean())
    fast = clf.engine()  # the copy has the same shapes: reuse the backend and batch size, skip the timing
    return dataclasses.replace(clf, module=module, name=name, backend=clf.backend, batch_size=fast.batch_size)


@worker.operation("randomised")
def worker_randomised(model_id: str, layers: int | None, seed: int) -> str:
    """`randomised` in a user's model's worker; the copy's id there."""
    return keep(randomised(model(model_id), layers, seed))


worker.PLUGINS.append("whylabel.trust.sanity")


def sanity_cascade(
    request: Request, depths: Collection[int] | None = None, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Re-run the request after randomising the top k layers, for each k in `depths` (default: every layer).

    Each step: the layers randomised, the deepest one's name, the randomised map and its Spearman rank
    correlation with the trained model's map. The last layer count is the full randomisation. `progress`
    hears the fraction of all the runs done.
    """
    check_request(request)
    if not request.clf.gradients:
        raise ValueError(needs_gradients("the randomisation sanity check (it re-draws weights in torch)", request.clf))
    names = layer_names(request.clf)
    chosen = check_depths(depths, len(names))  # before the first run, not after it
    runs = len(chosen) + 1
    original = run(request, share(progress, 0, runs))
    steps = []
    for step, k in enumerate(chosen, start=1):
        att = run(request.with_model(randomised(request.clf, k, request.seed)), share(progress, step, runs))
        correlation = rank_correlation(original.heatmap, att.heatmap)
        steps.append({"layers": k, "down_to": names[k - 1], "correlation": correlation, "heatmap": att.heatmap})
    return steps


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
    total = len(layer_names(clf))
    return sorted({1, *(round(total * i / steps) for i in range(1, steps + 1))} - {0})


def sanity(request: Request, progress: Progress | None = None) -> Verdict:
    """The verdict from the rank correlation between the maps of the trained and the fully randomised model."""
    check_request(request)
    full = len(layer_names(request.clf))
    return verdict(sanity_cascade(request, [full], progress)[-1]["correlation"])
