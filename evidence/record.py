"""Evidence for one image: the prediction, the maps and their scores, and a provenance record another person
can check (`record.json`): versions, the weights' and image's sha256, preprocessing, parameters, map hashes."""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from whylabel import explainers, models, trust
from whylabel.explainers import kept
from whylabel.explainers.explain import check_seed, resolve_contrast
from whylabel.models.identity import weights_sha256
from whylabel.render import Display
from whylabel.store.environment import environment
from whylabel.trust import kept as kept_scores
from whylabel.whatif import Edit, counterfactual, sufficient

RECORD_FORMAT = 1
SCORES = ("deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc")
RANGES = ("random_deletion_range", "random_insertion_range")


@dataclass
class Evidence:
    """Everything one image's evidence is made of; `record()` is its provenance as plain JSON data."""

    clf: models.Classifier
    name: str
    image: Image.Image
    image_sha256: str
    image_sha256_of: str
    pixels: np.ndarray
    prediction: models.Prediction
    target: int
    contrast: int | None
    attributions: list[explainers.Attribution]
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per method: its faithfulness scores (`trust.evaluate`), plus "sanity" (a `trust.Verdict`) and
    "stability" (the mean pairwise Spearman) where those checks were run."""
    failures: dict[str, str] = field(default_factory=dict)
    """Methods that could not be computed, with the reason."""
    display: Display = field(default_factory=Display)
    """How the maps were drawn on screen: the figure uses the same scale, clipping percentile and opacity."""
    edits: list[Edit] = field(default_factory=list)
    """What-if sets (`whylabel.whatif`) where they were searched."""

    def record(self) -> dict[str, Any]:
        return {
            "record_format": RECORD_FORMAT,
            "versions": versions(),
            "code_sha256": environment()["code_sha256"],
            "runtime": runtime(),
            "model": model_record(self.clf),
            "image": image_record(self),
            "target": class_record(self, self.target),
            "contrast": None if self.contrast is None else class_record(self, self.contrast),
            "top5": [class_record(self, index) for index, _, _ in self.prediction.top[:5]],
            "colour_scale": colour_scale(self.display),
            "display": {
                "shared": self.display.shared,
                "percentile": self.display.percentile,
                "opacity": self.display.opacity,
            },
            "methods": [method_record(att, self.scores.get(att.method, {})) for att in self.attributions],
            "failures": dict(self.failures),
            "whatif": [edit_record(self, edit) for edit in self.edits],
        }


def collect(
    clf: models.Classifier,
    image: Image.Image,
    methods: Sequence[str],
    name: str = "image",
    image_bytes: bytes | None = None,
    target: int | str | None = None,
    contrast: int | str | None = None,
    seed: int = 0,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    score: bool = True,
    display: Display | None = None,
    keep: bool = True,
    whatif: bool = False,
) -> Evidence:
    """Explain `image` with each method and score every map; a method that fails is recorded, not raised.

    With `keep`, maps and scores are read from and written to the result store (`store.results`), which
    the page shares; without it, every one is computed anew and nothing is kept. With `whatif`, the
    counterfactual and sufficient sets of the top-1 class are searched too (defaults; a failure is recorded).

    `image_bytes` (the file as read) makes the record's image hash the file's; otherwise it is the hash of
    the decoded RGB pixels. Bad arguments common to every method (target, contrast, seed) raise ValueError.
    """
    for method in methods:
        explainers.get(method)  # an unknown method is a mistake in the request, not a failure of the method
    seed = check_seed(seed)
    index = clf.resolve_target(target, image)
    versus = resolve_contrast(clf, image, contrast, index)
    pixels = clf.input_image(image)
    sha, of = image_hash(image, image_bytes)
    prediction = clf.predict(image, k=5)
    evidence = Evidence(clf, name, image, sha, of, pixels, prediction, index, versus, [], display=display or Display())
    baseline = None
    for method in methods:
        try:
            request = explainers.Request.make(
                clf, image, method, target=index, seed=seed, contrast=versus, **(params or {}).get(method, {})
            )
            att = kept.attribution(request, keep=keep)
        except ValueError as err:  # refused for this model or these parameters: say so, go on with the others
            evidence.failures[method] = str(err)
            continue
        evidence.attributions.append(att)
        if score:
            baseline = baseline or kept_scores.baseline(att, keep)  # one set of random maps for every method
            evidence.scores[method] = kept_scores.scores(att, baseline, keep)
    if whatif:
        for search in (counterfactual, sufficient):
            try:
                evidence.edits.append(search(clf, image, seed=seed))
            except ValueError as err:
                evidence.failures[search.__name__] = str(err)
    return evidence


def edit_record(evidence: Evidence, edit: Edit) -> dict[str, Any]:
    """A what-if set as JSON: which superpixels, the classes before and after, and what the search cost."""
    return {
        "kind": edit.kind,
        "found": edit.found,
        "superpixels": sorted(int(s) for s in edit.changed),
        "of_superpixels": int(edit.segments.max()) + 1,
        "before": class_record(evidence, edit.before),
        "after": {"index": edit.after, "label": evidence.clf.labels[edit.after]},
        "before_probability_after_edit": edit.after_probability,
        "evaluations": edit.evaluations,
        "seconds": round(edit.seconds, 4),
        "params": dict(edit.params),
        "message": edit.message,
        "pixels_in": f"heatmaps.npz: whatif_{edit.kind} (the edited view), whatif_segments",
    }


def image_hash(image: Image.Image, image_bytes: bytes | None) -> tuple[str, str]:
    if image_bytes is not None:
        return sha256(image_bytes), "file"
    return sha256(np.asarray(image.convert("RGB")).tobytes()), "rgb pixels"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def heatmap_sha256(heatmap: np.ndarray) -> str:
    """sha256 of the map's float32 bytes in C order: what `heatmaps.npz` holds."""
    return sha256(np.ascontiguousarray(heatmap, dtype=np.float32).tobytes())


