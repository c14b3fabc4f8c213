"""The evidence files for one image, as bytes: figure.png, record.json, heatmaps.npz, report.html and
model_card.md; written to a folder or packed into a zip with fixed timestamps."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from whylabel.evidence.figure import figure_png
from whylabel.evidence.record import Evidence
from whylabel.evidence.report import model_card_md, report_html

ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def heatmaps_npz(evidence: Evidence) -> bytes:
    """The raw float32 maps by method name, and the uint8 model view they align with (`model_input`)."""
    arrays: dict[str, Any] = {
        att.method: np.ascontiguousarray(att.heatmap, dtype=np.float32) for att in evidence.attributions
    }
    for edit in evidence.edits:  # the edited views, uint8 like model_input, and the superpixels they edit
        arrays[f"whatif_{edit.kind}"] = edit.pixels
        arrays["whatif_segments"] = edit.segments.astype(np.int32)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, model_input=evidence.pixels, **arrays)
    return buffer.getvalue()


def files(evidence: Evidence, report: bool = True) -> dict[str, bytes]:
    """File name to contents; `report=False` leaves out report.html and model_card.md."""
    record = evidence.record()
    figure = figure_png(evidence)
    out = {
        "figure.png": figure,
        "record.json": (json.dumps(record, indent=1) + "\n").encode(),
        "heatmaps.npz": heatmaps_npz(evidence),
    }
    if report:
        out["report.html"] = report_html(record, figure).encode()
        out["model_card.md"] = model_card_md(record).encode()
    return out


def write(contents: dict[str, bytes], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (folder / name).write_bytes(data)


def zip_bytes(contents: dict[str, bytes], folder: str = "") -> bytes:
    """A zip of the files (inside `folder/` when given), with fixed timestamps so equal files give equal zips."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(zipfile.ZipInfo(f"{folder}/{name}" if folder else name, ZIP_DATE), data)
    return buffer.getvalue()
