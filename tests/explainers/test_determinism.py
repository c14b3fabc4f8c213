"""Determinism asserted by behaviour, never by a flag.

For every registered method and every choice of each of its choice parameters: where `uses_randomness` says the
seed cannot change the map, seeds 0, 1 and 2 give byte-identical maps (each run after other code has left the
process-wide random generators somewhere else); where it says the seed can, they do not all agree. And
`trust.stability` runs the method for every seed instead of trusting the flag.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from whylabel import explainers, models, trust
from whylabel.explainers import Request

SIZE = 16
SEEDS = (0, 1, 2)
LABELS = ("a", "b", "c")
SMALL: dict[str, dict[str, Any]] = {
    "occlusion": {"window": 4, "stride": 3},
    "lime": {"samples": 20, "n_segments": 16},
    "shap": {"evaluations": 24},
    "integrated_gradients": {"steps": 8},
    "smoothgrad": {"samples": 4},
}
"""Fast settings for a 16-px model; a method without an entry runs at its defaults."""
EXTRA: dict[str, list[dict[str, Any]]] = {"smoothgrad": [{"noise": 0.0}]}
"""Numeric settings that switch a method's randomness off, beyond its choice parameters."""


def settings(method: str) -> list[dict[str, Any]]:
    """The method's small settings with each choice of each choice parameter in turn, plus its extras."""
    base = SMALL.get(method, {})
    choices = [{**base, p.name: c} for p in explainers.get(method).params for c in p.choices]
    return (choices or [base]) + [{**base, **extra} for extra in EXTRA.get(method, [])]


def case(method: str, params: dict[str, Any]) -> Any:
    shown = ",".join(f"{k}={v}" for k, v in params.items() if k not in SMALL.get(method, {}))
    return pytest.param(method, params, id=f"{method}[{shown}]" if shown else method)


def random_for(method: str, params: dict[str, Any]) -> bool:
    cls = explainers.get(method)
    return cls.uses_randomness(cls.resolve(params, SIZE))


CASES = [(m, p) for m in explainers.available() for p in settings(m)]
DETERMINISTIC = [case(m, p) for m, p in CASES if not random_for(m, p)]
RANDOM = [case(m, p) for m, p in CASES if random_for(m, p)]


