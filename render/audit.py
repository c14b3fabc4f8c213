"""Pictures of an audit's maps: an evidence-share grid as a PNG, over the image it belongs to or alone.

A grid is unsigned (shares of the positive evidence, never below zero), so it is coloured like the page's
unsigned maps: `scale.SEQUENTIAL`, through the same `scale.colours`, but opaque (the stops' alpha is for a map
laid over its image on the page; a thumbnail stands alone, or is blended evenly over a grey copy of its image).
Each picture is scaled from 0 to `top`; pass one `top` to draw several grids on one scale (a class's mean map
beside its clusters'), and say so beside them.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from whylabel.render.scale import SEQUENTIAL, colours


def grid_rgb(grid: np.ndarray, size: int, top: float | None = None) -> np.ndarray:
    """(size, size, 3) uint8: the grid's cells coloured from 0 (pale) to `top` (dark red), nearest-neighbour."""
    top = float(grid.max()) if top is None else float(top)
    scaled = np.clip(np.asarray(grid, dtype=np.float64) / top if top > 0 else np.zeros_like(grid), 0, 1)
    rgb = (colours(scaled, SEQUENTIAL)[..., :3] * 255).round().astype(np.uint8)
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.NEAREST))


def grid_png(grid: np.ndarray, size: int = 96, top: float | None = None, under: bytes | None = None) -> bytes:
    """The grid as a PNG; with `under` (a PNG of the image), blended over its grey version so both show."""
    rgb = grid_rgb(grid, size, top)
    if under is not None:
        grey = Image.open(io.BytesIO(under)).convert("L").resize((size, size), Image.Resampling.LANCZOS)
        base = np.repeat(np.asarray(grey, dtype=np.float64)[..., None], 3, axis=-1)
        rgb = (0.45 * base + 0.55 * rgb).round().astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
