"""Progressive maps: the stopping rule from its definition, and each method's estimates from what they claim."""

from __future__ import annotations

import numpy as np
import pytest

from whylabel import explainers, models
from whylabel.explainers.base import Job
from whylabel.explainers.progressive import STABLE_OVERLAP, Estimate, converge, doubling, growing, overlap


def estimate(top: list[int], n: int, final: bool = False, preview: bool = False) -> Estimate:
    """A 10x10 map whose top-10% pixels are `top` (flat indices)."""
    heatmap = np.zeros(100)
    heatmap[top] = np.arange(len(top), 0, -1)
    return Estimate(heatmap.reshape(10, 10), {}, n, 800, final=final, preview=preview)


def test_refinement_stops_at_the_first_estimate_whose_top_ten_percent_is_stable():
    a, b, c = list(range(10)), [*range(9), 50], [*range(9), 60]  # b and c share 9 of 10 with a, and with each other
    shown = list(converge(iter([estimate(list(range(50, 60)), 100), estimate(a, 200), estimate(b, 400),
                                estimate(c, 800, final=True)])))  # fmt: skip

    assert [stage.evaluations for _, stage in shown] == [100, 200, 400]
    assert [stage.converged for _, stage in shown] == [False, False, True]
    assert shown[-1][1].overlap == pytest.approx(0.9) and shown[-1][1].overlap >= STABLE_OVERLAP
    assert shown[1][1].overlap == 0.0 and shown[0][1].overlap is None


def watching(tops: list[list[int]], n: int, final: bool = False) -> Estimate:
    """An estimate whose own map never settles and whose watched maps have the given top-10% pixels."""
    maps = np.stack([estimate(top, n).heatmap for top in tops])
    return Estimate(np.random.default_rng(n).random((10, 10)), {}, n, 800, final=final, watched=maps)


def test_with_watched_maps_refinement_stops_when_every_one_of_them_is_stable():
    a, b, c = list(range(10)), [*range(9), 50], [*range(9), 60]
    moving, still = list(range(20, 30)), list(range(30, 40))
    shown = list(converge(iter([watching([a, moving], 100), watching([b, still], 200), watching([c, still], 400),
                                watching([c, moving], 800, final=True)])))  # fmt: skip

    assert [stage.converged for _, stage in shown] == [False, False, True]  # the second map moved at 200
    assert shown[1][1].overlap == 0.0 and shown[2][1].overlap == pytest.approx(0.9)  # the least of the two
    assert shown[2][1].watched == 2 and "of each of 2 classes' maps stable at 90%" in shown[2][1].label()


def test_a_map_that_ran_out_of_budget_still_moving_is_not_called_stable():
    a, b = list(range(10)), [*range(5), *range(50, 55)]
    _, (_, last) = converge(iter([estimate(a, 100), estimate(b, 200, final=True)]))

    assert last.converged and last.overlap == pytest.approx(0.5)
    moved = "top 10% still moving (50% in common with the estimate before)"
    assert last.label() == f"whole budget spent: 200 evaluations; {moved}"


def test_a_preview_never_counts_as_converged_and_the_last_estimate_always_does():
    same = list(range(10))
    shown = list(converge(iter([estimate(same, 10, preview=True), estimate(same, 50, final=True)])))

    assert [stage.converged for _, stage in shown] == [False, True]
    assert shown[1][1].overlap is None  # nothing is compared with a preview
    assert overlap(np.arange(100.0), np.arange(100.0)) == 1.0


def test_doubling_schedule():
    assert doubling(100, 400) == [100, 200, 400]
    assert doubling(100, 300) == [100, 200, 300]
    assert doubling(100, 60) == [60]