class TwoScales(torch.nn.Module):
    """A small CNN: a conv at full resolution, pooling, a conv at half resolution, a linear head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.conv2 = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 4, 3, padding=1)
        self.act1, self.act2 = torch.nn.ReLU(), torch.nn.ReLU()
        self.pool, self.squeeze = torch.nn.AvgPool2d(2), torch.nn.AdaptiveAvgPool2d(2)
        self.head = torch.nn.Linear(16, len(LABELS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act1(self.conv1(x)))
        return self.head(self.squeeze(self.act2(self.conv2(x))).flatten(1))


class Ties(torch.nn.Module):
    """Class 0's logit: the channel sum (a 1x1 conv, then a ReLU) weighted per pixel, the four quadrants weighing
    the same in all, the top-left spread over its area and each other quadrant on one pixel. On a flat image the
    quadrants tie in importance, so only how a search breaks ties decides which it refines first (SHAP's)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1, bias=False)
        torch.nn.init.ones_(self.conv.weight)
        self.act = torch.nn.ReLU()  # changes nothing (the input is positive): what guided backprop needs
        half = size // 2
        weights = torch.zeros(size, size)
        weights[:half, :half] = 1.0 / half**2
        weights[2, half + 3] = weights[half + 1, 4] = weights[half + 5, half + 6] = 1.0
        self.register_buffer("weights", weights / 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = (self.act(self.conv(x))[:, 0] * self.weights).flatten(1).sum(1)
        return torch.stack([score, -score, torch.zeros_like(score)], dim=-1)


def noisy_scene() -> tuple[models.Classifier, Image.Image]:
    clf = models.from_module(TwoScales(), LABELS, SIZE, crop=1.0, name="two-scales", batch_size=4)
    pixels = np.random.default_rng(5).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    return clf, Image.fromarray(pixels)


def tied_scene() -> tuple[models.Classifier, Image.Image]:
    clf = models.from_module(Ties(SIZE), LABELS, SIZE, mean=(0,) * 3, std=(1,) * 3, crop=1.0, batch_size=4)
    return clf, Image.fromarray(np.full((SIZE, SIZE, 3), 192, np.uint8))


SCENES = {"noise": noisy_scene, "ties": tied_scene}


@pytest.fixture(scope="module", params=list(SCENES))
def scene(request: pytest.FixtureRequest) -> tuple[models.Classifier, Image.Image]:
    return SCENES[request.param]()


@pytest.fixture(scope="module")
def noisy() -> tuple[models.Classifier, Image.Image]:
    return noisy_scene()


@pytest.fixture(autouse=True)
def global_rngs_restored() -> Iterator[None]:
    """The tests below move numpy's, torch's and Python's global generators; put them back afterwards."""
    state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng():
        yield
    np.random.set_state(state)
    random.setstate(py_state)


def maps_for(request: Request, seeds: tuple[int, ...] = SEEDS) -> list[bytes]:
    """The map's bytes for each seed, each run after other code has left the global generators elsewhere."""
    maps = []
    for seed in seeds:
        np.random.seed(1000 + seed)
        torch.manual_seed(1000 + seed)
        random.seed(1000 + seed)
        maps.append(explainers.run(request.with_seed(seed)).heatmap.tobytes())
    return maps


@pytest.mark.parametrize(("method", "params"), DETERMINISTIC)
def test_a_method_that_uses_no_randomness_gives_the_same_bytes_for_every_seed(scene, method, params):
    clf, img = scene
    maps = maps_for(Request.make(clf, img, method, target=0, **params))

    assert maps[0] == maps[1] == maps[2]


@pytest.mark.parametrize(("method", "params"), RANDOM)
def test_a_method_that_uses_randomness_gives_different_maps_for_some_seeds(noisy, method, params):
    clf, img = noisy
    maps = maps_for(Request.make(clf, img, method, target=0, **params))

    assert len(set(maps)) >= 2


def test_both_kinds_of_settings_are_exercised():
    """Without settings of both kinds, one of the two tests above would check nothing."""
    assert DETERMINISTIC and RANDOM
    assert {m for m, _ in CASES} == set(explainers.available())


# --- stability runs the method; it does not read the flag --------------------------------------------------------


def spy_on_compute(monkeypatch: pytest.MonkeyPatch, method: str) -> list[int]:
    """The seeds of every job the method runs (through `estimates`, which every run goes through)."""
    cls = explainers.get(method)
    real, seeds = cls.estimates, []

    def estimates(self, job):
        seeds.append(job.seed)
        return real(self, job)

    monkeypatch.setattr(cls, "estimates", estimates)
    return seeds


@pytest.mark.parametrize(("method", "params"), [("saliency", {}), ("occlusion", SMALL["occlusion"])])
def test_stability_of_a_deterministic_method_runs_it_once_per_seed_and_is_one(noisy, monkeypatch, method, params):
    clf, img = noisy
    seeds = spy_on_compute(monkeypatch, method)

    value = trust.stability(Request.make(clf, img, method, target=0, **params), seeds=SEEDS)

    assert seeds == list(SEEDS)
    assert value == 1.0


def test_stability_of_a_method_whose_seed_changes_the_map_is_below_one(noisy, monkeypatch):
    clf, img = noisy
    seeds = spy_on_compute(monkeypatch, "lime")

    value = trust.stability(Request.make(clf, img, "lime", target=0, **SMALL["lime"]), seeds=SEEDS)

    assert seeds == list(SEEDS)
    assert value < 1.0


def test_stability_of_shap_is_one_where_its_search_meets_ties():
    """SHAP's partition search breaks ties with numpy's global generator: unless that is fixed, the maps of a
    deterministic method differed from run to run, and stability said so."""
    clf, img = tied_scene()
    np.random.seed(0)  # the run-to-run drift, made repeatable

    assert trust.stability(Request.make(clf, img, "shap", target=0, evaluations=24, fill="black")) == 1.0
