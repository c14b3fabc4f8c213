"""`figure.png`: the model's view and every map side by side, on one stated colour scale, with a caption.

Matplotlib rather than Plotly: exporting a Plotly figure to PNG needs Kaleido and a Chrome, which an
evidence run on a server or a Ray worker should not depend on. The values coloured come from the page's own
normalisation (`render.colour_range`) with the display settings the page used (`Evidence.display`), so a
download looks like the screen: shared or per-panel scale, the clipping percentile, the opacity.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: this runs in servers, CLIs and Ray workers

import matplotlib.pyplot as plt
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from whylabel import explainers, whatif
from whylabel.evidence.record import Evidence
from whylabel.render.scale import DIVERGING, SEQUENTIAL, Display, Stop, colour_range, colours, with_boundaries

PANEL_INCHES = 3.0


def colormap(name: str, stops: tuple[Stop, ...]) -> LinearSegmentedColormap:
    """The page's colour scale as a matplotlib colormap: the same stops (transparent at zero), coloured by
    `render.scale.colours`, interpolated linearly between them as Plotly does on the page. 1025 entries (the
    default 256 puts no entry at 0.5): every quarter of the scale, the signed maps' clear zero included, is an
    entry exactly, and a value between entries is off its colour by at most 1/1024 of the scale."""
    positions = [position for position, _, _ in stops]
    stops_rgba = list(zip(positions, colours(positions, stops), strict=True))
    return LinearSegmentedColormap.from_list(name, stops_rgba, N=1025)


SIGNED_MAP = colormap("whylabel_diverging", DIVERGING)
UNSIGNED_MAP = colormap("whylabel_sequential", SEQUENTIAL)


def caption(evidence: Evidence) -> str:
    clf, target = evidence.clf, explainers.Target.make(evidence.clf, evidence.target, evidence.contrast)
    text = (
        f"Model {clf.name} · image {evidence.name} (sha256 {evidence.image_sha256[:12]}…) · "
        f"{target.plain(evidence.prediction.probs)}"
    )
    seeds = sorted({att.params["seed"] for att in evidence.attributions})
    return text + (f" · seed {', '.join(map(str, seeds))}" if seeds else "")


def panel_title(att: explainers.Attribution, scores: dict) -> str:
    title = explainers.get(att.method).title
    if "deletion_auc" in scores:
        title += f"\ndeletion {scores['deletion_auc']:.3f} · insertion {scores['insertion_auc']:.3f}"
    return title


def figure_png(evidence: Evidence) -> bytes:
    """The PNG bytes: model view first, then one panel per map, with the colour bars the display calls for."""
    atts, display = evidence.attributions, evidence.display
    columns = 1 + len(atts) + len(evidence.edits)
    figure, axes = plt.subplots(1, columns, figsize=(PANEL_INCHES * columns, PANEL_INCHES + 1.6), squeeze=False)
    axes[0, 0].imshow(evidence.pixels)
    axes[0, 0].set_title(f"what {evidence.clf.name} sees", fontsize=9)
    for ax, edit in zip(axes[0, 1 + len(atts) :], evidence.edits, strict=True):
        ax.imshow(edit.pixels)
        ax.set_title(edit_title(evidence, edit), fontsize=9)
    for ax, att in zip(axes[0, 1 : 1 + len(atts)], atts, strict=True):
        ax.imshow(with_boundaries(evidence.pixels, att))
        z, low, high, title = colour_range(att, display)
        image = ax.imshow(
            z, cmap=SIGNED_MAP if att.signed else UNSIGNED_MAP, vmin=low, vmax=high, alpha=display.opacity
        )
        ax.set_title(panel_title(att, evidence.scores.get(att.method, {})), fontsize=9)
        if not display.shared:  # each map in its own units: a colour bar under each panel
            colour_bar(figure, image, f"{'signed' if att.signed else 'unsigned'}; {title}", ax=ax)
    for ax in axes[0]:
        ax.set_axis_off()
    figure.subplots_adjust(left=0.01, right=0.99, top=0.80, bottom=0.24, wspace=0.04)
    if display.shared:
        shared_bars(figure, atts, display)
    figure.suptitle(caption(evidence), fontsize=9, wrap=True, y=0.98)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def edit_title(evidence: Evidence, edit: whatif.Edit) -> str:
    """What the edited view shows, in two short lines."""
    labels, n = evidence.clf.labels, len(edit.changed)
    if not edit.found:
        return f"{edit.kind}: none found\nin {edit.evaluations} views"
    if edit.kind == "sufficient":
        return f"{n} superpixels alone\nkeep {labels[edit.before]}"
    return f"{n} superpixels hidden:\n{labels[edit.before]} -> {labels[edit.after]}"


def shared_bars(figure: plt.Figure, atts: list[explainers.Attribution], display: Display) -> None:
    """One colour bar for the signed maps and one for the unsigned ones, on the shared scale."""
    kinds = sorted({att.signed for att in atts}, reverse=True)
    slots = {True: (0.08, 0.12, 0.38, 0.035), False: (0.54, 0.12, 0.38, 0.035)} if len(kinds) == 2 else {}
    for signed in kinds:
        what = "signed maps: red for the target, blue against" if signed else "unsigned maps"
        mappable = ScalarMappable(
            norm=plt.Normalize(-1.0 if signed else 0.0, 1.0), cmap=SIGNED_MAP if signed else UNSIGNED_MAP
        )
        bar_axes = figure.add_axes(slots.get(signed, (0.3, 0.12, 0.4, 0.035)))
        colour_bar(figure, mappable, f"{what}; each map / its p{display.percentile:g} of |value|", cax=bar_axes)


def colour_bar(figure: Figure, mappable: ScalarMappable, label: str, **where: Any) -> None:
    bar = figure.colorbar(mappable, orientation="horizontal", **where)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
