"""The page's "What if?" section: the fewest superpixels whose hiding changes the label, and the fewest that
alone keep it (`explainers.counterfactual`, `explainers.sufficient`), searched when asked."""

from __future__ import annotations

import streamlit as st

from whylabel import explainers, models, render
from whylabel.ui import cache, checks, runs
from whylabel.ui.controls import Picked

SEARCHES = {
    "counterfactual": ("Hidden, these change the label", explainers.counterfactual),
    "sufficient": ("Alone, these keep the label", explainers.sufficient),
}


def section(clf: models.Classifier, picked: Picked) -> None:
    st.markdown("**What if?**")
    st.caption(
        "The fewest superpixels whose hiding (blurred, as the maps hide them) changes the top-1 class, and the "
        "fewest that alone, everything else hidden, keep it; both pruned until every member matters. A "
        "different fill or segmentation can give another answer: these are tests of the model, not its reasons."
    )
    keys = {kind: store_key(kind, clf, picked) for kind in SEARCHES}
    if st.button("Search the smallest change and the smallest sufficient part", key="whatif.run"):
        with st.spinner("Searching superpixels, best first…"):
            for kind, (_, search) in SEARCHES.items():
                compute = runs.logged_call(f"{kind} of {picked.name}", lambda s=search: s(clf, picked.image))
                cache.attribution_store().get_or_compute(keys[kind], compute)
                checks.asked(keys[kind])
    edits = {kind: checks.shown(key) for kind, key in keys.items()}
    if any(edit is None for edit in edits.values()):
        return
    for column, (kind, edit) in zip(st.columns(2), edits.items(), strict=True):
        with column:
            show(clf, SEARCHES[kind][0], edit)


def store_key(kind: str, clf: models.Classifier, picked: Picked) -> tuple:
    """Where a search's result is cached (and how the evidence download finds the ones this session ran)."""
    return ("whatif", kind, clf.name, picked.key)


def show(clf: models.Classifier, title: str, edit: explainers.Edit) -> None:
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
