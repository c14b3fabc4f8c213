"""How the page moves: no CSS transitions.

Streamlit fades every element that goes stale while a run replaces it (to a third of its opacity, over about a
second) and fades it back when it is redrawn; a page of four panels has dozens in flight during a run, and every
frame of every fade is work for the browser, which on a small machine shares the cores that compute. Without
transitions a stale element still dims, at once. Measured (Chromium on the same 2 cores as the server, four
uploads, 2026-12-07): Chromium's CPU per upload fell from 2.5-3.5 s to 2.0-2.4 s, and the whole view came
about 0.8 s sooner. Animations (the running indicator, spinners) are kept: they say the page is alive.
"""

from __future__ import annotations

import streamlit as st

NO_TRANSITIONS = "<style>*, *::before, *::after { transition: none !important; }</style>"


def still() -> None:
    """Turn the page's CSS transitions off (a style alone: Streamlit adds it to the page, not as an element)."""
    st.html(NO_TRANSITIONS)
