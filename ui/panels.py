"""The main area: what the model sees, the prediction, and one panel per method."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import streamlit as st

from whylabel import explainers, models, render, trust
from whylabel.render import Display
from whylabel.ui import cache, checks, export, runs
from whylabel.ui.controls import Picked, Target

PANELS_PER_ROW = 4
PREVIEW_GAP = 1.0
"""Seconds between the estimates a panel draws on the way (the first is drawn at once): each drawing is work
for the browser, on the cores the computation uses, and the progress bar says every stage anyway."""
WARMED = ("shap",)
"""Methods whose first run in a server waits on `explainers.warm_up` (numba compiling SHAP's code)."""


def model_view(clf: models.Classifier, picked: Picked) -> None:
    st.image(clf.input_image(picked.image), caption=f"{picked.name}: what {clf.name} sees", width=260)
    st.caption(
        f"{clf.input_size}x{clf.input_size} px, centre crop {clf.crop:.3f} of the shorter side, "
        f"mean {tuple(round(m, 3) for m in clf.mean)}, std {tuple(round(s, 3) for s in clf.std)}"
    )
    fast = clf.engine()
    st.caption(
        f"Perturbation passes: {fast.backend}, batches of {fast.batch_size}, {fast.throughput:.0f} images/s "
        f"measured at load ({fast.note})."
    )


def predict(clf: models.Classifier, picked: Picked) -> models.Prediction:
    """The top 5 for the image; if the model cannot classify it (a user's model may fail), say why and stop here."""
    try:
        return cache.prediction(clf.name, picked.key, clf, picked.image)
    except Exception as err:  # the page stops with a message instead of a traceback
        st.error(f"{clf.name} could not classify {picked.name}: {err}")
        st.stop()


def prediction(prediction: models.Prediction) -> None:
    st.markdown("**Prediction (top 5)**")
    st.plotly_chart(render.prediction_figure(prediction), width="stretch", key="prediction")


def heading(clf: models.Classifier, target: Target, display: Display) -> None:
    """ "Why A (i)?" or "Why A (i) rather than B (j)?", and how to read the colours."""
    st.subheader(target.question)
    if target.contrast is None:
        colours = "Red: evidence for the class; blue: against."
    else:
        colours = (
            f"Each map explains {target.score_name}. "
            f"Red: evidence for {target.label} over {target.contrast_label}; blue: the reverse."
        )
    scale = (
        "Shared scale: each map divided by its own percentile of |value|, so colours compare across panels."
        if display.shared
        else "Per-panel scale: each map in its own units."
    )
    st.caption(f"{colours} Unsigned maps (saliency) use a sequential scale. {scale}")


def explanations(clf: models.Classifier, picked: Picked, target: Target, run: dict[str, Any], display: Display) -> None:
    """One panel per method, each drawn as soon as it finishes."""
    methods = run["methods"]
    pixels = clf.input_image(picked.image)  # resized once per run, shared by every panel
    done: list[tuple[Any, explainers.Attribution, cache.Key]] = []
    for start in range(0, len(methods), PANELS_PER_ROW):
        row = methods[start : start + PANELS_PER_ROW]
        for column, method in zip(st.columns(PANELS_PER_ROW), row, strict=False):
            with column:
                params = tuple(sorted(run["params"][method].items()))
                key = cache.Key(clf.name, picked.key, target.index, target.contrast, method, run["seed"], params)
                att = panel(clf, picked, pixels, key, display)
                if att is not None:
                    done.append((st.empty(), att, key))
    for slot, att, key in done:  # the scores come after every map is on screen
        with slot.container():
            faithfulness(clf, picked, att, key)
    if len(done) > 1:
        agreement([att for _, att, _ in done])
    if done:
        checks.section(checks.View(clf, picked, pixels, display), [(att, key) for _, att, key in done])
        export.download(clf, picked, target, [(att, key) for _, att, key in done], display)


def agreement(atts: list[explainers.Attribution]) -> None:
    st.markdown("**Do the methods agree?**")
    st.caption(
        "Spearman rank correlation between each pair of maps on screen: 1 ranks the pixels the same way, "
        "0 unrelated, below 0 opposite. Methods that disagree cannot all be describing the model faithfully."
    )
    titles = [explainers.get(att.method).title for att in atts]
    matrix = trust.agreement([att.heatmap for att in atts])
    with st.columns(2)[0]:  # a small matrix: half the page is wide enough for eight methods
        st.plotly_chart(render.agreement_figure(titles, matrix), key="agreement")


def faithfulness(clf: models.Classifier, picked: Picked, att: explainers.Attribution, key: cache.Key) -> None:
    try:
        scores = cache.faithfulness(key, att)
    except Exception as err:  # scores are extra: a failure says why and leaves the map standing
        st.warning(f"Faithfulness could not be scored: {err}")
        return
    st.plotly_chart(render.faithfulness_figure(scores), key=f"faithfulness.{att.method}")
    st.caption(render.faithfulness_caption(scores))


def panel(
    clf: models.Classifier, picked: Picked, pixels: np.ndarray, key: cache.Key, display: Display
) -> explainers.Attribution | None:
    """One method's map, caption and reading guide."""
    method = key.method
    cls = explainers.get(method)
    st.markdown(f"#### {cls.title}")
    slot, status = st.empty(), st.empty()
    text = f"Computing {cls.title}…"
    if method in WARMED and cache.warm_up().is_alive():  # a server's first minute: numba is still compiling
        text = f"Computing {cls.title} (the server is still compiling SHAP's numba code, once, about 15 s)…"
    bar = status.progress(0.0, text=text)

    drawn: list[float] = []

    def show(estimate: explainers.Attribution) -> None:  # a first estimate or a refinement, until converged
        if estimate.stage is None or estimate.stage.converged:
            return
        if not drawn or time.monotonic() - drawn[-1] >= PREVIEW_GAP:
            drawn.append(time.monotonic())
            with slot.container():
                st.plotly_chart(render.attribution_figure(pixels, estimate, display), key=None)
                st.caption(render.caption(estimate))

    try:
        att = cache.attribution(key, clf, picked.image, runs.progress_bar(bar, text), show)
    except Exception as err:  # a panel that fails says why and leaves the others standing
        status.empty()
        slot.error(f"{cls.title} could not be computed: {err}")
        return None
    status.empty()
    with slot.container():
        st.plotly_chart(render.attribution_figure(pixels, att, display), key=f"figure.{method}")
        st.caption(render.caption(att))
        for warning in att.warnings:  # what this map cannot show, on the map
            st.warning(warning, icon=":material/visibility_off:")
    with st.expander("How to read this"):
        st.markdown(f"{cls.how_to_read}\n\nPaper: [{cls.paper}]({cls.paper_url})")
    return att
