"""Page tests for app.py with Streamlit's AppTest (the script runs in-process, no browser).

One test renders the true default view (efficientnet_lite0, the chelsea photo, all four panels at their
default settings). Every interaction test runs on `mnist_cnn` (28x28 input) with LIME and SHAP shrunk, so each
page run takes a second or two; only the default view pays for full-size maps.

Streamlit's caches are process-wide, so a test may find maps another test already computed; every assertion
here holds whether a result comes from the cache or is computed afresh.
"""

from __future__ import annotations

import base64
import io
import json
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import spearmanr
from streamlit.testing.v1 import AppTest

from whylabel import explainers, render, trust
from whylabel.models import worker
from whylabel.ui.own_model import OWN

APP = Path(__file__).resolve().parents[2] / "app.py"
METHODS = ["saliency", "occlusion", "lime", "shap"]
CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat
RUN_TIMEOUT = 240  # seconds; the default view takes ~45 s on two cores, plus numba's first-call JIT for SHAP

# Small but valid settings for the 28-px MNIST model, set before the first run so nothing big is computed.
MNIST_FAST = {
    "model": "mnist_cnn",
    "lime.samples.28": 60,
    "lime.n_segments.28": 20,
    "shap.evaluations.28": 40,
}


# ---------------------------------------------------------------------------------------------- helpers


def new_app(state: dict[str, object] | None = None) -> AppTest:
    """An AppTest for app.py with `state` put into session state before the first run."""
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    return at


def assert_clean(at: AppTest) -> None:
    """No uncaught exception and no error box anywhere on the page (a failed panel shows an error box)."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> list:
    return list(at.get("plotly_chart"))


def heatmaps(at: AppTest) -> dict[str, dict]:
    """The explanation figures by method, as Plotly JSON."""
    return {
        c.key.removeprefix("figure."): json.loads(c.proto.spec)
        for c in charts(at)
        if c.key and c.key.startswith("figure.")
    }


def panel_captions(at: AppTest) -> dict[str, str]:
    """Each panel's caption (method, target, parameters, seed, seconds), by method, in page order."""
    captions = [c.value for c in at.main.caption if c.value.startswith("target **")]
    shown = list(heatmaps(at))
    assert len(captions) == len(shown), (captions, shown)
    return dict(zip(shown, captions, strict=True))


def plotly_array(value: object) -> np.ndarray:
    """A data array from Plotly JSON, which writes numpy arrays as base64 typed arrays."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = tuple(int(n) for n in str(value.get("shape", len(flat))).split(","))
        return flat.reshape(shape)
    return np.asarray(value, dtype=float)


def heatmap_trace(figure: dict) -> dict:
    (heatmap,) = [trace for trace in figure["data"] if trace["type"] == "heatmap"]
    return heatmap


def heatmap_z(figure: dict) -> np.ndarray:
    return plotly_array(heatmap_trace(figure)["z"])


def caption_target(caption: str) -> int:
    match = re.match(r"target \*\*.*\*\* \((\d+)\)", caption)
    assert match, caption
    return int(match.group(1))


def top1(at: AppTest) -> tuple[str, int]:
    """The top-1 label and index, read from the prediction bar chart (bars "LABEL (INDEX)")."""
    (chart,) = [c for c in charts(at) if c.key == "prediction"]
    (bars,) = json.loads(chart.proto.spec)["data"]
    probs = plotly_array(bars["x"])
    match = re.fullmatch(r"(.+) \((\d+)\)", bars["y"][int(np.argmax(probs))])
    assert match, bars["y"]
    return match.group(1), int(match.group(2))


def shown_option(selectbox, before: Any = None) -> str | None:
    """The option a browser shows as selected in a selectbox after a run; None: the empty placeholder.

    The page either sends a one-shot value (`set_value`, with `raw_value` unless it clears the box) or,
    for a box the browser has not shown yet, the index to start from (`default`). A box the browser already
    shows (`before`, the same widget on the previous run) keeps its text unless a one-shot value replaces it.
    """
    proto = selectbox.proto
    if proto.set_value:
        return proto.raw_value if proto.HasField("raw_value") else None
    if before is not None and before.proto.id == proto.id:
        return shown_option(before)
    return selectbox.options[proto.default] if proto.HasField("default") else None


def assert_target_shows_top1(at: AppTest, model: str, before: Any = None) -> None:
    """The target box shows its first option, the top-1 class of the current image, not a stale or empty box."""
    target = at.selectbox(key=f"target.{model}")
    assert target.options[0].startswith("top-1"), target.options[:2]
    shown = shown_option(target, before)
    assert shown == target.options[0], (
        f"the target box shows {shown!r} (None: the 'Choose an option' placeholder) "
        f"while the panels explain the top-1 class; expected {target.options[0]!r}"
    )


def model_view_caption(at: AppTest) -> str:
    (image,) = at.main.image
    (caption,) = image.captions
    return caption


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """Records every map actually computed (not served from the cache): call it for the list of method names.

    Every run goes through a method's `estimates` (which calls `compute` for the methods that do not refine)."""
    calls: list[str] = []
    for method in METHODS:
        cls = explainers.get(method)
        original = cls.estimates

        def estimates(self, job, _original=original, _method=method):
            calls.append(_method)
            return _original(self, job)

        monkeypatch.setattr(cls, "estimates", estimates)
    return lambda: list(calls)


