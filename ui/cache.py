"""Caches for the page: models shared across sessions, results keyed on everything that decides them.

Results live in one server-wide cache, bounded in bytes (`store.memory.Cache`, held by `st.cache_resource`):
maps, their scores and baselines, the checks, the what-if searches, predictions and superpixels. Its bound is
`PAGE_CACHE_MB`, or $WHYLABEL_MEMORY_MB. Two sessions asking for the same missing result compute it once: the
second waits for the first (and may be stopped while it waits, as a page run is). Nothing in it holds the
visitor's full-size image: keys name the image by its key (`ui.controls.Picked.key`, a digest), and values are
the size of the model view at most (a map is kept without its request, which holds the image: `attribution`).

Attributions are not in `st.cache_data`: Streamlit records the st calls made inside a cached function and
replays them on a hit, so a progress bar updated from inside the computation breaks every cache hit
(CacheReplayClosureError). A cache held by `st.cache_resource` keeps live progress instead.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import streamlit as st
from PIL import Image

from whylabel import explainers, models, whatif
from whylabel.explainers import kept
from whylabel.explainers.base import Progress
from whylabel.store import memory
from whylabel.trust import kept as kept_scores
from whylabel.ui import runs

PAGE_CACHE_MB = 512
"""The page cache's bound, in megabytes (2**20 bytes), unless $WHYLABEL_MEMORY_MB says otherwise (0 keeps
nothing): an eighth of a 4 GB server, room for some two thousand 224x224 maps (200 KB each) with their scores."""
MEMORY_VARIABLE = "WHYLABEL_MEMORY_MB"


def model(name: str) -> models.Classifier:
    """One classifier per name for the whole server, its forward engine built; each cold step says what it does.

    The engine is built here, not on the first perturbation panel: export, check and calibration take a few
    seconds once (a fraction of a second when the disk cache has them), and every later image is fast. A step
    that finishes within half a second shows no message (`st.spinner`'s delay), so a warm server shows none.
    """
    with st.spinner(f"Loading {name}: its weights and labels…"):
        clf = loaded(name)
    with st.spinner(
        f"Building {name}'s fast engine for the perturbation maps: an ONNX export checked against torch, and a "
        "timing of batch sizes (about 6 s the first time; later starts read both from the disk cache)…"
    ):
        clf.engine()
    return clf


@st.cache_resource(show_spinner=False)
def loaded(name: str) -> models.Classifier:
    """One classifier per name for the whole server (read-only, so safe to share between sessions)."""
    return models.load(name)


@st.cache_resource(max_entries=4, show_spinner="Checking your model and timing its fast engine…")
def own_model(
    digest: str, _model: bytes, _labels: bytes | None, name: str, architecture: str | None, preprocessing: dict
) -> models.Classifier:
    """A user's model, checked, with its engine built; shared by every session that uploads the same files.

    `digest` covers the files and settings (hashing it is cheaper than hashing a 100 MB upload each run).
    Refusals (models.ModelError) are not cached.
    """
    clf = models.load_user_model(_model, _labels, name, architecture, **preprocessing)
    clf.engine()
    return clf


@st.cache_resource(show_spinner=False)
def warm_up() -> threading.Thread:
    """Compile SHAP's numba code once per server, in the background, before anyone asks for a SHAP panel."""
    thread = threading.Thread(target=explainers.warm_up, name="whylabel-warm-up", daemon=True)
    thread.start()
    return thread


def superpixels(model_name: str, image_key: str, pixels: np.ndarray) -> np.ndarray:
    """The what-if superpixels of an image's model view, cut once per image rather than on every page run."""

    def compute() -> np.ndarray:
        segments = whatif.superpixels(pixels)
        segments.flags.writeable = False  # shared between sessions: nobody may change it
        return segments

    return attribution_store().get_or_compute(("superpixels", model_name, image_key), compute)


def prediction(model_name: str, image_key: str, clf: models.Classifier, image: Image.Image) -> models.Prediction:
    """The top 5 for an image, once per model and image for the whole server."""

    def compute() -> models.Prediction:
        found = clf.predict(image, k=5)
        found.probs.flags.writeable = False  # shared between sessions: nobody may change it
        return found

    return attribution_store().get_or_compute(("prediction", model_name, image_key), compute)


def page_budget() -> int:
    """The page cache's bound in bytes: $WHYLABEL_MEMORY_MB megabytes if set, else `PAGE_CACHE_MB`."""
    chosen = os.environ.get(MEMORY_VARIABLE, "").strip()
    if not chosen:
        return PAGE_CACHE_MB * 2**20
    try:
        megabytes = float(chosen)
    except ValueError:
        megabytes = -1.0
    if not 0 <= megabytes < float("inf"):
        raise ValueError(f"{MEMORY_VARIABLE} must be a number of megabytes, 0 or more; got {chosen!r}")
    return int(megabytes * 2**20)


@st.cache_resource(show_spinner=False)
def attribution_store() -> memory.Cache:
    """The page cache: one per server, shared by every session, bounded by `page_budget()` bytes.

    It holds maps (without their request: `attribution`), faithfulness scores and baselines, the checks'
    results, the what-if searches, predictions and superpixels; each the size of the model view at most.
    """
    return memory.Cache(page_budget())


class LruStore(memory.Cache):
    """A server store of at most `size` values, within the page budget in bytes too (`ui.audit` keeps its
    audits in one)."""

    def __init__(self, size: int) -> None:
        super().__init__(page_budget(), max_entries=size)


class Key(NamedTuple):
    """Everything that decides one panel's map: the cache key of its attribution and of its checks."""

    model: str
    image: str
    target: int
    contrast: int | None
    method: str
    seed: int
    params: tuple[tuple[str, Any], ...]


def attribution(
    key: Key,
    clf: models.Classifier,
    image: Image.Image,
    progress: Progress,
    on_stage: Callable[[explainers.Attribution], None] | None = None,
) -> explainers.Attribution:
    """The converged attribution, cached on its key (model, image key, target, contrast, method, seed, parameters)
    in memory, and on disk (`store.results`) for later server starts, other servers and the command line.

    While it is computed, `on_stage` sees each estimate on the way; a cached one has none to show, and neither
    has a session that waits for another session computing the same map. The cache keeps the map without its
    request (which holds the model and the full-size image); the map returned carries this call's request.
    """
    request = explainers.Request.make(
        clf, image, key.method, target=key.target, contrast=key.contrast, seed=key.seed, **dict(key.params)
    )

    def compute() -> explainers.Attribution:
        with runs.logged(describe(key)):
            att = kept.attribution(request, progress, on_stage)
        att.heatmap.flags.writeable = False  # shared between sessions: nobody may change it
        return dataclasses.replace(att, request=None)

    held = attribution_store().get_or_compute(key, compute, wait=runs.checkpoint)
    return dataclasses.replace(held, request=request)


def describe(key: Key) -> str:
    """A short name for a computation in the server log: method, model and image."""
    image = key.image if len(key.image) <= 40 else key.image[:19] + "..."
    return f"{key.method} for {key.model} on {image}"


def faithfulness(key: Key, att: explainers.Attribution) -> dict:
    """Deletion and insertion scores of an attribution, cached beside it on the same key.

    The random maps' curves they are compared with depend only on the model, image, target and contrast: one
    baseline, cached on those, serves every panel of the image (and every session asking the same).
    """
    baseline_key = ("random baseline", key.model, key.image, key.target, key.contrast)
    baseline = attribution_store().get_or_compute(baseline_key, lambda: kept_scores.baseline(att))
    return attribution_store().get_or_compute(("faithfulness", *key), lambda: kept_scores.scores(att, baseline))
