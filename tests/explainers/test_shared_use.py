"""Sessions share one model: explanations run at once must equal the same ones run one at a time, leave no
hooks behind, and a long perturbation run must not hold up another session's gradient map."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from whylabel import explainers, models, trust
from whylabel.explainers.hooks import hook_ids

JOBS = [
    ("guided_backprop", {}),
    ("saliency", {}),
    ("gradcam", {}),
    ("integrated_gradients", {"steps": 32}),
    ("smoothgrad", {"samples": 8}),
    ("occlusion", {"window": 4, "stride": 2}),
    ("lime", {"samples": 40, "n_segments": 6}),
]


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_concurrent_explanations_equal_sequential_ones_and_leave_no_hooks(tiny, noise_image, backend):
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0, backend=backend)
    images = [noise_image(16, 16, seed=s) for s in range(3)]
    work = [(method, params, image, target) for method, params in JOBS for image in images for target in (0, 2)]

    def run(item):
        method, params, image, target = item
        return explainers.explain(clf, image, method, target=target, **params).heatmap

    alone = [run(item) for item in work]
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(run, work * 2))

    for i, heatmap in enumerate(together):
        expected = alone[i % len(work)]
        np.testing.assert_allclose(heatmap, expected, rtol=1e-4, atol=1e-6 * float(np.abs(expected).max() or 1))
    assert hook_ids(clf.module) == {}


def test_a_long_lime_run_does_not_hold_up_saliency(tiny, noise_image):
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0)
    image = noise_image(16, 16)
    lime_started, saliency_done = threading.Event(), threading.Event()
    waited = []

    def paused(done: float) -> None:  # LIME stops half way until the saliency map is finished
        if 0 < done < 1 and not lime_started.is_set():
            lime_started.set()
            waited.append(saliency_done.wait(timeout=30))

    with ThreadPoolExecutor(max_workers=1) as pool:
        lime = pool.submit(explainers.explain, clf, image, "lime", target=1, samples=200, progress=paused)
        assert lime_started.wait(timeout=30)
        explainers.explain(clf, image, "saliency", target=1)
        saliency_done.set()
        lime.result(timeout=60)
    assert waited == [True]  # saliency finished while LIME was still running


def test_a_gradient_method_on_another_thread_waits_for_hooks_to_be_removed(tiny, noise_image):
    """Guided backprop's hooks change the gradient of every pass through the model while they are on it."""
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0)
    image = noise_image(16, 16)
    plain = explainers.explain(clf, image, "saliency", target=1).heatmap
    guided = explainers.explain(clf, image, "guided_backprop", target=1).heatmap
    assert not np.allclose(plain, guided)  # so a saliency map that caught the hooks would show it

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [
            pool.submit(explainers.explain, clf, image, method, target=1)
            for method in ["guided_backprop", "saliency"] * 20
        ]
        results = [(f.result().method, f.result().heatmap) for f in futures]

    for method, heatmap in results:
        np.testing.assert_allclose(heatmap, plain if method == "saliency" else guided, rtol=1e-5, atol=1e-7)


# --- stopping a run the user replaced --------------------------------------------------------------------------


class Superseded(BaseException):
    """What Streamlit raises from a progress report when the user has replaced the run (not an Exception)."""


@pytest.mark.parametrize(
    ("method", "params"),
    [("occlusion", {"window": 2, "stride": 1}), ("lime", {"samples": 400}), ("shap", {"evaluations": 400})],
)
def test_a_run_stopped_from_its_progress_report_stops_there(tiny, noise_image, method, params):
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0)
    passes: list[int] = []
    engine = clf.engine()
    counting = dataclasses.replace(engine, run=lambda x: passes.append(len(x)) or engine.run(x))
    clf._engine = counting  # every batch through the model is counted
    reports: list[float] = []

    def progress(done: float) -> None:
        reports.append(done)
        if len(reports) == 3:
            raise Superseded

    with pytest.raises(Superseded):
        explainers.explain(clf, noise_image(16, 16), method, target=1, progress=progress, **params)
    images_run = sum(passes)
    assert len(reports) == 3  # nothing reported after the stop: no more batches ran
    assert reports[-1] < 0.5 and images_run <= 3 * 16 + 1  # three calls of at most 16 images, plus the full image
    assert hook_ids(clf.module) == {}
    explainers.explain(clf, noise_image(16, 16), method, target=1, **params)  # the model is fine afterwards


@pytest.mark.parametrize(
    ("method", "params", "per_pass"),
    [("integrated_gradients", {"steps": 200}, 16), ("smoothgrad", {"samples": 100}, 8)],
)
def test_a_long_gradient_method_reports_each_pass_and_stops_between_them(tiny, noise_image, method, params, per_pass):
    counting = tiny.Counting(tiny.TinyConv())
    clf = models.from_module(counting, tiny.labels, 16, crop=1.0)
    reports: list[float] = []
    explainers.explain(clf, noise_image(16, 16), method, target=1, progress=reports.append, **params)
    passes = -(-next(iter(params.values())) // per_pass)
    assert reports[:-1] == pytest.approx([(i + 1) / passes for i in range(passes)])  # then 1.0 at the end

    counting.images = 0

    def stop_at_the_second(done: float) -> None:
        if done >= 2 / passes:
            raise Superseded

    with pytest.raises(Superseded):
        explainers.explain(clf, noise_image(16, 16), method, target=1, progress=stop_at_the_second, **params)
    assert counting.images <= 2 * per_pass + 1  # two passes (and the prediction), not all of them
    assert hook_ids(clf.module) == {}


@pytest.mark.parametrize("check", ["sanity", "stability"])
def test_the_checks_report_the_share_of_all_their_runs(tiny, noise_image, check):
    clf = models.from_module(tiny.TinyConv(), tiny.labels, 16, crop=1.0)
    reports: list[float] = []
    if check == "sanity":
        request = explainers.Request.make(clf, noise_image(16, 16), "saliency", 1)
        trust.sanity_cascade(request, depths=[1, 2], progress=reports.append)
        runs = 3  # the trained model and two randomised copies; saliency reports once, at its end
    else:
        request = explainers.Request.make(clf, noise_image(16, 16), "lime", 1, samples=40)
        trust.stability_details(request, (0, 1), progress=reports.append)
        runs = 2
    assert reports == sorted(reports) and reports[-1] == pytest.approx(1.0)
    for run in range(1, runs + 1):
        assert pytest.approx(run / runs) in reports
