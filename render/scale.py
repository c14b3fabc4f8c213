"""The one normalisation and the one colouring: colour scales as numbers, display settings, and the values a
map is coloured by. No Plotly or matplotlib here, so the page's figures (Plotly, `plotly_scale`), the evidence
figure (matplotlib, a colormap from the same stops) and the audit's thumbnails (`colours`) share it without
either's weight."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from skimage.segmentation import find_boundaries

from whylabel.explainers.base import Attribution, Param

Stop = tuple[float, tuple[int, int, int], float]
"""A colour stop: position in [0, 1] on the scale, (r, g, b) in 0-255, alpha in [0, 1]."""

# Zero is transparent, so the image shows through where a map says nothing. Signed maps diverge from zero at
# the centre: red for the target, blue against. Unsigned maps run from zero (pale) to the top (dark red).
DIVERGING: tuple[Stop, ...] = (
    (0.0, (5, 48, 97), 0.95),
    (0.25, (67, 147, 195), 0.75),
    (0.5, (247, 247, 247), 0.0),
    (0.75, (214, 96, 77), 0.75),
    (1.0, (103, 0, 31), 0.95),
)
SEQUENTIAL: tuple[Stop, ...] = (
    (0.0, (255, 255, 204), 0.0),
    (0.35, (254, 178, 76), 0.6),
    (0.7, (240, 59, 32), 0.85),
    (1.0, (128, 0, 38), 0.95),
)
BOUNDARY = np.array([255, 230, 0], dtype=np.uint8)
PERCENTILE = Param("percentile", 99.0, "Percentile of |value| drawn at full colour.", low=0.0, high=100.0)
OPACITY = Param("opacity", 0.8, "Heatmap opacity over the image.", low=0.0, high=1.0)


def colours(values: npt.ArrayLike, stops: tuple[Stop, ...]) -> np.ndarray:
    """(..., 4) float64 RGBA in [0, 1]: each value in [0, 1] (clipped) coloured by linear interpolation of r, g,
    b and alpha between the two stops around it, as Plotly and matplotlib interpolate a colour scale."""
    positions = np.array([position for position, _, _ in stops], dtype=np.float64)
    table = np.array([(*rgb, 255 * alpha) for _, rgb, alpha in stops], dtype=np.float64) / 255
    t = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    return np.stack([np.interp(t, positions, table[:, channel]) for channel in range(4)], axis=-1)


def css(rgb: tuple[int, int, int], alpha: float | None = None) -> str:
    """A colour as CSS/Plotly text: `rgb(r,g,b)`, or `rgba(r,g,b,alpha)` given an alpha."""
    r, g, b = (int(c) for c in rgb)
    return f"rgb({r},{g},{b})" if alpha is None else f"rgba({r},{g},{b},{alpha:g})"


def plotly_scale(stops: tuple[Stop, ...]) -> list[list]:
    """The stops as a Plotly colorscale, `[[position, "rgba(r,g,b,alpha)"], ...]`."""
    return [[float(position), css(rgb, alpha)] for position, rgb, alpha in stops]


@dataclass(frozen=True)
class Display:
    """How maps are drawn; changing these never recomputes a map.

    shared: every map divided by its own `percentile` of |value| and drawn on one scale,
    [-1, 1] for signed maps and [0, 1] for unsigned ones. Otherwise each panel uses its raw units.
    """

    shared: bool = True
    percentile: float = 99.0
    opacity: float = 0.8

    def __post_init__(self) -> None:
        if not isinstance(self.shared, bool):
            raise ValueError(f"shared must be True or False; got {self.shared!r}")
        object.__setattr__(self, "percentile", PERCENTILE.check(self.percentile))
        object.__setattr__(self, "opacity", OPACITY.check(self.opacity))


def robust_max(heatmap: np.ndarray, percentile: float) -> float:
    """The `percentile` of |values|; values beyond it are clipped. Never zero."""
    scale = float(np.percentile(np.abs(heatmap), percentile))
    if scale > 0:
        return scale
    top = float(np.abs(heatmap).max())
    return top if top > 0 else 1.0


def normalised(att: Attribution, percentile: float) -> np.ndarray:
    """The map divided by its robust maximum and clipped to [-1, 1] ([0, 1] when unsigned)."""
    low = -1.0 if att.signed else 0.0
    return np.clip(att.heatmap / robust_max(att.heatmap, percentile), low, 1.0)


def value_range(att: Attribution, display: Display) -> tuple[float, str]:
    """The |value| drawn at full colour (the display's percentile of |value|), and the colour bar's title."""
    top = robust_max(att.heatmap, display.percentile)
    if display.shared:
        return top, f"relative (p{display.percentile:g} of |value| = 1)"
    return top, f"{att.score} units"


def colour_range(att: Attribution, display: Display) -> tuple[np.ndarray, float, float, str]:
    """The values to colour, their range, and the colour bar's title."""
    top, title = value_range(att, display)
    if display.shared:
        z, top = normalised(att, display.percentile), 1.0
    else:
        z = np.clip(att.heatmap, -top if att.signed else 0.0, top)
    return z, (-top if att.signed else 0.0), top, title


def with_boundaries(pixels: np.ndarray, att: Attribution) -> np.ndarray:
    """The pixels, with superpixel boundaries drawn in yellow when the method used superpixels."""
    segments = att.extras.get("segments")
    return pixels if segments is None else outlined(pixels, segments)


def outlined(pixels: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """A copy of the pixels with the boundaries of `segments` drawn in yellow."""
    out = np.array(pixels)
    out[find_boundaries(segments, mode="inner", background=-1)] = BOUNDARY  # superpixel 0 is no background
    return out
