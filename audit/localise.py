"""How far a map's evidence lies on the object a person marked: two scores per image, from their papers.

- Relevance mass accuracy (Arras, Osman & Samek 2022, "CLEVR-XAI"): the share of the map's positive evidence
  that falls inside the box. 1 is all of it; a uniform map scores the box's share of the image.
- The pointing game (Zhang et al. 2016, "Top-down neural attention by excitation backprop"): a hit when the
  map's largest value lies inside the box.

Boxes come in the image's own pixels (left, top, right, bottom) and are moved to the model's view here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image

from whylabel import models

Box = tuple[float, float, float, float]


def view_box(clf: models.Classifier, img: Image.Image, box: Box) -> Box:
    """A box in the image's pixels moved into the model's view (its centred crop, resized), in view pixels."""
    left, top, side = clf.crop_box(img)
    scale = clf.input_size / side
    x0, y0, x1, y1 = box
    return (x0 - left) * scale, (y0 - top) * scale, (x1 - left) * scale, (y1 - top) * scale


def inside(shape: tuple[int, int], box: Box) -> np.ndarray:
    """The pixels whose centres lie in the box (pixel (r, c) has its centre at (c + 0.5, r + 0.5))."""
    rows = np.arange(shape[0]) + 0.5
    cols = np.arange(shape[1]) + 0.5
    x0, y0, x1, y1 = box
    return ((rows >= y0) & (rows < y1))[:, None] & ((cols >= x0) & (cols < x1))[None, :]


def mass_accuracy(heatmap: np.ndarray, box: Box) -> float | None:
    """Positive evidence inside the box over all positive evidence; None when the map has none."""
    positive = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None)
    total = positive.sum()
    return None if total <= 0 else float(positive[inside(positive.shape, box)].sum() / total)


def pointing(heatmap: np.ndarray, box: Box) -> bool | None:
    """Whether the map's largest value lies in the box (a tie counts as a hit if any maximum does); None if flat."""
    values = np.asarray(heatmap, dtype=np.float64)
    if values.max() <= values.min():
        return None
    return bool(inside(values.shape, box)[values == values.max()].any())


def scores(heatmap: np.ndarray, box: Box) -> dict[str, float | bool | None]:
    return {"mass": mass_accuracy(heatmap, box), "pointing": pointing(heatmap, box)}


def read_boxes(data: bytes) -> dict[str, Box]:
    """Boxes by file from CSV (file,left,top,right,bottom; a header line is allowed) or JSON.

    JSON is a list of {"file": ..., "box": [left, top, right, bottom]} or one object {file: [l, t, r, b]}.
    A bad line raises ValueError naming it.
    """
    text = data.decode("utf-8-sig", errors="replace").strip()
    rows = json_rows(text) if text[:1] in "[{" else csv_rows(text)
    boxes: dict[str, Box] = {}
    for where, (file, values) in rows:
        boxes[str(file)] = checked_box(values, where)
    return boxes


def json_rows(text: str) -> list[tuple[str, tuple[str, list]]]:
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"the boxes file is not valid JSON: {err.msg} (line {err.lineno})") from None
    if isinstance(loaded, Mapping):
        return [(f"entry {file!r}", (file, box)) for file, box in loaded.items()]
    if not isinstance(loaded, list) or not all(isinstance(e, Mapping) and {"file", "box"} <= e.keys() for e in loaded):
        raise ValueError('the boxes JSON must be {file: [l, t, r, b]} or a list of {"file": ..., "box": [...]}')
    return [(f"entry {n + 1}", (entry["file"], entry["box"])) for n, entry in enumerate(loaded)]


def csv_rows(text: str) -> list[tuple[str, tuple[str, list]]]:
    rows = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or (n == 1 and row[0].strip().lower() == "file"):
            continue
        if len(row) != 5:
            raise ValueError(f"boxes line {n}: expected file,left,top,right,bottom; got {len(row)} fields")
        rows.append((f"line {n}", (row[0].strip(), row[1:])))
    return rows


def checked_box(values: object, where: str) -> Box:
    try:
        x0, y0, x1, y1 = (float(v) for v in cast("Iterable[Any]", values))
    except (TypeError, ValueError):
        raise ValueError(f"boxes {where}: a box is four numbers left, top, right, bottom") from None
    if not all(np.isfinite([x0, y0, x1, y1])) or x1 <= x0 or y1 <= y0:
        raise ValueError(f"boxes {where}: right must exceed left and bottom exceed top, all finite")
    return x0, y0, x1, y1


def box_for(boxes: Mapping[str, Box], file: str) -> Box | None:
    """The box given for an image: by its path as the audit names it, else by its file name."""
    return boxes.get(file) or boxes.get(Path(file).name)
