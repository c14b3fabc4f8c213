"""The attribution methods, one module each: only the map, on the plumbing of `whylabel.explainers`.

The order of the imports is the order the dashboard shows.
"""

# isort: off
from whylabel.explainers.methods import saliency, occlusion, lime_image, shap_image  # noqa: F401
from whylabel.explainers.methods import integrated_gradients, smoothgrad, gradcam, guided_backprop  # noqa: F401

# isort: on
