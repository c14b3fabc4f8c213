"""whylabel: pick a model and an image, see the prediction and why; or audit a set of images. Run with `make run`.

Two pages: "Explain an image" (`ui/single.py`, the page at the root URL) and "Audit a set" (`ui/audit.py`, /audit).
"""

import streamlit as st

from whylabel.ui import audit, look, single

st.set_page_config(page_title="whylabel", page_icon="🔎", layout="wide")
look.still()
st.navigation([single.as_page(), audit.as_page()]).run()
