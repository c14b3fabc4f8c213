"""`report.html` (self-contained: the figure is embedded, nothing is fetched) and a Markdown snippet for a
model card. Both say the same as `record.json`, for a person to read."""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from whylabel import explainers

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    "th{background:#f4f4f4}img{max-width:100%}code,pre{font-size:12px}pre{background:#f7f7f7;padding:1em;"
    "overflow:auto}.small{color:#666;font-size:13px}"
)


def score(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def method_rows(record: dict) -> list[list[str]]:
    """One row per method: name, parameters, seconds, the trust scores, the map's sha256."""
    rows = []
    for m in record["methods"]:
        trust = m["trust"]
        params = ", ".join(f"{k}={v}" for k, v in m["params"].items())
        rows.append(
            [
                m["title"],
                params,
                f"{m['seconds']:.2f}",
                against_random(trust, "deletion"),
                against_random(trust, "insertion"),
                sanity_cell(trust.get("sanity")),
                score(trust.get("stability")),
                m["heatmap_sha256"][:16] + "…",
            ]
        )
    return rows


def against_random(trust: dict, mode: str) -> str:
    """ "0.071 (random 0.080-0.122: better than every random map)", or the bare area without a baseline."""
    if f"random_{mode}_range" not in trust:
        return score(trust.get(f"{mode}_auc"))
    low, high = trust[f"random_{mode}_range"]
    verdict = trust.get("verdicts", {}).get(mode, "")
    return f"{score(trust.get(f'{mode}_auc'))} (random {low:.3f}-{high:.3f}: {verdict})"


def sanity_cell(sanity: Any) -> str:
    """The sanity check's Spearman and verdict ("0.120, passes"), or "-" when it was not run."""
    if not isinstance(sanity, dict):
        return "-"
    return f"{score(sanity['correlation'])}, {'passes' if sanity['passed'] else 'fails'}"


METHOD_HEADER = [
    "method",
    "parameters",
    "seconds",
    "deletion AUC ↓",
    "insertion AUC ↑",
    "sanity Spearman",
    "stability",
    "map sha256",
]


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def question(record: dict) -> str:
    """ "Why tabby (281, p = 0.912)?" or "Why tabby (281, p = 0.912) rather than tiger cat (282, p = 0.050)?"."""
    target, contrast = record["target"], record["contrast"] or {}
    asked = explainers.Target(target["index"], target["label"], contrast.get("index"), contrast.get("label"))
    return asked.question_with({c["index"]: c["probability"] for c in (target, contrast) if c})


def guide(method: str) -> str:
    cls = explainers.get(method)
    link = f"<a href='{html.escape(cls.paper_url)}'>{html.escape(cls.paper)}</a>"
    return f"<li><b>{html.escape(cls.title)}</b>: {html.escape(cls.how_to_read)} {link}</li>"


def report_html(record: dict, figure: bytes) -> str:
    """The whole report as one HTML string."""
    model, image = record["model"], record["image"]
    top5 = [[f"{c['label']} ({c['index']})", f"{c['probability']:.3f}"] for c in record["top5"]]
    provenance = [
        ["model", f"{model['name']} (weights sha256 {model['weights_sha256']}, of the {model['weights_sha256_of']})"],
        ["image", f"{image['name']}, {image['width']}x{image['height']} px"],
        ["image sha256", f"{image['sha256']} (of the {image['sha256_of']})"],
        ["preprocessing", json.dumps(image["preprocessing"])],
        ["versions", ", ".join(f"{k} {v}" for k, v in record["versions"].items())],
    ]  # fmt: skip
    guides = "".join(guide(m["name"]) for m in record["methods"])
    failures = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in record["failures"].items())
    warned = "".join(
        f"<li>{html.escape(m['title'])}: {html.escape(w)}</li>" for m in record["methods"] for w in m["warnings"]
    )
    picture = base64.b64encode(figure).decode()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>whylabel evidence: {html.escape(image["name"])}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(question(record))}</h1>
<p class="small">whylabel {html.escape(record["versions"]["whylabel"])} · {html.escape(record["colour_scale"])}</p>
<img alt="the model's view and each explanation map" src="data:image/png;base64,{picture}">
<h2>Prediction (top 5)</h2>{html_table(["class", "probability"], top5)}
<h2>Methods and how far to trust them</h2>{html_table(METHOD_HEADER, method_rows(record))}
<p class="small">Deletion AUC: the target's probability as pixels are blurred away in the map's order (lower is
better); insertion: as they are revealed (higher is better); each beside the range of several random maps'
areas, with a verdict: better than every random map, within their range, or worse. Sanity Spearman: Spearman
correlation with the map of a randomised model (near 0 passes). Stability: mean Spearman across seeds.</p>
{f"<h2>What these maps cannot show</h2><ul>{warned}</ul>" if warned else ""}
{f"<h2>Not computed</h2><ul>{failures}</ul>" if failures else ""}
<h2>How to read each map</h2><ul>{guides}</ul>
<h2>Provenance</h2>{html_table(["", ""], provenance)}
<details><summary>record.json</summary><pre>{html.escape(json.dumps(record, indent=1))}</pre></details>
</body></html>
"""


def model_card_md(record: dict) -> str:
    """A snippet to paste into a model card, next to figure.png and record.json."""
    model, image = record["model"], record["image"]
    header = (
        "| method | parameters | deletion AUC ↓ (random) | insertion AUC ↑ (random) | sanity Spearman | stability "
        "| map sha256 |"
    )
    rows = [
        f"| {r[0]} | {r[1]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} | `{r[7].rstrip('…')}` |" for r in method_rows(record)
    ]
    return "\n".join(
        [
            f"### Explanation evidence: {question(record)}",
            "",
            "![the model's view and each explanation map](figure.png)",
            "",
            f"Model `{model['name']}` (weights sha256 `{model['weights_sha256'][:16]}`), image `{image['name']}` "
            f"(sha256 `{image['sha256'][:16]}`), produced with whylabel {record['versions']['whylabel']}. "
            "Every parameter, seed and version is in `record.json`; the raw maps are in `heatmaps.npz`.",
            "",
            header,
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            *[f"- **{m['title']}**: {w}" for m in record["methods"] for w in m["warnings"]],
        ]
    )