def versions() -> dict[str, str]:
    """whylabel's, Python's and every library's version, from the one `environment()` the result store's key
    uses too ("not installed" where a library is missing)."""
    env = environment()
    libraries = {name: found or "not installed" for name, found in env["libraries"].items()}
    return {"python": env["python"], "whylabel": env["whylabel"], **libraries}


def runtime() -> dict[str, Any]:
    """What else decides the maps' last bits: gradient maps depend on torch's thread count (the order of
    its sums), so a map reproduces byte for byte with the same versions, CPU type and thread count."""
    return {"torch_threads": torch.get_num_threads(), "machine": platform.machine(), "system": platform.system()}


def model_record(clf: models.Classifier) -> dict[str, Any]:
    digest, of = weights_sha256(clf)
    fast = clf.engine()
    return {
        "name": clf.name,
        "weights_sha256": digest,
        "weights_sha256_of": of,
        "classes": len(clf.labels),
        "engine": {"backend": fast.backend, "batch_size": fast.batch_size},
    }


def image_record(evidence: Evidence) -> dict[str, Any]:
    clf = evidence.clf
    return {
        "name": evidence.name,
        "sha256": evidence.image_sha256,
        "sha256_of": evidence.image_sha256_of,
        "width": evidence.image.width,
        "height": evidence.image.height,
        "preprocessing": {
            "input_size": clf.input_size,
            "crop": clf.crop,
            "resample": Image.Resampling(clf.resample).name.lower(),
            "mean": list(clf.mean),
            "std": list(clf.std),
        },
        "model_input_sha256": sha256(np.ascontiguousarray(evidence.pixels).tobytes()),
    }


def class_record(evidence: Evidence, index: int) -> dict[str, Any]:
    probability = float(evidence.prediction.probs[index])
    return {"index": index, "label": evidence.clf.labels[index], "probability": probability}


def plain(value: Any) -> Any:
    """A JSON-ready copy of an extra's value: numbers as Python numbers, tuples as lists, arrays dropped."""
    if isinstance(value, bool | str | None):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return None


def method_record(att: explainers.Attribution, scores: Mapping[str, Any]) -> dict[str, Any]:
    cls = explainers.get(att.method)
    found: dict[str, Any] = {key: float(scores[key]) for key in SCORES if key in scores}
    found.update({key: list(scores[key]) for key in RANGES if key in scores})
    if "verdicts" in scores:
        found["verdicts"], found["random_maps"] = dict(scores["verdicts"]), int(scores["random_maps"])
    if isinstance(scores.get("sanity"), trust.Verdict):
        found["sanity"] = scores["sanity"].record()
    if "stability" in scores:
        found["stability"] = float(scores["stability"])
    return {
        "name": att.method,
        "title": cls.title,
        "paper": cls.paper,
        "score": att.score,
        "signed": att.signed,
        "params": att.params,
        "seconds": round(att.seconds, 4),
        "heatmap_sha256": heatmap_sha256(att.heatmap),
        "heatmap_shape": list(att.heatmap.shape),
        "extras": {k: plain(v) for k, v in att.extras.items() if plain(v) is not None and k not in HISTORY},
        "stage": None if att.stage is None else stage_record(att.stage),
        "warnings": list(att.warnings),
        "trust": found,
    }


def colour_scale(display: Display) -> str:
    """The figure's colour scale in words, as the page states it."""
    if display.shared:
        return (
            f"each map divided by its own {display.percentile:g}th percentile of |value|: "
            "[-1, 1] signed, [0, 1] unsigned"
        )
    return f"each map in its own units, clipped at its {display.percentile:g}th percentile of |value|"


HISTORY = ("reused", "ran", "kept")
"""Extras that say what this process had computed before (another class's maps, a map kept on disk by
`store.results`), not what the map is: left out,
so the same request gives the same record in any process (a Ray worker's, a fresh CLI's)."""


def stage_record(stage: Any) -> dict[str, Any]:
    """Which estimate the map is: the converged one, after how many evaluations of the most allowed."""
    return {
        "converged": stage.converged,
        "evaluations": stage.evaluations,
        "planned": stage.planned,
        "top10_overlap_with_previous": stage.overlap,
        "classes_watched": stage.watched,  # 0: the stopping rule watched this map; else the least over these classes
        "label": stage.stage_label(),
    }