@pytest.fixture
def mnist_app() -> AppTest:
    at = new_app(MNIST_FAST)
    at.run()
    assert_clean(at)
    return at


# ---------------------------------------------------------------------------------------------- default view


@pytest.fixture(scope="module")
def default_view() -> Iterator[AppTest]:
    """The page exactly as a visitor first sees it: no widget touched."""
    at = new_app()
    at.run()
    yield at


def test_default_view_renders_without_exception(default_view: AppTest) -> None:
    at = default_view
    assert_clean(at)
    assert at.selectbox(key="model").value == "efficientnet_lite0"
    assert at.radio(key="source").value == "Gallery"
    assert at.selectbox(key="sample.efficientnet_lite0").value == "chelsea (cat)"
    assert model_view_caption(at) == "chelsea (cat): what efficientnet_lite0 sees"
    # The prediction bar chart, per method its map and its deletion/insertion curves, then the agreement matrix.
    per_method = [key for m in METHODS for key in (f"figure.{m}", f"faithfulness.{m}")]
    assert [c.key for c in charts(at)] == ["prediction", *per_method, "agreement", "whatif.by_hand"]
    for method, figure in heatmaps(at).items():
        kinds = [trace["type"] for trace in figure["data"]]
        assert kinds == ["image", "heatmap"], (method, kinds)
        z = heatmap_z(figure)
        assert z.shape == (224, 224), (method, z.shape)
        assert np.isfinite(z).all() and np.abs(z).max() > 0, method
    assert [m.value for m in at.main.markdown if m.value.startswith("#### ")] == [
        "#### Saliency",
        "#### Occlusion",
        "#### LIME",
        "#### SHAP",
    ]


def test_default_target_is_top1_cat(default_view: AppTest) -> None:
    at = default_view
    assert_target_shows_top1(at, "efficientnet_lite0")
    label, index = top1(at)
    assert index in CAT_CLASSES, (label, index)
    assert "cat" in label.lower() or label.lower().startswith("tabby")
    assert at.subheader[0].value == f"Why {label} ({index})?"
    captions = panel_captions(at)
    assert list(captions) == METHODS
    for method, caption in captions.items():
        assert caption_target(caption) == index, (method, caption)
        assert caption.startswith(f"target **{label}** ({index})"), caption
        assert re.search(r" · seed 0 · \d+\.\d\d s", caption), caption
    # The default parameters, scaled to the 224-px input, are stated in the captions.
    assert "window=16, stride=16" in captions["occlusion"]
    lime, shap = explainers.get("lime").resolve({}, 224), explainers.get("shap").resolve({}, 224)
    assert f"n_segments={lime['n_segments']}, samples={lime['samples']}" in captions["lime"]
    assert f"evaluations={shap['evaluations']}" in captions["shap"]


# ---------------------------------------------------------------------------------------------- interactions


def test_switching_to_mnist_predicts_a_digit() -> None:
    """Pick mnist_cnn in the model selectbox of the default page (cheap once the default view is cached)."""
    at = new_app({k: v for k, v in MNIST_FAST.items() if k != "model"})
    at.run()
    assert_clean(at)
    at.selectbox(key="model").set_value("mnist_cnn").run()
    assert_clean(at)
    assert at.selectbox(key="sample.mnist_cnn").value == "mnist digit 3"
    assert model_view_caption(at) == "mnist digit 3: what mnist_cnn sees"
    label, index = top1(at)
    assert label == str(index) and 0 <= index <= 9
    assert index == 3  # a held-out 3 that the 0.97-accurate model gets right
    assert_target_shows_top1(at, "mnist_cnn")
    assert len(heatmaps(at)) == 4
    for figure in heatmaps(at).values():
        assert heatmap_z(figure).shape == (28, 28)
    assert all(caption_target(c) == 3 for c in panel_captions(at).values())


def test_changing_gallery_image(mnist_app: AppTest) -> None:
    at = mnist_app
    before = panel_captions(at)
    target_before = at.selectbox(key="target.mnist_cnn")
    at.selectbox(key="sample.mnist_cnn").set_value("mnist digit 7").run()
    assert_clean(at)
    assert model_view_caption(at) == "mnist digit 7: what mnist_cnn sees"
    assert top1(at) == ("7", 7)
    assert at.subheader[0].value == "Why 7 (7)?"
    assert_target_shows_top1(at, "mnist_cnn", before=target_before)  # not the digit 3's stale "top-1: 3 (3)"
    after = panel_captions(at)
    assert list(after) == METHODS
    assert all(caption_target(c) == 7 for c in after.values()), after
    assert after != before


