"""The one rendering path: one normalisation (`scale`), shared by the page's Plotly figures (`figures`) and the
evidence figure. No Streamlit here; `whylabel.ui` lays these figures out."""

from whylabel.render.figures import (
    agreement_figure,
    attribution_figure,
    caption,
    cascade_figure,
    faithfulness_caption,
    faithfulness_figure,
    prediction_figure,
)
from whylabel.render.scale import BOUNDARY, Display, colour_range, normalised, robust_max, with_boundaries

__all__ = [
    "BOUNDARY",
    "Display",
    "agreement_figure",
    "attribution_figure",
    "caption",
    "cascade_figure",
    "colour_range",
    "faithfulness_caption",
    "faithfulness_figure",
    "normalised",
    "prediction_figure",
    "robust_max",
    "with_boundaries",
]
