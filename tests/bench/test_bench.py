"""The benchmark runs end to end and counts what it claims (on the small MNIST model, tiny settings)."""

from __future__ import annotations

import json

import pytest

from bench import defaults
from bench import run as bench
from whylabel import explainers
from whylabel.explainers.forward import IMAGES_PER_CALL
from whylabel.explainers.methods.lime_image import FIRST_SAMPLES
from whylabel.explainers.methods.occlusion import evaluations
from whylabel.explainers.progressive import growing


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
    assert "Isolated worker" in table  # the worker's cost, the same call in-process and through the worker
    assert all(
        data["worker"][kind]["worker"] > 0 and data["worker"][kind]["in_process"] > 0 for kind in ("uint8", "float32")
    )


def test_bench_counts_the_images_each_path_shows_the_model(result):
    data, _ = result
    run = data["runs"][0]
    size = 28  # mnist_cnn's input
    assert run["notebook"]["occlusion"]["images"] == evaluations(size, size, 15, 8) + 1
    assert run["notebook"]["lime"]["images"] == 1000
    lime_samples = explainers.get("lime").resolve({}, size)["samples"]
    assert run["dashboard"]["lime"]["images"] in growing(FIRST_SAMPLES, lime_samples)  # stops once converged
    assert all(0 < run["dashboard"][m]["first_seconds"] <= run["dashboard"][m]["seconds"] for m in bench.METHODS)
    squares = evaluations(size, size, 2, 2)  # 16/16 scaled to 28 px: the full tiling
    assert run["dashboard"]["occlusion"]["images"] == squares + 2  # the image, and the preview's rest greyed at once
    budget = explainers.get("shap").resolve({}, size)["evaluations"]
    assert 0 < run["dashboard"]["shap"]["images"] <= budget + IMAGES_PER_CALL  # its stages share evaluations


def test_bench_summary_is_consistent_with_its_runs(result):
    data, _ = result
    s, run = data["summary"], data["runs"][0]
    total = {path: sum(run[path][m]["seconds"] for m in bench.METHODS) for path in ("notebook", "dashboard")}
    assert s["speedup"] == pytest.approx(total["notebook"] / total["dashboard"])
    for method in bench.PERTURBATION:
        row = s["methods"][method]["dashboard"]
        assert row["vs_hardware_limit"] == pytest.approx(row["seconds"] * data["throughput"]["best"] / row["images"])
    assert all(0 <= run[path][m]["deletion_auc"] <= 1 for path in ("notebook", "dashboard") for m in bench.METHODS)


def test_bench_times_another_target_and_counts_the_passes_it_ran(result):
    data, out = result
    run = data["runs"][0]["target_switch"]
    assert set(run) == set(bench.PERTURBATION)
    for method, name in ((m, n) for m in run for n in bench.SWITCHES):
        # what the first map ran is not run again; SHAP's search follows the class, so it runs its other regions
        assert run[method][name]["reused"] > 0, (method, name)
        if method != "shap":
            assert run[method][name]["ran"] == 0, (method, name)  # every square; LIME watching the top class
    assert all(run[m][name]["seconds"] > 0 for m in run for name in bench.SWITCHES)
    assert "| same image, another target |" in (out / "latest.md").read_text()


def test_bench_times_both_what_if_searches(result):
    data, out = result
    run = data["runs"][0]["whatif"]
    assert set(run) == {"counterfactual", "sufficient"}
    budget = 400  # the searches' default; pruning may add a few views
    assert all(run[k]["seconds"] > 0 and 0 < run[k]["views"] <= budget + run[k]["size"] ** 2 for k in run)
    assert "| what-if (defaults, own passes) |" in (out / "latest.md").read_text()


def test_the_default_is_the_cheapest_budget_that_finds_the_evidence_and_deletes_as_well():
    def row(n: int, least: float, auc: float) -> dict:
        return {"params": {"samples": n}, "known_answer": {"least": least, "mean": least}, "deletion_auc": auc}

    notebook = 0.30
    rows = [row(250, 0.55, 0.29), row(500, 0.72, 0.29), row(750, 0.8, 0.33), row(1000, 0.76, 0.305),
            row(2000, 0.9, 0.28)]  # fmt: skip
    # 250 misses evidence, 500 finds it by less than the margin above 0.7, 750 deletes worse
    assert defaults.cheapest(rows, notebook) == {"samples": 1000}
    assert defaults.cheapest(rows[:3], notebook) is None
    table = defaults.table({"lime": {"rows": [{**r, "seed_agreement": None, "evaluations": 1, "seconds": 0.1}
                                              for r in rows], "notebook_deletion_auc": notebook,
                                     "default": {"samples": 1000}}})  # fmt: skip
    assert "| lime | samples 1000 **(default)** | 0.76 / 0.76 | 0.305 (0.300) | - |" in table


def test_the_browser_bench_compares_each_photo_with_itself():
    from bench import browser

    runs = lambda *seconds: [dict.fromkeys(browser.MARKS, s) for s in seconds]  # noqa: E731
    page = {"runs": runs(2.0, 9.0, 3.3), "launch_seconds": 20.0, "launch_again_seconds": 8.0}
    api = {"runs": runs(1.0, 6.0, 1.5), "launch_seconds": 10.0}

    result = browser.summary(page, api)

    mark = result["medians"]["all_panels_seconds"]
    assert mark["ratios"] == pytest.approx([2.0, 1.5, 2.2]) and mark["ratio"] == 2.0  # paired, then the median
    assert (mark["browser"], mark["api"]) == (3.3, 1.5)  # whose ratio, 2.2, compares two different photos
    assert result["launch_seconds"]["ratio"] == 2.0
    assert "| whole view | 3.30 | 1.50 | 2.00x | 1.50-2.20x |" in browser.text(result)
