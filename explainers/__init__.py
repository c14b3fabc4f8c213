"""Attribution methods: one module per method in `methods/`, looked up by name, on shared plumbing.

The plumbing beside the methods: `base` (Explainer, Attribution, Param), `registry`, `explain` (a request and
its run), `forward` (batched forward passes), `hide` (the one "hide regions" mechanism), `progressive`
(stages), `hooks`, `superpixels`, `watched`, `blindspots` (warnings), `warm` and `kept` (the result store).
Adding a method: one module in `methods/` with an `Explainer` subclass decorated with `@register`, and one
import line in `methods/__init__.py`.

May import: whylabel.models, whylabel.store. How far a map can be trusted is `whylabel.trust`'s job, edits are
`whylabel.whatif`'s, drawing is `whylabel.render`'s.
"""

from whylabel.explainers import methods  # noqa: F401  (registers the methods)
from whylabel.explainers.base import Attribution, Explainer, Param
from whylabel.explainers.explain import Request, explain, run, stages
from whylabel.explainers.registry import available, get, register
from whylabel.explainers.target import Target
from whylabel.explainers.warm import warm_up
from whylabel.models import worker

worker.PLUGINS.append("whylabel.explainers")  # a user's model's worker runs the gradient methods itself

__all__ = [
    "Attribution",
    "Explainer",
    "Param",
    "Request",
    "Target",
    "available",
    "explain",
    "get",
    "register",
    "run",
    "stages",
    "warm_up",
]
