"""The classes whose maps decide how far a progressive method refines: the same ones whatever class is asked.

Occlusion's coarse-to-fine split and LIME's stopping rule look at maps. Were they to look at the asked class's map
alone, another class would split other squares or stop at another sample, and so need forward passes the first
class did not run. They look instead at the maps of the image's top `WATCHED` classes (by logit), and of the target
and the contrast where those are not among them. Another class among the top ones then costs no forward pass, and
its map equals the map a fresh process computes for it alone; a class further down adds the passes its own map
needs.
"""

from __future__ import annotations

import numpy as np

from whylabel.explainers.base import Job

WATCHED = 5
"""Top classes whose maps every refinement watches: the five the page's prediction bars show."""


def classes(job: Job, logits: np.ndarray) -> list[int]:
    """The classes watched for `job`: the top `WATCHED` of the image's `logits` (ties by index), then the target
    and the contrast where they are not among them."""
    top = [int(c) for c in np.argsort(-np.asarray(logits), kind="stable")[:WATCHED]]
    asked = [c for c in (job.target, job.contrast) if c is not None and c not in top]
    return [*top, *asked]
