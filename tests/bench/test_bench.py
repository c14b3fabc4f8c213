"""The benchmark runs end to end and counts what it claims (on the small MNIST model, tiny settings)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import convergence
from bench import run as bench
from whylabel import explainers
from whylabel.explainers.lime_image import FIRST_SAMPLES
from whylabel.explainers.occlusion import evaluations
from whylabel.explainers.progressive import doubling


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    args = ["--model", "mnist_cnn", "--photos", "1", "--no-sweep", "--calibration-seconds", "0.02", "--out", str(out)]
    return bench.main(args), out


def test_bench_writes_json_and_a_table(result):
    data, out = result
    assert json.loads((out / "latest.json").read_text())["model"] == "mnist_cnn"
    table = (out / "latest.md").read_text()
    assert "**all four**" in table and "Goals:" in table
    assert set(data["summary"]["methods"]) == set(bench.METHODS)


def test_bench_counts_the_images_each_path_shows_the_model(result):
    data, _ = result
    run = data["runs"][0]
    size = 28  # mnist_cnn's input
    assert run["notebook"]["occlusion"]["images"] == evaluations(size, size, 15, 8) + 1
    assert run["notebook"]["lime"]["images"] == 1000
    lime_samples = explainers.get("lime").resolve({}, size)["samples"]
    assert run["dashboard"]["lime"]["images"] in doubling(FIRST_SAMPLES, lime_samples)  # stops once converged
    assert all(0 < run["dashboard"][m]["first_seconds"] <= run["dashboard"][m]["seconds"] for m in bench.METHODS)
    assert run["dashboard"]["occlusion"]["images"] == evaluations(size, size, 4, 2) + 1  # 32/16 scaled to 28 px
    assert 0 < run["dashboard"]["shap"]["images"] <= explainers.get("shap").resolve({}, size)["evaluations"] + 2


def test_bench_summary_is_consistent_with_its_runs(result):
    data, _ = result
    s, run = data["summary"], data["runs"][0]
    total = {path: sum(run[path][m]["seconds"] for m in bench.METHODS) for path in ("notebook", "dashboard")}
    assert s["speedup"] == pytest.approx(total["notebook"] / total["dashboard"])
    for method in bench.PERTURBATION:
        row = s["methods"][method]["dashboard"]
        assert row["vs_hardware_limit"] == pytest.approx(row["seconds"] * data["throughput"]["best"] / row["images"])
    assert all(0 <= run[path][m]["deletion_auc"] <= 1 for path in ("notebook", "dashboard") for m in bench.METHODS)


def test_overlap_and_per_superpixel_sums():
    segments = np.array([[0, 0, 1], [2, 2, 1]])
    heatmap = np.array([[1.0, 2.0, 5.0], [0.5, 0.5, -1.0]])
    assert np.allclose(convergence.per_superpixel(heatmap, segments), [3.0, 4.0, 1.0])
    assert convergence.top_superpixels(np.array([0.1, 0.9, 0.5]), k=2) == {1, 2}
    assert convergence.overlap({1, 2, 3, 4}, {3, 4, 5, 6}) == 0.5


def test_fewest_is_the_smallest_budget_that_stays_converged():
    rows = [
        {"evaluations": n, "mean_overlap": o}
        for n, o in [(100, 0.7), (200, 0.82), (300, 0.79), (400, 0.85), (500, 0.9)]
    ]
    assert convergence.fewest(rows) == 400  # 200 reached it by luck and fell back at 300
    assert convergence.fewest(rows[:1]) is None