def test_changing_target_updates_every_panel(mnist_app: AppTest) -> None:
    at = mnist_app
    top1_choice = at.selectbox(key="target.mnist_cnn").value  # the value of the "top-1" option
    _, top_index = top1(at)
    other = 5 if top_index != 5 else 6
    target = at.selectbox(key="target.mnist_cnn")
    assert target.options[other + 1] == f"{other} ({other})"  # options: top-1, then every class
    target.set_value(other).run()
    assert_clean(at)
    assert at.selectbox(key="target.mnist_cnn").value == other
    assert at.subheader[0].value == f"Why {other} ({other})?"
    captions = panel_captions(at)
    assert list(captions) == METHODS
    for method, caption in captions.items():
        assert caption.startswith(f"target **{other}** ({other})"), (method, caption)
    # Back to top-1: the captions name the top class again.
    at.selectbox(key="target.mnist_cnn").set_value(top1_choice).run()
    assert_clean(at)
    assert at.subheader[0].value == f"Why {top_index} ({top_index})?"
    assert all(caption_target(c) == top_index for c in panel_captions(at).values())


def test_contrast_class_explains_the_difference_in_every_panel(mnist_app: AppTest) -> None:
    at = mnist_app
    _, top_index = top1(at)
    other = 5 if top_index != 5 else 6
    contrast = at.selectbox(key="contrast.mnist_cnn")
    assert contrast.value is None and contrast.options[0].startswith("no contrast")
    contrast.set_value(other).run()
    assert_clean(at)
    assert at.subheader[0].value == f"Why {top_index} ({top_index}) rather than {other} ({other})?"
    captions = panel_captions(at)
    assert list(captions) == METHODS
    for caption in captions.values():
        assert caption.startswith(f"target **{top_index}** ({top_index}) rather than **{other}** ({other})"), caption
    assert len(heatmaps(at)) == 4
    # The same class on both sides is refused with a note, and the class is explained alone.
    at.selectbox(key="contrast.mnist_cnn").set_value(top_index).run()
    assert_clean(at)
    assert any("already the class explained" in i.value for i in at.main.info)
    assert at.subheader[0].value == f"Why {top_index} ({top_index})?"
    assert all(" rather than " not in c for c in panel_captions(at).values())


def test_changing_a_method_parameter_recomputes_only_that_panel(
    mnist_app: AppTest, computed: Callable[[], list[str]]
) -> None:
    at = mnist_app
    before = panel_captions(at)
    assert "window=2, stride=2" in before["occlusion"]  # 16 and 16 scaled from 224 px to 28 px
    at.slider(key="occlusion.window.28").set_value(7).run()
    assert_clean(at)
    after = panel_captions(at)
    assert "window=7, stride=2" in after["occlusion"]
    assert after["occlusion"] != before["occlusion"]
    for method in ("saliency", "lime", "shap"):
        assert after[method] == before[method], method
    assert computed() == ["occlusion"]
    assert len(heatmaps(at)) == 4


def test_display_change_recomputes_nothing(mnist_app: AppTest, computed: Callable[[], list[str]]) -> None:
    at = mnist_app
    # A fresh seed makes every map a cache miss once, so the baseline below comes from real computations
    # (this also shows the `computed` probe sees computations, so the zero below is meaningful).
    at.number_input(key="seed").set_value(1234).run()
    assert_clean(at)
    assert sorted(computed()) == sorted(METHODS)
    captions = panel_captions(at)
    figures = heatmaps(at)
    assert all(" · seed 1234 · " in c for c in captions.values()), captions
    assert all(heatmap_trace(f)["opacity"] == pytest.approx(0.8) for f in figures.values())

    at.slider(key="opacity").set_value(0.4).run()
    assert_clean(at)
    assert len(computed()) == 4  # nothing new computed
    assert panel_captions(at) == captions  # the cached results carry their original runtimes
    assert all(heatmap_trace(f)["opacity"] == pytest.approx(0.4) for f in heatmaps(at).values())

    at.radio(key="scale").set_value("Per panel (raw units)").run()
    assert_clean(at)
    at.slider(key="percentile").set_value(95.0).run()
    assert_clean(at)
    assert len(computed()) == 4
    assert panel_captions(at) == captions
    for method, figure in heatmaps(at).items():
        title = heatmap_trace(figure)["colorbar"]["title"]["text"]
        assert title.endswith("units"), (method, title)  # per-panel scale: raw units on each colour bar
    assert any(c.value.endswith("Per-panel scale: each map in its own units.") for c in at.main.caption)


# ---------------------------------------------------------------------------------------------- upload


