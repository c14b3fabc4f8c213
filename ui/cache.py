"""Caches for the page: models shared across sessions, results keyed on everything that decides them.

Attributions are not in `st.cache_data`: Streamlit records the st calls made inside a cached function and
replays them on a hit, so a progress bar updated from inside the computation breaks every cache hit
(CacheReplayClosureError). A server-wide LRU held by `st.cache_resource` keeps live progress instead.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import streamlit as st
from PIL import Image

from whylabel import explainers, models, whatif
from whylabel.explainers import kept
from whylabel.explainers.base import Progress
from whylabel.trust import kept as kept_scores
from whylabel.ui import runs

MAX_ATTRIBUTIONS = 512


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


@st.cache_data(show_spinner=False, max_entries=64)
def superpixels(model_name: str, image_key: str, _pixels: Any) -> Any:
    """The what-if superpixels of an image's model view, cut once per image rather than on every page run."""
    return whatif.superpixels(_pixels)


@st.cache_data(show_spinner=False, max_entries=64)
def prediction(model_name: str, image_key: str, _clf: models.Classifier, _image: Image.Image) -> models.Prediction:
    return _clf.predict(_image, k=5)


class LruStore:
    """A thread-safe least-recently-used map from keys to computed values."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.items: OrderedDict[Hashable, Any] = OrderedDict()

    def peek(self, key: Hashable) -> Any | None:
        """The stored value, or None; never computes."""
        with self.lock:
            return self.items.get(key)

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = compute()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


@st.cache_resource
def attribution_store() -> LruStore:
    return LruStore(MAX_ATTRIBUTIONS)


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
    """The converged attribution, cached on its key (model, image hash, target, contrast, method, seed, parameters)
    in memory, and on disk (`store.results`) for later server starts, other servers and the command line.

    While it is computed, `on_stage` sees each estimate on the way; a cached one has none to show.
    """

    def compute() -> explainers.Attribution:
        with runs.logged(describe(key)):
            request = explainers.Request.make(
                clf, image, key.method, target=key.target, contrast=key.contrast, seed=key.seed, **dict(key.params)
            )
            att = kept.attribution(request, progress, on_stage)
        att.heatmap.flags.writeable = False  # shared between sessions: nobody may change it
        return att

    return attribution_store().get_or_compute(key, compute)


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
