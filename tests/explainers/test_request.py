"""`Request`: one value for (model, image, method, target, contrast, seed, parameters), checked once."""

from __future__ import annotations

import numpy as np
import pytest

from whylabel import explainers, models


@pytest.fixture
def photo(noise_image):
    return noise_image(16, 16, seed=5)


def test_make_resolves_the_target_contrast_and_every_parameter(tiny_clf, photo):
    request = explainers.Request.make(tiny_clf, photo, "occlusion", target="dog", contrast=0, seed=4, window=4)

    assert (request.target, request.contrast, request.seed) == (1, 0, 4)
    assert dict(request.params) == {"window": 4, "stride": 1, "refine": 1.0}  # defaults scaled to the 16-px input
    with pytest.raises(TypeError):
        request.params["window"] = 8  # read-only: a request is a value


def test_a_request_without_a_target_explains_the_top_class(tiny_clf, photo):
    request = explainers.Request.make(tiny_clf, photo, "saliency")

    assert request.target == tiny_clf.predict(photo).top[0][0]


def test_run_gives_the_map_explain_gives_and_keeps_its_request(tiny_clf, photo):
    request = explainers.Request.make(tiny_clf, photo, "lime", target=2, seed=3, samples=30, n_segments=6)

    att = explainers.run(request)

    same = explainers.explain(tiny_clf, photo, "lime", target=2, seed=3, samples=30, n_segments=6)
    np.testing.assert_array_equal(att.heatmap, same.heatmap)
    assert att.request == request and att.params == {**request.params, "seed": 3}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "magic"}, "unknown method"),
        ({"target": 7}, "valid indices are 0..2"),
        ({"contrast": 1, "target": 1}, "must differ"),
        ({"seed": -1}, "seed must be"),
        ({"window": 0}, "window must be"),
    ],
)
def test_make_refuses_what_explain_refuses(tiny_clf, photo, kwargs, message):
    arguments = {"method": "occlusion", **kwargs}
    with pytest.raises(ValueError, match=message):
        explainers.Request.make(tiny_clf, photo, **arguments)


def test_with_seed_checks_the_seed_and_with_model_swaps_the_model(tiny, tiny_clf, photo):
    request = explainers.Request.make(tiny_clf, photo, "saliency", target=0)

    assert request.with_seed(9).seed == 9
    with pytest.raises(ValueError, match="seed must be"):
        request.with_seed(-2)
    other = models.from_module(tiny.TinyConv(seed=1), tiny.labels, 16, crop=1.0)
    swapped = request.with_model(other)
    assert swapped.clf is other and swapped.target == request.target
    assert not np.array_equal(explainers.run(swapped).heatmap, explainers.run(request).heatmap)


def test_run_refuses_a_bad_progress_callback(tiny_clf, photo):
    with pytest.raises(ValueError, match="progress must be a function"):
        explainers.run(explainers.Request.make(tiny_clf, photo, "saliency"), progress=3)
