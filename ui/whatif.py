"""The page's "What if?" section: the fewest superpixels whose hiding changes the label, and the fewest that
alone keep it (`whatif.counterfactual`, `whatif.sufficient`), searched when asked."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import streamlit as st
from streamlit_image_coordinates import streamlit_image_coordinates

from whylabel import models, render, whatif
from whylabel.render.scale import outlined
from whylabel.ui import cache, checks, runs
from whylabel.ui.controls import Picked

SEARCHES = {
    "counterfactual": ("Hidden, these change the label", whatif.counterfactual),
    "sufficient": ("Alone, these keep the label", whatif.sufficient),
}


def section(clf: models.Classifier, picked: Picked) -> None:
    st.markdown("**What if?**")
    st.caption(
        "The fewest superpixels whose hiding (blurred, as the maps hide them) changes the top-1 class, and the "
        "fewest that alone, everything else hidden, keep it; both pruned until every member matters. A "
        "different fill or segmentation can give another answer: these are tests of the model, not its reasons."
    )
    by_hand(clf, picked)
    keys = {kind: store_key(kind, clf, picked) for kind in SEARCHES}
    if st.button("Search the smallest change and the smallest sufficient part", key="whatif.run"):
        with st.spinner("Searching superpixels, best first…"):
            for kind, (_, search) in SEARCHES.items():
                compute = runs.logged_call(f"{kind} of {picked.name}", functools.partial(search, clf, picked.image))
                cache.attribution_store().get_or_compute(keys[kind], compute)
                checks.asked(keys[kind])
    edits = {kind: edit for kind, key in keys.items() if (edit := checks.shown(key)) is not None}
    if len(edits) < len(SEARCHES):
        return
    for column, (kind, edit) in zip(st.columns(2), edits.items(), strict=True):
        with column:
            show(clf, SEARCHES[kind][0], edit)


HIDDEN = "whatif.hidden"
"""Session state: per (model, image), the superpixels hidden by hand."""
LAST_CLICK = "whatif.last_click"
"""Session state: the time of the click last acted on (the component returns its last click on every run)."""


def by_hand(clf: models.Classifier, picked: Picked) -> None:
    """Click a superpixel to hide it (blurred) or show it again; the edited view's top 5 beside it."""
    pixels = clf.input_image(picked.image)
    segments = cache.superpixels(clf.name, picked.key, pixels)
    edits: dict[tuple[str, str], frozenset[int]] = st.session_state.setdefault(HIDDEN, {})
    image = (clf.name, picked.key)
    hidden = edits.get(image, frozenset())
    view = whatif.edited_view(pixels, segments, hidden)
    left, right = st.columns(2)
    with left:
        click = streamlit_image_coordinates(outlined(view, segments), width=260, key="whatif.click")
        if st.button("Reset: show every superpixel", key="whatif.reset", disabled=not hidden):
            edits[image] = frozenset()
            st.rerun()
        st.button(
            "Explain the edited image",
            key="whatif.explain",
            disabled=not hidden,
            on_click=explain_edited,
            args=(clf, picked, segments, hidden),
            help="Sends the photo with these superpixels blurred to the panels above, as an upload.",
        )
    if toggled(click):
        edits[image] = hidden ^ {whatif.clicked(segments, click)}
        st.rerun()
    with right:
        st.plotly_chart(render.prediction_figure(clf.predict_view(view)), key="whatif.by_hand")
    st.caption(
        f"Edit by hand: click a superpixel to hide it (blurred, as the maps hide regions) or to show it again; "
        f"the top 5 follow, one forward pass each. {len(hidden)} of {segments.max() + 1} superpixels hidden."
    )


def explain_edited(clf: models.Classifier, picked: Picked, segments: Any, hidden: frozenset[int]) -> None:
    """Before the next run: the edited photo becomes the picked image (the "Upload" source), as an upload would."""
    edited = whatif.edited_image(clf, picked.image, segments, hidden)
    digest = hashlib.sha256(edited.tobytes()).hexdigest()
    name = f"{picked.name}, {len(hidden)} superpixel{'' if len(hidden) == 1 else 's'} hidden"
    st.session_state["upload"] = Picked(name, f"edit:{digest}", edited)
    st.session_state["source"] = "Upload"


def toggled(click: dict[str, Any] | None) -> bool:
    """A click not acted on yet (each is acted on once, though the component returns it on every run)."""
    if not click or click.get("unix_time") == st.session_state.get(LAST_CLICK):
        return False
    st.session_state[LAST_CLICK] = click.get("unix_time")
    return True


def store_key(kind: str, clf: models.Classifier, picked: Picked) -> tuple:
    """Where a search's result is cached (and how the evidence download finds the ones this session ran)."""
    return ("whatif", kind, clf.name, picked.key)


def show(clf: models.Classifier, title: str, edit: whatif.Edit) -> None:
    st.markdown(f"*{title}*")
    st.image(edit.pixels, width=220, caption=f"{len(edit.changed)} of {edit.segments.max() + 1} superpixels")
    if edit.found:
        st.plotly_chart(render.prediction_figure(clf.predict_view(edit.pixels)), key=f"whatif.{edit.kind}")
    before, after = clf.labels[edit.before], clf.labels[edit.after]
    st.caption(
        f"{edit.message} {before} {edit.before_probability:.1%} before; now {after}, with {before} at "
        f"{edit.after_probability:.1%}. {edit.evaluations} edited views tried ({edit.ran} new forward passes), "
        f"{edit.seconds:.1f} s."
    )
