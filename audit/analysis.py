"""An audit of many maps: per predicted class, its mean map, its clusters (SpRAy), outliers and flags; groups.

`analyse(items)` is the whole analysis over `maps.Item`s (from the page, the command line or Ray alike);
`to_json` is what `audit.json` holds.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from whylabel.audit import flags, spectral
from whylabel.audit.maps import Item

CHECKED_METHODS = ("saliency",)
"""The methods the flag rule's numbers were chosen and checked on. On the demos (bench.audit), occlusion's maps
found the marks in sets of 500 digits but gave false flags (more in smaller sets), integrated gradients' and
Grad-CAM's gave many, SmoothGrad's found none; so an audit by any other method says so."""


def caution(method: str) -> str:
    """What to keep in mind about the flags of an audit by `method` ("" for the methods the rule was checked on)."""
    if method in CHECKED_METHODS:
        return ""
    return (
        f"The flag rule's numbers were chosen on saliency maps; on {method} maps they were not: on the trained "
        "demos, occlusion found the marks but also flagged honest clusters, integrated gradients and Grad-CAM "
        "flagged many, SmoothGrad none. Read the clusters and their members, not only the flags"
    )


@dataclass
class Cluster:
    """Images of one predicted class whose maps look alike; `id` is unique in the audit."""

    cls: int
    label: str
    id: int
    members: list[int]
    """Indices into `Audit.items`."""
    mean: np.ndarray
    finding: flags.Finding | None = None
    """None when the class was not split (nothing to compare the cluster with)."""

    @property
    def flagged(self) -> bool:
        return self.finding is not None and self.finding.flagged

    @property
    def why(self) -> str:
        return "" if self.finding is None else self.finding.why


@dataclass
class ClassView:
    """One predicted class: its mean map, how its maps split, and why not when they did not."""

    cls: int
    label: str
    members: list[int]
    mean: np.ndarray
    clusters: list[int]
    """Ids of its clusters."""
    note: str
    eigenvalues: list[float]
    outliers: list[int]


@dataclass
class Group:
    """A subfolder's images side by side: predictions, confidence, where the evidence lies."""

    name: str
    members: list[int]
    predictions: list[tuple[str, int]]
    confidence: float
    mean: np.ndarray
    flagged: int
    """Members that fall in flagged clusters."""


@dataclass
class Audit:
    model: str
    method: str
    items: list[Item]
    classes: list[ClassView] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    """Files that gave no map, and why (one line each)."""
    cluster_of: dict[int, int] = field(default_factory=dict)
    """Item index -> cluster id."""

    def flagged(self) -> list[Cluster]:
        return [c for c in self.clusters if c.flagged]

    @property
    def caution(self) -> str:
        return caution(self.method)


def analyse(items: list[Item], model: str, method: str, failed: list[tuple[str, str]] | None = None) -> Audit:
    """Cluster each predicted class's maps, flag clusters by `flags`' rule, and compare the groups."""
    audit = Audit(model, method, items, failed=list(failed or []))
    for cls in sorted({item.predicted for item in items}):
        members = [i for i, item in enumerate(items) if item.predicted == cls]
        audit.classes.append(one_class(audit, cls, members))
    audit.groups = groups(audit)
    return audit


def one_class(audit: Audit, cls: int, members: list[int]) -> ClassView:
    grids = np.array([audit.items[i].grid for i in members])
    result = spectral.split(spectral.features(grids))
    label = audit.items[members[0]].label
    ids = []
    for k in range(result.count):
        inside = result.labels == k
        cluster = Cluster(
            cls,
            label,
            len(audit.clusters),
            [m for m, y in zip(members, inside, strict=True) if y],
            grids[inside].mean(0),
        )
        if result.count > 1:
            cluster.finding = flags.finding(grids[inside], grids[~inside], label)
        audit.clusters.append(cluster)
        audit.cluster_of.update({m: cluster.id for m in cluster.members})
        ids.append(cluster.id)
    outliers = [m for m, out in zip(members, result.outliers, strict=False) if out]
    return ClassView(cls, label, members, grids.mean(0), ids, result.note, result.eigenvalues.tolist(), outliers)


