"""`index.html` of an audit: self-contained (every picture inlined), for a person to read and check.

Flagged clusters come first with their reasons, each cluster's mean map beside its class's on one scale,
then every class, the groups side by side, localisation scores when boxes were given, and skipped files.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from whylabel.audit import Audit, Cluster, flags
from whylabel.audit.analysis import ClassView, localisation_summary
from whylabel.evidence.report import STYLE, score
from whylabel.render.audit import data_uri, grid_png

SHOWN = 48
"""Member thumbnails drawn per cluster; the rest are named."""
EXTRA_STYLE = (
    ".strip img{width:56px;height:56px;margin:1px;image-rendering:pixelated}.maps img{width:120px;height:120px;"
    "image-rendering:pixelated;margin-right:8px}.flag{border-left:4px solid #c0392b;padding-left:1em;margin:1.5em 0}"
    ".cluster{margin:1em 0}figure{display:inline-block;margin:0 8px 0 0}figcaption{font-size:12px;color:#555}"
)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A table of cells that are HTML already (their text escaped where it was made)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def picture(png: bytes, caption: str) -> str:
    text = html.escape(caption)
    return f'<figure><img src="{data_uri(png)}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def strip(audit: Audit, members: Sequence[int]) -> str:
    images = "".join(
        f'<img src="{data_uri(audit.items[m].thumb)}" title="{html.escape(audit.items[m].file)}" alt="">'
        for m in members[:SHOWN]
        if audit.items[m].thumb
    )
    rest = members[SHOWN:]
    more = f'<p class="small">and {len(rest)} more: {html.escape(", ".join(audit.items[m].file for m in rest))}</p>'
    return f'<div class="strip">{images}</div>' + (more if rest else "")


def class_of(audit: Audit, cluster: Cluster) -> ClassView:
    return next(view for view in audit.classes if view.cls == cluster.cls)


def cluster_block(audit: Audit, cluster: Cluster) -> str:
    view = class_of(audit, cluster)
    top = max(float(cluster.mean.max()), float(view.mean.max()))
    maps = picture(grid_png(cluster.mean, 120, top), f"cluster {cluster.id}: {len(cluster.members)} images") + picture(
        grid_png(view.mean, 120, top), f"all {len(view.members)} images of {cluster.label!r}"
    )
    why = f"<p><b>Flagged:</b> {html.escape(cluster.why)}.</p>" if cluster.flagged else ""
    kind = "flag" if cluster.flagged else "cluster"
    title = f"<h3>{html.escape(cluster.label)}: cluster {cluster.id}</h3>"
    return f'<div class="{kind}">{title}{why}<div class="maps">{maps}</div>{strip(audit, cluster.members)}</div>'


def class_block(audit: Audit, view: ClassView) -> str:
    note = f"<p>{html.escape(view.note)}.</p>" if view.note else ""
    clusters = (
        "".join(cluster_block(audit, audit.clusters[c]) for c in view.clusters)
        if not view.note
        else strip(audit, view.members)
    )
    outliers = f"<p>Outliers (maps unlike their neighbours'):</p>{strip(audit, view.outliers)}" if view.outliers else ""
    size = f"{len(view.members)} images, {len(view.clusters)} cluster{'s' if len(view.clusters) != 1 else ''}"
    title = f"<summary><b>{html.escape(view.label)}</b> <span class='small'>({size})</span></summary>"
    return f"<details>{title}{note}{clusters}{outliers}</details>"


def groups_table(audit: Audit) -> str:
    if not audit.groups:
        return ""
    top = max(float(g.mean.max()) for g in audit.groups)
    rows = [
        [
            html.escape(g.name),
            str(len(g.members)),
            html.escape(", ".join(f"{label}: {count}" for label, count in g.predictions[:5])),
            f"{g.confidence:.3f}",
            str(g.flagged),
            f'<img src="{data_uri(grid_png(g.mean, 72, top))}" width="72" alt="">',
        ]
        for g in audit.groups
    ]
    header = ["group", "images", "predictions", "mean confidence", "in flagged clusters", "where the evidence lies"]
    return "<h2>Groups</h2><p class='small'>The mean maps share one scale.</p>" + table(header, rows)


def localisation_table(audit: Audit) -> str:
    summary = localisation_summary(audit)
    if not summary["all"]["images"]:
        return ""
    rows = [
        [html.escape(name), str(s["images"]), score(s["mass_accuracy"]), score(s["pointing_game"])]
        for name, s in [("all", summary["all"]), *summary["classes"].items()]
    ]
    header = ["class", "images with a box", "relevance mass accuracy ↑", "pointing game ↑"]
    return (
        "<h2>Localisation</h2>"
        + table(header, rows)
        + (
            "<p class='small'>Relevance mass accuracy (Arras et al. 2022): the share of the map's positive evidence "
            "inside the box; a uniform map scores the box's share of the image. Pointing game (Zhang et al. 2016): "
            "the share of images whose map peaks inside the box.</p>"
        )
    )


def skipped(audit: Audit) -> str:
    if not audit.failed:
        return ""
    rows = [[html.escape(f), html.escape(why)] for f, why in audit.failed]
    return "<h2>Skipped files</h2>" + table(["file", "why"], rows)


def index_html(audit: Audit) -> str:
    flagged = audit.flagged()
    flagged_part = "".join(cluster_block(audit, c) for c in flagged) or "<p>No cluster is flagged.</p>"
    classes = "".join(class_block(audit, v) for v in audit.classes)
    rule = html.escape(flags.RULE)
    cells = np.shape(audit.items[0].grid)[0] if audit.items else 0
    counts = (
        f"{len(audit.items)} images, {len(audit.classes)} predicted classes, {len(audit.clusters)} clusters, "
        f"{len(flagged)} flagged" + (f", {len(audit.failed)} skipped" if audit.failed else "")
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>whylabel audit</title><style>{STYLE}{EXTRA_STYLE}</style></head>
<body><h1>whylabel audit</h1>
<p class="small">model {html.escape(audit.model)} · method {html.escape(audit.method)} · {counts}</p>
<p>Each image's map is reduced to where its evidence for the predicted class lies (shares of the positive
evidence on a grid of {cells} x {cells} cells; pale is none, dark red the most on that picture's scale; a
cluster's map and its class's share one scale). The maps of
each predicted class are clustered (spectral relevance analysis): images the model decides by a different
habit stand apart. <b>Clusters are hypotheses for a person to check</b>, not verdicts: look at the members.</p>
{f"<p><b>Caution:</b> {html.escape(audit.caution)}.</p>" if audit.caution else ""}
<details><summary>The flag rule</summary><p>{rule}</p></details>
<h2>Flagged clusters</h2>{flagged_part}{groups_table(audit)}{localisation_table(audit)}
<h2>Every predicted class</h2>{classes}{skipped(audit)}
</body></html>
"""
