"""Sidebar and target controls. Every widget is bounded, so the page cannot send a bad value."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import streamlit as st
from PIL import Image

from whylabel import explainers, models
from whylabel.explainers.base import Param
from whylabel.explainers.target import Target
from whylabel.render import Display
from whylabel.ui import cache, own_model

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"]
MAX_UPLOAD_MB = 25
AUTO = -1  # the target option that means "whatever the top-1 class is"
LAST_PACKAGED = "model.last_packaged"


@dataclass
class Picked:
    """The image the user picked: a display name, a cache key and the decoded RGB image."""

    name: str
    key: str
    image: Image.Image


def pick_model() -> models.Classifier:
    """A packaged model, or the user's own once one has loaded (until then, the packaged model last shown)."""
    choice = st.sidebar.selectbox(
        "Model",
        [*models.available(), own_model.OWN],
        key="model",
        persist_state="session",
        help="Packaged weights ship inside installed packages; or upload your own TorchScript model or state_dict.",
    )
    if choice != own_model.OWN:
        st.session_state[LAST_PACKAGED] = choice
        return cache.model(choice)
    clf = own_model.pick()
    if clf is None:  # until a model loads, the packaged model on screen stays
        shown = st.session_state.get(LAST_PACKAGED, models.available()[0])
        st.sidebar.info(f"No model uploaded yet; showing {shown}.")
        return cache.model(shown)
    return clf


def pick_image(model_name: str) -> Picked:
    """A gallery photo, or the last upload that opened; a bad upload shows a message and changes nothing."""
    source = st.sidebar.radio("Image", ["Gallery", "Upload"], horizontal=True, key="source", persist_state="session")
    if source == "Upload":
        _read_upload()
        if "upload" in st.session_state:
            return st.session_state["upload"]
        st.sidebar.info("No image uploaded yet; showing the gallery image.")
    if model_name not in models.available():  # a user's model keeps the gallery image already on screen
        model_name = st.session_state.get(LAST_PACKAGED, models.available()[0])
    names = models.samples()
    default = names.index(models.default_image_for(model_name))
    name = st.sidebar.selectbox(
        "Gallery image", names, index=default, key=f"sample.{model_name}", persist_state="session"
    )
    return Picked(name, f"sample:{name}", models.sample_image(name))


def _read_upload() -> None:
    upload = st.sidebar.file_uploader(
        f"Upload an image (JPEG, PNG, WebP, GIF, BMP or TIFF; up to {MAX_UPLOAD_MB} MB)",
        type=UPLOAD_TYPES,
        key="uploader",
        max_upload_size=MAX_UPLOAD_MB,
    )
    if upload is None:
        return
    data = upload.getvalue()
    if len(data) > MAX_UPLOAD_MB * 1024 * 1024:  # the browser enforces the limit; a script might not
        st.sidebar.error(f"{upload.name}: the file is larger than {MAX_UPLOAD_MB} MB.")
        return
    key = "upload:" + hashlib.sha256(data).hexdigest()
    if "upload" in st.session_state and st.session_state["upload"].key == key:
        return
    try:
        st.session_state["upload"] = Picked(upload.name, key, models.open_image(data))
    except models.ImageError as err:
        st.sidebar.error(f"{upload.name}: {err}")


def pick_target(clf: models.Classifier, prediction: models.Prediction) -> Target:
    """The class to explain: the top-1 class by default (it follows the image), any label by search.

    A second box picks an optional contrast class; picking the target itself there is refused with a note.
    """
    top_index = prediction.top[0][0]
    name = lambda i: f"{clf.labels[i]} ({i})"  # noqa: E731
    left, right = st.columns(2)
    choice = left.selectbox(
        "Explain which class? (type to search)",
        [AUTO, *range(len(clf.labels))],
        format_func=lambda i: "top-1 class (follows the image)" if i == AUTO else name(i),
        key=f"target.{clf.name}",
        persist_state="session",
    )
    index = top_index if choice == AUTO else int(choice)
    contrast = right.selectbox(
        "Rather than which class? (optional)",
        [None, *range(len(clf.labels))],
        format_func=lambda i: "no contrast: explain the class alone" if i is None else name(i),
        key=f"contrast.{clf.name}",
        persist_state="session",
        help="Explain the difference of the two scores: what makes the image the first class and not the second.",
    )
    if contrast == index:
        right.info(f"{name(index)} is already the class explained; pick another class to contrast with.")
        contrast = None
    return Target.make(clf, index, contrast)


def pick_methods() -> list[str]:
    names = explainers.available()
    default = [name for name in names if explainers.get(name).default_on]
    return (
        st.sidebar.multiselect("Methods", names, default=default, key="methods", persist_state="session") or names[:1]
    )


def pick_seed() -> int:
    return int(
        st.sidebar.number_input(
            "Seed", min_value=0, max_value=2**32 - 1, value=0, step=1, key="seed", persist_state="session"
        )
    )


def pick_params(method: str, input_size: int) -> dict[str, Any]:
    """One bounded widget per parameter of `method`, in an expander."""
    cls = explainers.get(method)
    if not cls.params:
        return {}
    chosen: dict[str, Any] = {}
    with st.sidebar.expander(f"{cls.title} settings"):
        for p in cls.params:  # a parameter bounded by an earlier one (stride by window) gets its range from it
            chosen[p.name] = _widget(method, p.bounded_by(chosen, input_size), input_size)
    return chosen


def _widget(method: str, p: Param, input_size: int) -> Any:
    key = f"{method}.{p.name}.{input_size}"
    if p.choices:
        return st.selectbox(
            p.name, p.choices, index=p.choices.index(p.default), help=p.help, key=key, persist_state="session"
        )
    low, high, value = p.low or 0, p.upper(input_size), p.default_for(input_size)
    if high == low:  # one value left (a window of 1 leaves the stride 1): a slider cannot show a single value
        st.caption(f"{p.name}: {p.kind()(low)}, the only value allowed here")
        return p.kind()(low)
    if p.kind() is float:
        return st.slider(
            p.name, float(low), float(high or 1.0), float(value), help=p.help, key=key, persist_state="session"
        )
    if high is not None and high - low <= 512:
        return st.slider(p.name, int(low), int(high), int(value), help=p.help, key=key, persist_state="session")
    return int(
        st.number_input(
            p.name,
            int(low),
            int(high) if high else None,
            int(value),
            step=10,
            help=p.help,
            key=key,
            persist_state="session",
        )
    )


def pick_display() -> Display:
    """Display-only options: changing them redraws but never recomputes."""
    with st.sidebar.expander("Display", expanded=False):
        scale = st.radio(
            "Colour scale", ["Shared across panels", "Per panel (raw units)"], key="scale", persist_state="session"
        )
        percentile = st.slider(
            "Clip at percentile of |value|", 90.0, 100.0, 99.0, 0.5, key="percentile", persist_state="session"
        )
        opacity = st.slider("Heatmap opacity", 0.1, 1.0, 0.8, 0.05, key="opacity", persist_state="session")
    return Display(shared=scale.startswith("Shared"), percentile=percentile, opacity=opacity)