def test_growing_schedule_adds_the_first_count_then_a_quarter():
    assert growing(100, 500) == [100, 200, 300, 400, 500]  # LIME's default: the rule checked every 100 samples
    assert growing(100, 250) == [100, 200, 250]
    assert growing(100, 60) == [60]
    counts = growing(100, 4000)
    steps = np.diff(counts[:-1])
    assert counts[-1] == 4000 and all(s == max(100, n // 4) for s, n in zip(steps, counts, strict=False))
    assert len(counts) == 15  # a large budget stays a few stages, not one per 100 samples


def lime_job(clf: models.Classifier, img, samples: int, seed: int = 0) -> Job:
    request = explainers.Request.make(clf, img, "lime", target=1, seed=seed, samples=samples, n_segments=12)
    return Job(clf, clf.input_image(img), 1, seed, dict(request.params), lambda _: None)


def test_each_lime_estimate_is_limes_fit_to_the_first_n_of_the_same_samples(tiny_clf, noise_image):
    img = noise_image(24, 24, seed=1)
    request = explainers.Request.make(tiny_clf, img, "lime", target=1, samples=400, n_segments=12)

    shown = list(explainers.stages(request))

    assert [a.stage.evaluations for a in shown] == growing(100, 400)[: len(shown)]
    assert shown[0].stage.label().startswith("first estimate: 100 of at most 400 evaluations")
    for att in shown:  # the first n samples of a 400-sample draw are the whole draw of an n-sample run
        whole = explainers.get("lime")().compute(lime_job(tiny_clf, img, att.stage.evaluations))[0]
        np.testing.assert_allclose(att.heatmap, whole, rtol=1e-5, atol=1e-8)
    assert shown[-1].stage.converged and not any(a.stage.converged for a in shown[:-1])


def test_explain_returns_the_converged_map_and_on_stage_hears_every_estimate(tiny_clf, noise_image):
    img = noise_image(24, 24, seed=2)
    heard: list[explainers.Attribution] = []

    att = explainers.run(
        explainers.Request.make(tiny_clf, img, "lime", target=1, samples=800, n_segments=12), on_stage=heard.append
    )

    assert heard[-1] is att and att.stage.converged
    np.testing.assert_array_equal(att.heatmap, explainers.explain(tiny_clf, img, "lime", target=1, samples=800,
                                                                  n_segments=12).heatmap)  # fmt: skip
    with pytest.raises(ValueError, match="on_stage must be a function"):
        explainers.run(att.request, on_stage=3)


def test_closing_the_stages_early_stops_the_work(tiny, noise_image):
    counting = tiny.Counting(tiny.TinyConv())
    clf = models.from_module(counting, tiny.labels, 24, crop=1.0, backend="torch")
    clf.engine()
    counting.images = 0
    stages = explainers.stages(explainers.Request.make(clf, noise_image(24, 24), "lime", samples=1600, n_segments=12))

    first = next(stages)
    stages.close()

    assert first.stage.evaluations == 100 and counting.images <= 100 + 16  # one more batch at most


def test_each_shap_stage_is_shap_at_its_budget_and_the_stages_share_their_evaluations(tiny, noise_image):
    counting = tiny.Counting(tiny.TinyConv())
    clf = models.from_module(counting, tiny.labels, 20, crop=1.0, backend="torch")
    clf.engine()
    counting.images = 0
    img = noise_image(20, 20, seed=3)
    request = explainers.Request.make(clf, img, "shap", target=0, evaluations=400)

    shown = list(explainers.stages(request))
    seen = counting.images

    assert [a.stage.planned for a in shown] == [400] * len(shown)
    assert shown[-1].stage.converged and not any(a.stage.converged for a in shown[:-1])
    budgets = doubling(100, 400)  # a quarter, a half, the whole budget: previews, then the map
    assert len(shown) == len(budgets)
    assert seen == shown[-1].stage.evaluations <= budgets[-1]  # each image shown to the model once, in all stages
    assert [a.stage.evaluations for a in shown] == sorted({a.stage.evaluations for a in shown})
    shap = explainers.get("shap")()
    for att, budget in zip(shown, budgets, strict=True):  # each stage is the whole search at its own budget
        alone, _ = shap.compute(Job(clf, clf.input_image(img), 0, 0, {**request.params, "evaluations": budget},
                                    lambda _: None))  # fmt: skip
        np.testing.assert_allclose(att.heatmap, alone, rtol=1e-6, atol=1e-9)


def test_a_method_that_does_not_refine_gives_one_map(tiny_clf, noise_image):
    (att,) = explainers.stages(explainers.Request.make(tiny_clf, noise_image(16, 16), "saliency", target=0))

    assert att.stage.converged and att.stage.label() == "computed in one go (1 evaluation)"
