"""`index.html` for a batch run: one row per image (top-1, probability, each method's deletion and insertion
areas) linking its figure, record, maps and report; failed images with the reason."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from whylabel.evidence.report import STYLE

FILES = (("figure.png", "figure"), ("report.html", "report"), ("record.json", "record"), ("heatmaps.npz", "maps"))


def pair(trust: dict[str, Any]) -> str:
    if "deletion_auc" not in trust:
        return "-"
    return f"{trust['deletion_auc']:.3f} / {trust['insertion_auc']:.3f}"


@dataclass(frozen=True)
class Row:
    path: str
    folder: str | None
    record: dict[str, Any] | None
    error: str | None


def cells(row: Row, methods: list[str]) -> list[str]:
    if row.record is None:
        return [html.escape(row.path), "", "", f"<i>skipped: {html.escape(row.error or '')}</i>"] + [""] * len(methods)
    top = row.record["top5"][0]
    folder = html.escape(row.folder or "")
    links = " · ".join(f"<a href='{folder}/{name}'>{label}</a>" for name, label in FILES)
    trust = {m["name"]: m["trust"] for m in row.record["methods"]}
    scores = [pair(trust.get(m, {})) for m in methods]
    return [
        html.escape(row.path),
        html.escape(f"{top['label']} ({top['index']})"),
        f"{top['probability']:.3f}",
        links,
        *scores,
    ]


def html_index(rows: list[Row], opts: dict[str, Any]) -> str:
    methods = list(opts["methods"])
    header = ["image", "top-1", "probability", "files", *(f"{m}: deletion ↓ / insertion ↑" for m in methods)]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in cells(row, methods)) + "</tr>" for row in rows)
    explained = sum(row.record is not None for row in rows)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>whylabel evidence</title><style>{STYLE}</style></head><body>
<h1>whylabel evidence: {explained} of {len(rows)} images</h1>
<p class="small">model {html.escape(opts["model"])} · methods {html.escape(", ".join(methods))} ·
seed {opts["seed"]}</p>
<table><tr>{head}</tr>{body}</table></body></html>
"""
