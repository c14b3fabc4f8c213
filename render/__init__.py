"""The one drawing path: one colour scale defined as numbers and one normalisation (`scale`), shared by the
page's Plotly figures (`figures`), the evidence figure and the audit's thumbnails (`audit`). No Streamlit
here; `whylabel.ui` lays these figures out.

May import: whylabel.explainers, whylabel.trust, whylabel.whatif, whylabel.audit, whylabel.models,
whylabel.store.
"""

from whylabel.render.figures import (
    agreement_figure,
    attribution_figure,
    caption,
    cascade_figure,
    faithfulness_caption,
    faithfulness_figure,
    prediction_figure,
)
from whylabel.render.scale import (
    BOUNDARY,
    DIVERGING,
    SEQUENTIAL,
    Display,
    colour_range,
    colours,
    normalised,
    plotly_scale,
    robust_max,
    with_boundaries,
)

__all__ = [
    "BOUNDARY",
    "DIVERGING",
    "SEQUENTIAL",
    "Display",
    "agreement_figure",
    "attribution_figure",
    "caption",
    "cascade_figure",
    "colour_range",
    "colours",
    "faithfulness_caption",
    "faithfulness_figure",
    "normalised",
    "plotly_scale",
    "prediction_figure",
    "robust_max",
    "with_boundaries",
]
