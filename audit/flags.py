"""The rule that flags a cluster, and the words that say where its evidence lies.

The rule is `RULE`, stated once in words with its numbers (`MIN_MEMBERS`, `MASS`, `LIFT`, `BLUR`); the page and
the report show it, and audit.json holds it with the numbers as numbers (`record()`).
The numbers were chosen on 28 trained demos (marks of several places, sizes, classes and shares) and two clean
models, on saliency maps, as the widest margin between clusters of marked images and all others; five demos not
among them are the tests (tests/audit/test_demo.py). docs/audit.md gives the margin and the cases
the rule misses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

LIFT = 8.0
MASS = 0.05
BLUR = 1.0
MIN_MEMBERS = 2
RULE = (
    f"A cluster of at least MIN_MEMBERS ({MIN_MEMBERS}) images is flagged when its typical member puts at least "
    f"MASS ({MASS}) of its evidence in cells where it holds at least LIFT ({LIFT}) times the evidence of a typical "
    "other image of its class. A typical member is the per-cell median over the cluster (a habit every member "
    "shares, not one a few have strongly); a typical other image is the per-cell median over the class's other "
    f"images, each map blurred by BLUR ({BLUR}) cells first, so that a stroke one cell to the side is not a new "
    "place, and a median so that a second cluster with the same habit does not hide the first. Only cells above "
    "the uniform share count."
)
"""The flag rule in words, with its numbers: what the page, the report and audit.json say."""


def record() -> dict[str, Any]:
    """The rule as audit.json holds it: its words and its numbers."""
    return {"text": RULE, "lift": LIFT, "mass": MASS, "min_members": MIN_MEMBERS, "blur": BLUR}


@dataclass(frozen=True)
class Finding:
    """Where a cluster's evidence stands apart from its class's, and whether that is flagged."""

    cells: np.ndarray
    """(GRID, GRID) bool: the cells where the cluster puts `LIFT` times its class's typical evidence."""
    mass: float
    """The share of a typical member's evidence in those cells."""
    typical: float
    """The share of a typical other image's evidence there."""
    place: str
    flagged: bool
    why: str


def typical_map(grids: np.ndarray) -> np.ndarray:
    """The per-cell median of the maps, each blurred by `BLUR` cells."""
    blurred = gaussian_filter(grids, (0, BLUR, BLUR), mode="constant")  # each map alone: none along the stack
    return np.median(blurred, axis=0)


def place(cells: np.ndarray, weights: np.ndarray) -> str:
    """Where the weighted cells lie, in words: a corner, an edge, a side or the centre."""
    rows, cols = np.indices(cells.shape)
    mass = np.where(cells, weights, 0.0)
    y = float((rows * mass).sum() / mass.sum() + 0.5) / cells.shape[0]
    x = float((cols * mass).sum() / mass.sum() + 0.5) / cells.shape[1]
    vertical = "top" if y < 1 / 3 else "bottom" if y > 2 / 3 else ""
    across = "left" if x < 1 / 3 else "right" if x > 2 / 3 else ""
    if vertical and across:
        return f"the {vertical}-{across} corner"
    if vertical or across:
        edge = min(y, 1 - y) if vertical else min(x, 1 - x)
        return f"the {vertical or across} {'edge' if edge < 0.2 else 'part'}"
    return "the centre"


def finding(cluster: np.ndarray, others: np.ndarray, label: str) -> Finding:
    """Compare a cluster's maps (m, G, G) with the rest of its class's (r, G, G); r >= 1."""
    member = np.median(cluster, axis=0)
    typical = typical_map(others)
    cells = (member >= LIFT * typical) & (member > 1.0 / member.size)
    if not cells.any() or member.sum() <= 0:
        return Finding(cells, 0.0, 0.0, "", False, "")
    mass = float(member[cells].sum() / member.sum())
    where = place(cells, member)
    share = float(typical[cells].sum() / max(typical.sum(), 1e-12))
    flagged = mass >= MASS and len(cluster) >= MIN_MEMBERS
    why = (
        f"a typical image of this cluster puts {mass:.0%} of its evidence in {where} ({cells.mean():.0%} of the "
        f"image), where a typical other image of {label!r} puts {share:.1%} of its own"
    )
    return Finding(cells, mass, share, where, flagged, why if flagged else "")
