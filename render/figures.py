"""The page's Plotly figures: maps, prediction bars, faithfulness curves, agreement and the sanity cascade."""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from whylabel.explainers.base import Attribution
from whylabel.explainers.target import Target
from whylabel.models import Prediction
from whylabel.render.scale import DIVERGING, SEQUENTIAL, Display, css, plotly_scale, value_range, with_boundaries

DEFAULT = Display()


def attribution_figure(pixels: np.ndarray, att: Attribution, display: Display = DEFAULT) -> go.Figure:
    """The map over exactly the model-view pixels; hover shows the raw value.

    Light for the browser: the image travels as a lossless PNG, and the heatmap carries the raw values once
    (float32), coloured between `zmin` and `zmax` (Plotly clamps values beyond them, as the clipping does), so
    no second array is sent for the hover.
    """
    top, title = value_range(att, display)
    figure = go.Figure(go.Image(source=png_uri(with_boundaries(pixels, att)), hoverinfo="skip"))
    figure.add_trace(
        go.Heatmap(
            z=att.heatmap.astype(np.float32, copy=False),
            zmin=-top if att.signed else 0.0,
            zmax=top,
            colorscale=plotly_scale(DIVERGING if att.signed else SEQUENTIAL),
            opacity=display.opacity,
            hovertemplate="x %{x}, y %{y}<br>value %{z:.4g}<extra></extra>",
            colorbar=colour_bar(att, display, top, title),
        )
    )
    figure.update_xaxes(visible=False, range=[-0.5, pixels.shape[1] - 0.5])
    figure.update_yaxes(visible=False, range=[pixels.shape[0] - 0.5, -0.5], scaleanchor="x")
    figure.update_layout(margin={"l": 0, "r": 0, "t": 0, "b": 60}, height=340, uirevision=att.method)
    return figure


def colour_bar(att: Attribution, display: Display, top: float, title: str) -> dict:
    """A horizontal colour bar under the map; on the shared scale its ticks read relative to `top` (-1 to 1)."""
    bar = {"title": {"text": title, "side": "top"}, "orientation": "h", "thickness": 10, "len": 0.9}
    bar |= {"y": -0.02, "yanchor": "top"}
    if display.shared:
        steps = np.linspace(-1.0 if att.signed else 0.0, 1.0, 5 if att.signed else 3)
        bar |= {"tickvals": list(steps * top), "ticktext": [f"{step:g}" for step in steps]}
    return bar


def png_uri(pixels: np.ndarray) -> str:
    """The pixels as a lossless PNG data URI (about half the bytes of the raw array in base64)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, format="PNG", compress_level=3)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def caption(att: Attribution) -> str:
    """Method, target, parameters, seed and runtime in one line."""
    params = ", ".join(f"{k}={v}" for k, v in att.params.items() if k != "seed")
    target = Target.of(att)
    parts = [target.markdown, f"score: {target.score_name}"]
    parts += [params] if params else []
    kept = att.extras.get("kept") is True  # read back from `store.results`: computed by an earlier run
    parts += [
        f"seed {att.params['seed']}",
        f"{att.seconds:.2f} s" + (" when first computed, kept on disk" if kept else ""),
    ]
    if "evaluations" in att.extras:
        parts.append(f"{att.extras['evaluations']} model evaluations")
    if "relative_gap" in att.extras:
        gap, rel = att.extras["completeness_gap"], att.extras["relative_gap"]
        parts.append(f"completeness gap {gap:+.3g} ({rel:.1%} of the score change)")
    if "r2" in att.extras:
        parts.append(f"surrogate R² {att.extras['r2']:.2f} over {att.extras['n_superpixels']} superpixels")
    if att.stage is not None and att.stage.planned > 1:  # a method that samples: which estimate this is
        parts.append(att.stage.label())
    return " · ".join(parts)


def prediction_figure(prediction: Prediction) -> go.Figure:
    """Top-k probabilities as horizontal bars, the top class at the top."""
    labels = [f"{label} ({index})" for index, label, _ in prediction.top][::-1]
    probs = [p for _, _, p in prediction.top][::-1]
    figure = go.Figure(
        go.Bar(
            x=probs,
            y=labels,
            orientation="h",
            text=[f"{p:.1%}" for p in probs],
            textposition="auto",
            marker_color="#4c78a8",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    figure.update_xaxes(range=[0, 1], tickformat=".0%", title="probability")
    figure.update_layout(margin={"l": 0, "r": 10, "t": 10, "b": 0}, height=230)
    return figure


def faithfulness_figure(scores: dict) -> go.Figure:
    """Deletion and insertion curves of the map (solid) beside the random maps' mean (dotted) and their band."""
    figure = go.Figure()
    styles = {"deletion": (178, 24, 43), "insertion": (33, 102, 172)}
    for mode, colour in styles.items():
        random_band(figure, scores["curves"].get(f"random_{mode}_all", ()), colour)
        for prefix, dash, who in (("", "solid", "map"), ("random_", "dot", "random mean")):
            c = scores["curves"][f"{prefix}{mode}"]
            figure.add_trace(
                go.Scatter(
                    x=c.fractions,
                    y=c.probabilities,
                    mode="lines",
                    line={"color": css(colour), "dash": dash, "width": 2 if who == "map" else 1},
                    name=f"{mode}, {who} (AUC {c.auc:.2f})",
                    hovertemplate=f"{mode}, {who}<br>%{{x:.0%}} of pixels: p = %{{y:.3f}}<extra></extra>",
                )
            )
    figure.update_layout(
        height=220,
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        legend={"font": {"size": 10}, "orientation": "h", "y": -0.25},
        xaxis={"tickformat": ".0%"},  # share of pixels removed (deletion) or revealed (insertion)
        yaxis={
            "title": {"text": scores.get("score", "target probability"), "font": {"size": 10}},
            "rangemode": "tozero",
        },
    )
    return figure


