"""Attribution methods for whylabel: one module per method, looked up by name.

Adding a method: write one module with an `Explainer` subclass decorated with `@register`,
and add one import line below (the order here is the order the dashboard shows).
"""

# isort: off
from explainers import saliency, occlusion, lime_image, shap_image  # noqa: F401  (registers the methods)
from explainers import integrated_gradients, smoothgrad, gradcam, guided_backprop  # noqa: F401

# isort: on
from explainers.base import Attribution, Explainer, Param
from explainers.explain import explain
from explainers.registry import available, get, register
from explainers.trust import evaluate, sanity, stability
from explainers.warm import warm_up

__all__ = [
    "Attribution",
    "Explainer",
    "Param",
    "available",
    "evaluate",
    "explain",
    "get",
    "register",
    "sanity",
    "stability",
    "warm_up",
]