def groups(audit: Audit) -> list[Group]:
    names = sorted({item.group for item in audit.items})
    if names == [""]:
        return []
    flagged = {m for c in audit.flagged() for m in c.members}
    out = []
    for name in names:
        members = [i for i, item in enumerate(audit.items) if item.group == name]
        counts = Counter(audit.items[i].label for i in members).most_common()
        confidence = float(np.mean([audit.items[i].confidence for i in members]))
        mean = np.mean([audit.items[i].grid for i in members], axis=0)
        out.append(Group(name, members, counts, confidence, mean, len(flagged.intersection(members))))
    return out


def outlier_files(audit: Audit) -> set[str]:
    return {audit.items[i].file for view in audit.classes for i in view.outliers}


def to_json(audit: Audit) -> dict[str, Any]:
    """What `audit.json` holds: every image with its prediction and cluster, every cluster with its flag, and the
    flag rule (`flags.record()`: its words and its numbers)."""
    outliers = outlier_files(audit)
    images = [
        {
            "file": item.file,
            "group": item.group,
            "predicted": item.predicted,
            "label": item.label,
            "confidence": round(item.confidence, 4),
            "cluster": audit.cluster_of[i],
            "outlier": item.file in outliers,
            "evidence": item.evidence,
            **({"localisation": item.localisation} if item.localisation else {}),
        }
        for i, item in enumerate(audit.items)
    ]
    files = [item.file for item in audit.items]
    clusters = [
        {
            "class": c.cls,
            "label": c.label,
            "id": c.id,
            "members": [files[m] for m in c.members],
            "flagged": c.flagged,
            "why": c.why,
            "evidence_share_there": None if c.finding is None else round(c.finding.mass, 4),
        }
        for c in audit.clusters
    ]
    classes = [
        {"class": v.cls, "label": v.label, "images": len(v.members), "clusters": v.clusters, "note": v.note}
        for v in audit.classes
    ]
    group_rows = [
        {
            "group": g.name,
            "images": len(g.members),
            "predictions": dict(g.predictions),
            "mean_confidence": round(g.confidence, 4),
            "in_flagged_clusters": g.flagged,
        }
        for g in audit.groups
    ]
    return {
        "model": audit.model,
        "method": audit.method,
        "rule": flags.record(),
        "caution": audit.caution,
        "images": images,
        "clusters": clusters,
        "classes": classes,
        "groups": group_rows,
        "localisation": localisation_summary(audit),
        "failed": [{"file": f, "why": why} for f, why in audit.failed],
    }


def json_text(audit: Audit) -> str:
    """audit.json's text: `to_json`, indented (every value in it is a plain Python one)."""
    return json.dumps(to_json(audit), indent=2) + "\n"


def localisation_summary(audit: Audit) -> dict[str, Any]:
    """Mean relevance mass accuracy and pointing-game hit rate per class and overall, over images with boxes."""
    scored = [item for item in audit.items if item.localisation]
    per_class: dict[str, list[Item]] = {}
    for item in scored:
        per_class.setdefault(item.label, []).append(item)
    return {"all": mean_scores(scored), "classes": {label: mean_scores(group) for label, group in per_class.items()}}


def mean_scores(items: list[Item]) -> dict[str, Any]:
    mass = [i.localisation["mass"] for i in items if i.localisation.get("mass") is not None]
    hits = [i.localisation["pointing"] for i in items if i.localisation.get("pointing") is not None]
    return {
        "images": len(items),
        "mass_accuracy": None if not mass else round(float(np.mean(mass)), 4),
        "pointing_game": None if not hits else round(float(np.mean(hits)), 4),
    }