def random_band(figure: go.Figure, curves: tuple, colour: tuple[int, int, int]) -> None:
    """The lowest to highest of the random maps' curves, as a light band (nothing when there are none)."""
    if not curves:
        return
    stacked = np.array([c.probabilities for c in curves])
    x = list(curves[0].fractions)
    band = css(colour, 0.12)
    figure.add_trace(
        go.Scatter(
            x=x + x[::-1],
            y=list(stacked.max(axis=0)) + list(stacked.min(axis=0))[::-1],
            fill="toself",
            fillcolor=band,
            line={"width": 0},
            hoverinfo="skip",
            showlegend=False,
        )
    )


def faithfulness_caption(scores: dict) -> str:
    """Each area against the random maps' range, which way is better, and the verdict."""
    parts = []
    for mode, better in (("deletion", "lower"), ("insertion", "higher")):
        low, high = scores[f"random_{mode}_range"]
        parts.append(
            f"{mode.capitalize()} AUC **{scores[f'{mode}_auc']:.3f}** ({better} is better; {scores['random_maps']} "
            f"random maps {low:.3f}-{high:.3f}): **{scores['verdicts'][mode]}**"
        )
    return " · ".join(parts)


def agreement_figure(titles: list[str], matrix: np.ndarray) -> go.Figure:
    """Rank correlations between the panels' maps, annotated, on a diverging scale from -1 to 1."""
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=titles,
            y=titles,
            zmin=-1,
            zmax=1,
            colorscale="RdBu_r",
            text=np.round(matrix, 2),
            texttemplate="%{text}",
            hovertemplate="%{y} vs %{x}: Spearman %{z:.2f}<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(height=120 + 45 * len(titles), margin={"l": 0, "r": 0, "t": 0, "b": 0})
    return figure


def cascade_figure(steps: list[dict]) -> go.Figure:
    """Rank correlation with the trained model's map as more layers are randomised (Adebayo et al.)."""
    figure = go.Figure(
        go.Scatter(
            x=[step["layers"] for step in steps],
            y=[step["correlation"] for step in steps],
            mode="lines+markers",
            customdata=[step["down_to"] for step in steps],
            hovertemplate="top %{x} layers randomised (down to %{customdata})<br>Spearman %{y:.2f}<extra></extra>",
        )
    )
    figure.add_hline(y=0, line={"color": "grey", "width": 1, "dash": "dot"})
    figure.update_layout(
        height=200,
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        xaxis={"title": {"text": "layers randomised, from the top", "font": {"size": 10}}},
        yaxis={"title": {"text": "Spearman", "font": {"size": 10}}, "range": [-1.05, 1.05]},
    )
    return figure
