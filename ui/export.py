"""The "Download evidence" button: the maps on screen, their scores and their provenance, as one zip."""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from whylabel import evidence, explainers, models, trust
from whylabel.evidence.record import image_hash
from whylabel.render import Display
from whylabel.ui import cache, checks, whatif
from whylabel.ui.controls import Picked, Target


def trust_scores(att: explainers.Attribution, key: cache.Key, asked: frozenset) -> dict[str, Any]:
    """What this session has on screen for this map: its curves, and the sanity and stability checks if run."""
    scores = dict(cache.attribution_store().peek(("faithfulness", *key)) or {})
    steps = checks.shown(("sanity", *key), asked)
    if steps:
        scores["sanity"] = trust.verdict(steps[-1]["correlation"])
    details = checks.shown(("stability", *key), asked)
    if details:
        scores["stability"] = float(details["spearman"])
    return scores


def bundle(
    clf: models.Classifier,
    picked: Picked,
    target: Target,
    done: list[tuple[explainers.Attribution, Any]],
    asked: frozenset = frozenset(),
    display: Display | None = None,
) -> bytes:
    """The zip, built when the button is clicked, from what is already computed (nothing is recomputed)."""
    image_sha = picked.key.removeprefix("upload:") if picked.key.startswith("upload:") else None
    sha, of = (image_sha, "file") if image_sha else image_hash(picked.image, None)
    found = evidence.Evidence(
        clf=clf,
        name=picked.name,
        image=picked.image,
        image_sha256=sha,
        image_sha256_of=of,
        pixels=clf.input_image(picked.image),
        prediction=cache.prediction(clf.name, picked.key, clf, picked.image),
        target=target.index,
        contrast=target.contrast,
        attributions=[att for att, _ in done],
        scores={att.method: trust_scores(att, key, asked) for att, key in done},
        display=display or Display(),
        edits=[e for kind in whatif.SEARCHES if (e := checks.shown(whatif.store_key(kind, clf, picked), asked))],
    )
    return evidence.zip_bytes(evidence.files(found), folder=stem(picked.name))


def stem(name: str) -> str:
    """A safe folder and file name for the image: letters, digits, dots, dashes and underscores."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.rsplit(".", 1)[0]).strip("_") or "image"


def download(clf: models.Classifier, picked: Picked, target: Target, done: list, display: Display) -> None:
    asked = checks.asked_keys()
    st.download_button(
        "Download evidence",
        data=lambda: bundle(clf, picked, target, done, asked, display),
        file_name=f"whylabel-{stem(picked.name)}.zip",
        mime="application/zip",
        on_click="ignore",
        key="evidence",
        help="A zip with figure.png, record.json (versions, hashes, every parameter), heatmaps.npz, report.html "
        "and a Markdown snippet for a model card. Scores from the checks you ran, and the what-if sets you "
        "searched, are included.",
    )
