"""Trust checks on demand, for one map on screen: the randomisation sanity check and stability over seeds."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import streamlit as st

from whylabel import explainers, models, render, trust
from whylabel.render import Display
from whylabel.trust.stability import SEEDS
from whylabel.ui import cache, runs
from whylabel.ui.controls import Picked

ASKED = "checks.asked"
"""Session state: the checks this session ran (store keys)."""


@dataclasses.dataclass(frozen=True)
class View:
    """What the checks draw on: the model, the picked image, its model-view pixels and the display options."""

    clf: models.Classifier
    picked: Picked
    pixels: np.ndarray
    display: Display


def section(view: View, done: list[tuple[explainers.Attribution, cache.Key]]) -> None:
    st.markdown("**Check one map**")
    by_method = {att.method: (att, key) for att, key in done}
    method = st.selectbox(
        "Map to check", list(by_method), format_func=lambda m: explainers.get(m).title, key="check.method"
    )
    att, key = by_method[method]
    sanity(view, att, key)
    stability(view, att, key)


def asked(store_key: tuple) -> None:
    """Remember that this session ran this check."""
    st.session_state.setdefault(ASKED, set()).add(store_key)


def asked_keys() -> frozenset:
    """The checks this session ran (read in the script run: a deferred download has no session)."""
    return frozenset(st.session_state.get(ASKED, set()))


def shown(store_key: tuple, asked: frozenset | None = None) -> Any | None:
    """A check's result if this session asked for it: one another session ran is cached, but not shown here."""
    return (
        cache.attribution_store().peek(store_key) if store_key in (asked_keys() if asked is None else asked) else None
    )


def sanity(view: View, att: explainers.Attribution, key: cache.Key) -> None:
    st.markdown("Sanity check: randomised weights (Adebayo et al., 2018)")
    st.caption(
        "Re-runs the method on copies of the model whose weights are re-drawn, from the top layer down to all "
        "of them. A map that explains the model changes (Spearman near 0); one that barely changes shows the "
        "image more than the model."
    )
    store_key = ("sanity", *key)
    if st.button("Randomise the weights and re-run", key="check.sanity"):
        slot = st.empty()
        bar = runs.progress_bar(slot.progress(0.0), "Re-running on randomised copies of the model…")
        cache.attribution_store().get_or_compute(
            store_key,
            runs.logged_call(
                f"sanity check of {cache.describe(key)}",
                lambda: trust.sanity_cascade(att.request, trust.cascade_depths(view.clf), progress=bar),
            ),
        )
        slot.empty()
        asked(store_key)
    steps = shown(store_key)
    if steps is None:
        return
    full = steps[-1]
    trained, randomised, cascade = st.columns(3)
    with trained:
        st.plotly_chart(render.attribution_figure(view.pixels, att, view.display), key="check.sanity.trained")
        st.caption("Trained model.")
    with randomised:
        randomised_att = dataclasses.replace(att, heatmap=full["heatmap"])
        st.plotly_chart(render.attribution_figure(view.pixels, randomised_att, view.display), key="check.sanity.map")
        st.caption(f"All {full['layers']} layers with weights randomised.")
    with cascade:
        st.plotly_chart(render.cascade_figure(steps), key="check.sanity.cascade")
    verdict = trust.verdict(full["correlation"])
    st.caption(
        f"Spearman with the trained model's map: **{full['correlation']:.2f}**, {verdict.says} ({verdict.rule})."
    )


def stability(view: View, att: explainers.Attribution, key: cache.Key) -> None:
    st.markdown(f"Stability over seeds {', '.join(map(str, SEEDS))}")
    if not att.request.uses_randomness():
        st.caption(
            "This method uses no randomness with these settings: every seed gives the same map (stability 1.0, "
            "held by a test that runs the seeds)."
        )
        return
    store_key = ("stability", *key)
    if st.button(f"Run {len(SEEDS)} seeds", key="check.stability"):
        slot = st.empty()
        bar = runs.progress_bar(slot.progress(0.0), f"Running {len(SEEDS)} seeds…")
        cache.attribution_store().get_or_compute(
            store_key,
            runs.logged_call(
                f"stability of {cache.describe(key)}",
                lambda: trust.stability_details(att.request, SEEDS, progress=bar),
            ),
        )
        slot.empty()
        asked(store_key)
    details = shown(store_key)
    if details is None:
        return
    mean = dataclasses.replace(att, heatmap=details["mean"].astype(np.float32))
    spread = dataclasses.replace(att, heatmap=details["disagreement"].astype(np.float32), signed=False)
    left, right, scores = st.columns(3)
    with left:
        st.plotly_chart(render.attribution_figure(view.pixels, mean, view.display), key="check.stability.mean")
        st.caption("Mean map over the seeds.")
    with right:
        figure = render.attribution_figure(view.pixels, spread, view.display)
        st.plotly_chart(figure, key="check.stability.disagreement")
        st.caption("Per-pixel disagreement (standard deviation over seeds).")
    with scores:
        st.metric("Mean pairwise Spearman", f"{details['spearman']:.2f}")
        st.metric("Top-10% pixels shared", f"{details['top10_overlap']:.0%}")
    st.caption(
        f"Mean pairwise Spearman **{details['spearman']:.2f}**; "
        f"top-10% pixels shared **{details['top10_overlap']:.0%}**. "
        "1 and 100%: every seed gives the same ranking; near 0: the map is mostly noise from the sampling."
    )
