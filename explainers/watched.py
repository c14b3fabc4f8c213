"""The classes whose maps decide how far a progressive method refines: the same ones whatever class is asked.

LIME's stopping rule (and occlusion's coarse-to-fine split, when asked for) looks at maps. Were it to look at the
asked class's map alone, another class would stop at another sample or split other squares, and so need forward
passes the first class did not run. It looks instead at the maps of the image's top classes by logit: the top
one (LIME's default: every class then costs no new forward pass, and a map that had not settled when the top
class's did says so), or the top `WATCHED` (every map the prediction bars offer has settled; a class further
down adds itself, and the passes its own map needs). Each map then equals the map a fresh process computes for
its class alone.
"""

from __future__ import annotations

import numpy as np

from whylabel.explainers.base import Job

WATCHED = 5
"""The top classes watched when all of them are: the five the page's prediction bars show."""
CHOICES = {"top class": 1, "top 5": WATCHED}
"""A method's `watch` parameter: how many of the top classes' maps its rule watches."""


def classes(job: Job, logits: np.ndarray, top: int) -> list[int]:
    """The classes watched for `job`: the `top` of the image's `logits` (ties by index); with more than one, the
    target and the contrast too where they are not among them."""
    ranked = [int(c) for c in np.argsort(-np.asarray(logits), kind="stable")[:top]]
    asked = [c for c in (job.target, job.contrast) if c is not None and c not in ranked]
    return ranked if top == 1 else [*ranked, *asked]


def asked_is_watched(job: Job, watched: list[int]) -> bool:
    """Whether the map asked for is one of the watched maps (a class alone, among them)."""
    return job.contrast is None and job.target in watched
