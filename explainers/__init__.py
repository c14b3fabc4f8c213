"""Attribution methods for whylabel: one module per method, looked up by name.

Adding a method: write one module with an `Explainer` subclass decorated with `@register`,
and add one import line below (the order here is the order the dashboard shows).
How far a map can be trusted is `whylabel.trust`'s job; drawing it is `whylabel.render`'s.
"""

# isort: off
from whylabel.explainers.methods import saliency, occlusion, lime_image, shap_image  # noqa: F401  (registers the methods)
from whylabel.explainers.methods import integrated_gradients, smoothgrad, gradcam, guided_backprop  # noqa: F401

# isort: on
from whylabel.explainers.base import Attribution, Explainer, Param
from whylabel.explainers.explain import Request, explain, run, stages
from whylabel.explainers.registry import available, get, register
from whylabel.explainers.warm import warm_up
from whylabel.models import worker

worker.PLUGINS.append("whylabel.explainers")  # a user's model's worker runs the gradient methods itself

__all__ = [
    "Attribution",
    "Explainer",
    "Param",
    "Request",
    "available",
    "explain",
    "get",
    "register",
    "run",
    "stages",
    "warm_up",
]