def test_upload_replaces_the_image_and_a_bad_file_says_why(mnist_app: AppTest) -> None:
    at = mnist_app
    gallery = panel_captions(at)
    at.radio(key="source").set_value("Upload").run()
    assert_clean(at)
    assert any("No image uploaded yet" in i.value for i in at.sidebar.info)
    assert model_view_caption(at) == "mnist digit 3: what mnist_cnn sees"  # the gallery image meanwhile

    digit = np.zeros((64, 64, 3), dtype=np.uint8)
    digit[12:52, 28:36] = 255  # a thick vertical bar: something like a 1
    at.file_uploader(key="uploader").set_value(("bar.png", png_bytes(digit), "image/png")).run()
    assert_clean(at)
    assert model_view_caption(at) == "bar.png: what mnist_cnn sees"
    assert not at.sidebar.info
    assert len(heatmaps(at)) == 4
    good = panel_captions(at)
    assert list(good) == METHODS
    assert good != gallery
    _, top_index = top1(at)
    assert all(caption_target(c) == top_index for c in good.values()), good

    at.file_uploader(key="uploader").set_value(("notes.png", b"these are my notes, not a picture\n", "image/png"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    messages = [e.value for e in at.sidebar.error]
    assert len(messages) == 1, messages
    assert messages[0].startswith("notes.png: This file is not an image whylabel can read"), messages
    assert not at.main.error, [e.value for e in at.main.error]
    # The last good upload stays on screen, panels and all.
    assert model_view_caption(at) == "bar.png: what mnist_cnn sees"
    assert len(heatmaps(at)) == 4
    assert panel_captions(at) == good


def test_default_view_names_the_forward_engine_and_the_evaluations(default_view: AppTest) -> None:
    at = default_view
    engine = [c.value for c in at.caption if c.value.startswith("Perturbation passes:")]
    assert len(engine) == 1, [c.value for c in at.caption]
    assert engine[0].startswith("Perturbation passes: onnxruntime, batches of "), engine
    assert "max |logit difference| from torch" in engine[0]
    captions = panel_captions(at)
    assert "model evaluations" not in captions["saliency"]
    for method in ("occlusion", "lime", "shap"):
        assert re.search(r" · \d+ model evaluations", captions[method]), captions[method]


def test_every_panel_has_its_faithfulness_curves_beside_a_random_map(default_view: AppTest) -> None:
    at = default_view
    curves = {
        c.key.removeprefix("faithfulness."): json.loads(c.proto.spec)
        for c in charts(at)
        if c.key and c.key.startswith("faithfulness.")
    }
    assert list(curves) == METHODS
    for method, figure in curves.items():
        names = [trace["name"] for trace in figure["data"] if trace.get("showlegend", True)]
        assert len(names) == 4, (method, names)
        for mode in ("deletion", "insertion"):
            assert any(n.startswith(f"{mode}, map (AUC ") for n in names), names
            assert any(n.startswith(f"{mode}, random mean (AUC ") for n in names), names
        bands = [trace for trace in figure["data"] if trace.get("fill") == "toself"]
        assert len(bands) == 2  # the random maps' lowest to highest curve, per mode
    scores = [c.value for c in at.main.caption if c.value.startswith("Deletion AUC")]
    assert len(scores) == len(METHODS), scores
    verdict = r"\*\*(better than every random map|within the random maps' range|worse than every random map)\*\*"
    for text in scores:
        assert "lower is better" in text and "higher is better" in text
        assert len(re.findall(r"8 random maps \d\.\d{3}-\d\.\d{3}\): " + verdict, text)) == 2, text


def test_the_agreement_matrix_compares_every_pair_of_panels(default_view: AppTest) -> None:
    at = default_view
    (chart,) = [c for c in charts(at) if c.key == "agreement"]
    trace = json.loads(chart.proto.spec)["data"][0]
    titles = [explainers.get(m).title for m in METHODS]
    matrix = plotly_array(trace["z"])
    assert trace["x"] == titles and trace["y"] == titles
    assert matrix.shape == (4, 4)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    np.testing.assert_allclose(matrix, matrix.T)
    raw = [heatmap_z(figure) for figure in heatmaps(at).values()]
    np.testing.assert_allclose(matrix, trust.agreement(raw), atol=1e-6)


# ---------------------------------------------------------------------------------------------- trust checks


def chart_keys(at: AppTest) -> list[str]:
    return [c.key for c in charts(at) if c.key]


def test_sanity_check_runs_from_the_page_and_shows_the_randomised_map(mnist_app: AppTest) -> None:
    at = mnist_app
    assert at.selectbox(key="check.method").value == "saliency"
    assert "check.sanity.map" not in chart_keys(at)  # nothing runs until asked

    at.button(key="check.sanity").click().run()

    assert_clean(at)
    assert {"check.sanity.trained", "check.sanity.map", "check.sanity.cascade"} <= set(chart_keys(at))
    figures = {c.key: json.loads(c.proto.spec) for c in charts(at) if c.key and c.key.startswith("check.sanity.")}
    trained, randomised = (heatmap_z(figures[f"check.sanity.{name}"]) for name in ("trained", "map"))
    np.testing.assert_array_equal(trained, heatmap_z(heatmaps(at)["saliency"]))  # the panel's own map
    assert not np.allclose(trained, randomised)
    rho = spearmanr(trained.ravel(), randomised.ravel()).statistic  # the two maps on the page, ranked here
    (cascade,) = figures["check.sanity.cascade"]["data"]
    assert plotly_array(cascade["y"])[-1] == pytest.approx(rho, abs=1e-6)  # the full randomisation, unrounded
    (verdict,) = [c.value for c in at.caption if "Spearman with the trained model's map" in c.value]
    assert f"**{rho:.2f}**" in verdict, verdict
    assert verdict.count("passes:") + verdict.count("fails:") == 1, verdict
    assert ("passes:" in verdict) is bool(abs(rho) < trust.PASS_BELOW), verdict


def test_stability_runs_for_a_stochastic_method_and_says_so_for_a_deterministic_one(mnist_app: AppTest) -> None:
    at = mnist_app
    assert any("uses no randomness" in c.value for c in at.caption)  # saliency is deterministic

    at.selectbox(key="check.method").set_value("lime").run()
    at.button(key="check.stability").click().run()

    assert_clean(at)
    assert {"check.stability.mean", "check.stability.disagreement"} <= set(chart_keys(at))
    (summary,) = [c.value for c in at.caption if "Mean pairwise Spearman" in c.value]
    assert re.search(r"Spearman \*\*-?\d\.\d\d\*\*; top-10% pixels shared \*\*\d+%\*\*", summary), summary


def test_download_evidence_is_offered_under_the_maps_and_built_only_when_clicked(mnist_app: AppTest) -> None:
    (button,) = mnist_app.get("download_button")
    assert button.proto.label == "Download evidence"
    assert button.proto.ignore_rerun  # clicking it downloads without re-running the page
    assert button.proto.deferred_file_id  # the zip is built on click, not on every rerun (the browser test opens it)


# ---------------------------------------------------------------------------------------------- own model

OWN_SIZE = 32
OWN_FAST = {
    **MNIST_FAST,
    "own.size": OWN_SIZE,
    f"lime.samples.{OWN_SIZE}": 60,
    f"lime.n_segments.{OWN_SIZE}": 10,
    f"shap.evaluations.{OWN_SIZE}": 40,
}


def scripted_model_bytes() -> bytes:
    """A small scripted CNN with three outputs, as a user would save it with torch.jit.script(model).save()."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 3),
    ).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in favour of torch.export
        torch.jit.save(torch.jit.script(module), buffer)
    return buffer.getvalue()


class ReadsFile(torch.nn.Module):
    """Returns the server's /etc/hostname bytes as its logits, were it ever run."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        secret = torch.from_file("/etc/hostname", size=3, dtype=torch.uint8).float()
        return x.mean(dim=(2, 3)) * 0 + secret


def file_reading_model_bytes() -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(ReadsFile()), buffer)
    return buffer.getvalue()


class Endless(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = 0
        while n >= 0:
            n = n + 1
        return x.mean(dim=(2, 3))


def scripted(module: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), buffer)
    return buffer.getvalue()


def pickled_model_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), buffer)
    return buffer.getvalue()


