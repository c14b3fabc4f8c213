"""The "Explain an image" page: pick a model and an image, see the prediction and why (the page `app.py` opens)."""

from __future__ import annotations

import streamlit as st

from whylabel import explainers
from whylabel.ui import cache, controls, panels, whatif

TITLE = "Explain an image"


def page() -> None:
    st.title("whylabel")
    st.caption("What did the image classifier use, and how far can each map be trusted?")

    clf = controls.pick_model()
    picked = controls.pick_image(clf.name)
    methods = controls.pick_methods()
    seed = controls.pick_seed()
    cache.warm_up()  # after the model's engine is timed, so the two do not compete
    params = {method: controls.pick_params(method, clf.input_size) for method in methods}
    display = controls.pick_display()

    prediction = panels.predict(clf, picked)
    left, right = st.columns([1, 3])
    with left:
        panels.model_view(clf, picked)
    with right:
        panels.prediction(prediction)
        target = controls.pick_target(clf, prediction)

    panels.heading(clf, target, display)
    panels.explanations(clf, picked, target, {"methods": methods, "seed": seed, "params": params}, display)
    whatif.section(clf, picked)
    _ = explainers  # the registry is imported for its methods


def as_page() -> st.Page:
    """This page for `st.navigation`, and for `st.switch_page` (which finds a page by its url path)."""
    return st.Page(page, title=TITLE, url_path="explain", default=True)