def test_own_model_upload_explains_it_and_bad_files_say_why_and_change_nothing() -> None:
    at = new_app(OWN_FAST)
    at.run()
    at.selectbox(key="model").set_value(OWN).run()
    assert_clean(at)
    assert any("No model uploaded yet; showing mnist_cnn" in i.value for i in at.sidebar.info)
    assert model_view_caption(at) == "mnist digit 3: what mnist_cnn sees"

    # A whole pickled model is refused with the reason, and the page stays as it was.
    at.file_uploader(key="own.model").set_value(("whole.pt", pickled_model_bytes(), "application/octet-stream"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (message,) = [e.value for e in at.sidebar.error]
    assert message.startswith("whole.pt: This file holds pickled Python objects"), message
    assert "unpickling can run any code" in message
    assert model_view_caption(at) == "mnist digit 3: what mnist_cnn sees"

    # A TorchScript model with its labels: the prediction uses the labels and every default panel is drawn.
    at.file_uploader(key="own.labels").set_value(("colours.txt", b"red\ngreen\nblue\n", "text/plain"))
    at.file_uploader(key="own.model").set_value(("shapes.pt", scripted_model_bytes(), "application/octet-stream"))
    at.run()
    assert_clean(at)
    caption = model_view_caption(at)
    assert re.fullmatch(r"mnist digit 3: what shapes\.pt \([0-9a-f]{8}\) sees", caption), caption
    label, index = top1(at)
    assert (label, index) in {("red", 0), ("green", 1), ("blue", 2)}
    assert list(panel_captions(at)) == METHODS
    assert all(caption_target(c) == index for c in panel_captions(at).values())
    assert all(heatmap_z(f).shape == (OWN_SIZE, OWN_SIZE) for f in heatmaps(at).values())

    # A model that reads the server's files is refused before it runs, naming the operation; nothing changes.
    at.file_uploader(key="own.model").set_value(("thief.pt", file_reading_model_bytes(), "application/octet-stream"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (message,) = [e.value for e in at.sidebar.error]
    assert message.startswith("thief.pt: The model's forward uses aten::from_file"), message
    assert model_view_caption(at) == caption
    assert list(panel_captions(at)) == METHODS
    at.file_uploader(key="own.model").set_value(("shapes.pt", scripted_model_bytes(), "application/octet-stream"))

    # Labels that do not match the outputs: the message names both counts, and the working model stays.
    at.file_uploader(key="own.labels").set_value(("two.txt", b"red\ngreen\n", "text/plain")).run()
    assert not at.exception, [e.value for e in at.exception]
    (message,) = [e.value for e in at.sidebar.error]
    assert "outputs 3 scores but the labels file has 2 labels" in message, message
    assert model_view_caption(at) == caption
    assert list(panel_captions(at)) == METHODS


def onnx_model_bytes() -> bytes:
    """A small CNN exported to ONNX with a free batch and NHWC input, as Keras exports."""
    torch.manual_seed(0)
    layers = [torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()]
    module = torch.nn.Sequential(*layers, torch.nn.Linear(4, 3)).eval()
    shape = (1, OWN_SIZE, OWN_SIZE, 3)

    class Layout(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x.permute(0, 3, 1, 2))

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated
        torch.onnx.export(
            Layout(), (torch.zeros(shape),), buffer, dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "n"}}
        )
    return buffer.getvalue()


def test_an_onnx_upload_draws_the_forward_maps_and_the_gradient_panels_say_why() -> None:
    at = new_app(OWN_FAST)
    at.run()
    at.selectbox(key="model").set_value(OWN).run()
    at.file_uploader(key="own.labels").set_value(("colours.txt", b"red\ngreen\nblue\n", "text/plain"))
    at.file_uploader(key="own.model").set_value(("keras.onnx", onnx_model_bytes(), "application/octet-stream"))
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="own.layout").value == "read from the graph"  # ONNX only: its layout choice
    caption = model_view_caption(at)
    assert re.fullmatch(r"mnist digit 3: what keras\.onnx \([0-9a-f]{8}\) sees", caption), caption
    assert top1(at)[0] in {"red", "green", "blue"}
    assert list(heatmaps(at)) == ["occlusion", "lime", "shap"]  # every forward-only default is drawn
    (refused,) = [e.value for e in at.main.error]
    assert refused.startswith("Saliency could not be computed: saliency needs the model's gradients"), refused
    assert "these methods work with it: occlusion, lime, shap" in refused


# ---------------------------------------------------------------------------------------------- parameters


def test_the_stride_can_never_exceed_the_window_on_the_page(mnist_app: AppTest) -> None:
    at = mnist_app
    stride = at.slider(key="occlusion.stride.28")
    assert (stride.min, stride.max, stride.value) == (1, 2, 2)  # at most the window (16 scaled to 28 px: 2)

    at.slider(key="occlusion.window.28").set_value(1).run()  # smaller than the stride on screen
    assert_clean(at)
    assert "window=1, stride=1" in panel_captions(at)["occlusion"]

    at.slider(key="occlusion.window.28").set_value(3).run()
    assert_clean(at)
    assert at.slider(key="occlusion.stride.28").max == 3
    at.slider(key="occlusion.stride.28").set_value(3).run()
    assert_clean(at)
    assert "window=3, stride=3" in panel_captions(at)["occlusion"]


class NanOnDetail(torch.nn.Module):
    """Finite scores for flat grey images (so it passes the upload check), NaN for any image with detail."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x.mean(dim=(2, 3)))
        detail = x.std(dim=(2, 3)).amax(dim=1, keepdim=True) > 0.01  # flat images have none
        return torch.where(detail, torch.full_like(out, float("nan")), out)


def test_a_model_that_never_answers_is_stopped_and_the_page_keeps_what_it_showed(monkeypatch) -> None:
    monkeypatch.setattr(worker, "CALL_SECONDS", 3.0)
    at = new_app(OWN_FAST)
    at.run()
    at.selectbox(key="model").set_value(OWN).run()
    caption = model_view_caption(at)
    at.file_uploader(key="own.labels").set_value(("colours.txt", b"red\ngreen\nblue\n", "text/plain"))
    at.file_uploader(key="own.model").set_value(("loop.pt", scripted(Endless()), "application/octet-stream")).run()

    assert not at.exception, [e.value for e in at.exception]
    (message,) = [e.value for e in at.sidebar.error]
    assert message == "loop.pt: The model did not answer within 3 s (load); it was stopped.", message
    assert model_view_caption(at) == caption
    assert list(panel_captions(at)) == METHODS


def test_a_model_that_fails_on_the_image_says_so_instead_of_a_traceback() -> None:
    at = new_app(OWN_FAST)
    at.run()
    at.selectbox(key="model").set_value(OWN).run()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(NanOnDetail()), buffer)
    at.file_uploader(key="own.labels").set_value(("colours.txt", b"red\ngreen\nblue\n", "text/plain"))
    at.file_uploader(key="own.model").set_value(("nan.pt", buffer.getvalue(), "application/octet-stream")).run()

    assert not at.exception, [e.value for e in at.exception]
    (message,) = [e.value for e in at.main.error]
    assert re.fullmatch(
        r"nan\.pt \([0-9a-f]{8}\) could not classify mnist digit 3: .*NaN or infinite scores.*", message
    )
    assert not heatmaps(at)


def test_a_check_another_session_ran_is_not_shown_in_this_one(mnist_app: AppTest) -> None:
    mnist_app.button(key="check.sanity").click().run()
    assert "check.sanity.map" in chart_keys(mnist_app)

    other = new_app(MNIST_FAST)
    other.run()
    assert_clean(other)
    assert "check.sanity.map" not in chart_keys(other)  # cached for the server, but this session did not ask
    assert not [c.value for c in other.caption if "Spearman with the trained model's map" in c.value]
    other.button(key="check.sanity").click().run()  # asking shows the cached result at once
    assert "check.sanity.map" in chart_keys(other)


def test_a_map_states_its_blind_spots_on_its_panel(mnist_app: AppTest) -> None:
    """MNIST's background is flat black: a blurred copy leaves it black, so SHAP (blur fill, judged per 8 x 8
    neighbourhood) cannot see evidence there and says so; occlusion's grey square changes black a lot and says
    nothing. LIME is judged per superpixel, its unit: Felzenszwalb makes the digit's whole background one or two
    superpixels that blurring changes at the digit's edge (no warning), SLIC's grid cuts background-only ones."""
    at = mnist_app

    def blind() -> list[str]:
        return [w.value for w in at.warning if w.value.startswith("Blind spot: the blur fill")]

    assert len(blind()) == 1, blind()  # SHAP's
    assert not [w.value for w in at.warning if "grey fill" in w.value]
    at.selectbox(key="lime.segmentation.28").set_value("slic").run()
    assert_clean(at)
    assert len(blind()) == 2, blind()  # SHAP's and LIME's


def test_maps_kept_on_disk_are_read_back_by_a_fresh_server(monkeypatch, tmp_path, computed) -> None:
    """The result store (`store.results`): a server that starts again shows the kept maps, computing none."""
    from whylabel.ui import cache

    monkeypatch.setenv("WHYLABEL_RESULTS", str(tmp_path))
    state = {**MNIST_FAST, "seed": 4242}  # a seed no other test asks for: nothing of it in memory yet
    first = new_app(state)
    first.run()
    assert_clean(first)
    assert sorted(computed()) == sorted(METHODS)
    assert not any("kept on disk" in c for c in panel_captions(first).values())
    cache.attribution_store.clear()  # what a restart forgets: every map and score held in memory

    again = new_app(state)
    again.run()

    assert_clean(again)
    assert sorted(computed()) == sorted(METHODS)  # nothing computed a second time
    assert all("when first computed, kept on disk" in c for c in panel_captions(again).values())
    for method, figure in heatmaps(first).items():
        np.testing.assert_array_equal(heatmap_z(heatmaps(again)[method]), heatmap_z(figure))


def drawn_estimates(monkeypatch: pytest.MonkeyPatch, gap: float, seed: int) -> dict[str, int]:
    """Per method, how many estimates on the way (not converged) a fresh run drew, with `gap` s between them."""
    from whylabel.ui import panels

    drawn: dict[str, int] = {}
    original = render.attribution_figure

    def recording(pixels, att, *display):
        if att.stage is not None and not att.stage.converged:
            drawn[att.method] = drawn.get(att.method, 0) + 1
        return original(pixels, att, *display)

    monkeypatch.setattr(render, "attribution_figure", recording)
    monkeypatch.setattr(panels, "PREVIEW_GAP", gap)
    at = new_app({"model": "mnist_cnn", "seed": seed})  # default budgets; a seed no other test asks for
    at.run()
    assert_clean(at)
    return drawn


def test_panels_draw_estimates_on_the_way_at_most_one_per_gap(monkeypatch) -> None:
    every = drawn_estimates(monkeypatch, gap=0.0, seed=4343)
    assert set(every) == {"occlusion", "lime", "shap"}, every  # each perturbation panel shows a first estimate
    assert max(every.values()) >= 2, every  # some refine in several steps: the gap has something to leave out

    spaced = drawn_estimates(monkeypatch, gap=1e9, seed=4344)

    assert spaced == dict.fromkeys(every, 1)  # the first estimate at once, no refinement within the gap


def test_what_if_finds_the_edits_when_asked_and_shows_their_predictions(mnist_app: AppTest) -> None:
    at = mnist_app
    assert not {"whatif.counterfactual", "whatif.sufficient"} & set(chart_keys(at))  # nothing searched until asked

    at.button(key="whatif.run").click().run()

    assert_clean(at)
    found = [c.value for c in at.main.caption if "edited views tried" in c.value and "before; now" in c.value]
    assert len(found) == 2, found
    hidden, alone = found
    assert "superpixels changes 3;" in hidden or "No set of superpixels" in hidden, hidden
    assert "superpixels alone keep 3;" in alone or "stays even with every superpixel hidden" in alone, alone
    if "superpixels changes 3;" in hidden:  # the edited view's own prediction is drawn; its top-1 is not 3
        (chart,) = [c for c in charts(at) if c.key == "whatif.counterfactual"]
        bars = json.loads(chart.proto.spec)["data"][0]
        assert bars["y"][-1] != "3 (3)", bars["y"]  # the top class is the last bar


def click_on(at: AppTest, x: int, y: int, when: int) -> None:
    """A click on the what-if view as the component reports it: displayed coordinates, its size, the time."""
    at.session_state["whatif.click"] = {"x": x, "y": y, "width": 260, "height": 260, "unix_time": when}
    at.run()


def test_clicking_a_superpixel_hides_it_and_the_prediction_follows_reset_restores_it(mnist_app: AppTest) -> None:
    from whylabel import models, whatif

    at = mnist_app
    clf = models.load("mnist_cnn")
    pixels = clf.input_image(models.sample_image("mnist digit 3"))
    segments = whatif.superpixels(pixels)
    before = json.loads(next(c for c in charts(at) if c.key == "whatif.by_hand").proto.spec)["data"][0]
    stroke = np.argwhere(pixels.max(axis=-1) > 128)[0]  # a pixel of the digit: hiding its superpixel matters
    y, x = (int(v * 260 / 28) + 4 for v in stroke)

    click_on(at, x, y, when=1)

    assert_clean(at)
    hidden = whatif.clicked(segments, {"x": x, "y": y, "width": 260, "height": 260})
    expected = clf.predict_view(whatif.edited_view(pixels, segments, {hidden}))
    after = json.loads(next(c for c in charts(at) if c.key == "whatif.by_hand").proto.spec)["data"][0]
    assert after["x"] != before["x"]  # the bars moved
    np.testing.assert_allclose(plotly_array(after["x"])[::-1], [p for _, _, p in expected.top], atol=1e-6)
    assert any("1 of" in c.value and "superpixels hidden" in c.value for c in at.main.caption)

    at.run()  # the component still reports the same click: it is not acted on twice
    assert any("1 of" in c.value and "superpixels hidden" in c.value for c in at.main.caption)

    at.button(key="whatif.reset").click().run()
    restored = json.loads(next(c for c in charts(at) if c.key == "whatif.by_hand").proto.spec)["data"][0]
    np.testing.assert_allclose(plotly_array(restored["x"]), plotly_array(before["x"]), atol=1e-6)
    assert any("0 of" in c.value and "superpixels hidden" in c.value for c in at.main.caption)


def test_the_edited_image_goes_to_the_panels_when_asked(mnist_app: AppTest) -> None:
    from whylabel import models, whatif

    at = mnist_app
    clf = models.load("mnist_cnn")
    pixels = clf.input_image(models.sample_image("mnist digit 3"))
    y, x = (int(v * 260 / 28) + 4 for v in np.argwhere(pixels.max(axis=-1) > 128)[0])
    click_on(at, x, y, when=7)
    maps_before = {m: heatmap_z(f) for m, f in heatmaps(at).items()}

    at.button(key="whatif.explain").click().run()

    assert_clean(at)
    assert model_view_caption(at) == "mnist digit 3, 1 superpixel hidden: what mnist_cnn sees"
    assert at.radio(key="source").value == "Upload"
    shown = at.session_state["upload"].image
    segments = whatif.superpixels(pixels)
    hidden = whatif.clicked(segments, {"x": x, "y": y, "width": 260, "height": 260})
    view = whatif.edited_view(pixels, segments, {hidden})
    assert np.abs(clf.input_image(shown).astype(int) - view.astype(int)).mean() < 2  # the photo is the edit
    assert any(not np.array_equal(heatmap_z(f), maps_before[m]) for m, f in heatmaps(at).items())
