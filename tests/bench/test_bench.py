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


# Three invented runs (saliency, occlusion, lime, shap), seconds per method, chosen so that each median and
# ratio below is worked out by hand. Totals: notebook 20, 30, 40 s; dashboard 4, 2, 3 s.
NOTEBOOK_SECONDS = [(1, 4, 10, 5), (2, 6, 12, 10), (1, 5, 14, 20)]
DASHBOARD_SECONDS = [(0.2, 0.8, 1.0, 2.0), (0.1, 0.4, 0.5, 1.0), (0.1, 0.6, 0.8, 1.5)]
DASHBOARD_IMAGES = [(1, 100, 500, 200), (1, 120, 300, 250), (1, 130, 400, 300)]
DASHBOARD_AUC = [(0.4, 0.2, 0.3, 0.35), (0.4, 0.3, 0.3, 0.3), (0.4, 0.1, 0.3, 0.31)]
NOTEBOOK_AUC = (0.4, 0.2, 0.3, 0.3)
FIXED_SECONDS = {"occlusion": (1.0, 1.2, 1.1), "lime": (1.3, 1.2, 1.25), "shap": (1.0, 1.0, 1.0)}


def invented_run(n: int) -> dict:
    methods = bench.METHODS
    return {
        "photo": f"photo {n}",
        "notebook": {
            m: {"seconds": NOTEBOOK_SECONDS[n][i], "images": 1000, "deletion_auc": NOTEBOOK_AUC[i]}
            for i, m in enumerate(methods)
        },
        "dashboard": {
            m: {
                "seconds": DASHBOARD_SECONDS[n][i],
                "first_seconds": DASHBOARD_SECONDS[n][i] / 2,
                "images": DASHBOARD_IMAGES[n][i],
                "deletion_auc": DASHBOARD_AUC[n][i],
            }
            for i, m in enumerate(methods)
        },
        "random_deletion_auc": (0.5, 0.6, 0.7)[n],
        "first_panel_seconds": (0.5, 2.0, 0.8)[n],
        "target_switch": {
            m: {"first": (1.0, 3.0, 2.0)[n]}
            | {name: {"seconds": (0.3, 0.1, 0.2)[n], "ran": (0, 4, 2)[n], "reused": 10} for name in bench.SWITCHES}
            for m in bench.PERTURBATION
        },
        "whatif": {
            "counterfactual": {"seconds": 1.0 + n, "views": (50, 70, 60)[n], "found": n < 2, "size": (3, 5, 9)[n]},
            "sufficient": {"seconds": 2.0, "views": 400, "found": False, "size": 0},
        },
        "fixed_budget": {m: {"seconds": FIXED_SECONDS[m][n], "images": 1000} for m in bench.PERTURBATION},
    }


def invented_result() -> dict:
    return {
        "machine": {"cpu": "test cpu", "cores": 2, "torch": "t", "onnxruntime": "o"},
        "model": "invented",
        "load_seconds": 1.0,
        "engine_seconds": 2.0,
        "throughput": {"best": 1000.0, "engine": {"backend": "onnx", "batch_size": 8}, "rates": {"torch": {8: 800.0}}},
        "runs": [invented_run(n) for n in range(3)],
    }


def test_the_summary_of_three_invented_runs_is_their_medians_and_ratios():
    s = bench.summarise(invented_result())

    assert s["total_seconds"] == {"notebook": 30, "dashboard": 3}  # medians of 20, 30, 40 and of 4, 2, 3
    assert s["speedup"] == pytest.approx(10.0)  # 30 / 3: not the median of the runs' ratios (5, 15, 13.3)
    occlusion, lime, shap = (s["methods"][m]["dashboard"] for m in ("occlusion", "lime", "shap"))
    assert (occlusion["seconds"], occlusion["images"], occlusion["first_seconds"]) == pytest.approx((0.6, 120, 0.3))
    assert s["methods"]["occlusion"]["notebook"]["seconds"] == 5
    assert occlusion["images_per_second"] == pytest.approx(200.0)  # 120 images in 0.6 s
    assert occlusion["vs_hardware_limit"] == pytest.approx(5.0)  # 0.6 s against 120 / 1000 s at the best rate
    assert (lime["images_per_second"], lime["vs_hardware_limit"]) == pytest.approx((500.0, 2.0))  # 400 in 0.8 s
    assert (shap["images_per_second"], shap["vs_hardware_limit"]) == pytest.approx((500 / 3, 6.0))  # 250 in 1.5 s
    assert "vs_hardware_limit" not in s["methods"]["saliency"]["dashboard"]
    assert s["methods"]["occlusion"]["dashboard"]["deletion_auc"] == pytest.approx(0.2)  # median of 0.2, 0.3, 0.1
    assert s["mean_deletion_auc"] == pytest.approx({"notebook": 0.3, "dashboard": 0.305})  # 3.66 / 12
    assert s["random_deletion_auc"] == pytest.approx(0.6)
    assert s["first_panel_seconds"] == 0.8
    switch = s["target_switch"]["lime"]
    assert switch["first"] == 2.0 and switch["a contrast"] == {"seconds": 0.2, "ran": 2, "reused": 10}
    assert s["whatif"]["counterfactual"] == {"seconds": 2.0, "views": 60, "found": 2, "size": 4.0, "photos": 3}
    assert s["whatif"]["sufficient"]["found"] == 0 and s["whatif"]["sufficient"]["size"] is None
    assert s["fixed_budget"]["lime"] == pytest.approx(
        {"images": 1000, "seconds": 1.25, "images_per_second": 800.0, "vs_hardware_limit": 1.25}
    )
    assert s["goals"] == {
        "speed-up >= 10x": True,  # exactly 10
        "stretch: speed-up >= 20x": False,
        "mean deletion AUC within +0.01 of the notebook's": True,  # 0.305 <= 0.31
        "every perturbation method within 1.25x of the hardware limit at ~1,000 evaluations": True,  # lime: 1.25
        "first panel under 1 s": True,
    }


def test_the_table_of_three_invented_runs_states_the_hand_computed_numbers():
    result = invented_result()
    result["summary"] = bench.summarise(result)

    lines = bench.table(result).splitlines()

    assert lines[0].startswith("Machine: test cpu, 2 cores") and "3 photos x 1 rounds, medians." in lines[0]
    # notebook 5 s / dashboard 0.6 s = 8.3x; 120 images at 200 images/s, 5x the 0.12 s the best rate needs
    assert "| occlusion | 5.00 | 0.30 | 0.60 | 8.3x | 1000 / 120 | 200 (5.00x) | 0.200 / 0.200 |" in lines
    assert "| **all four** | **30.0** | | **3.00** | **10.0x** | | | 0.300 / 0.305 (random map 0.600) |" in lines
    assert "| counterfactual | 2.00 | 60 | 2 of 3 | 4 |" in lines
    assert "| lime | 1000 | 1.25 | 800 | 1.25x |" in lines
    assert lines[-1] == (
        "Goals: speed-up >= 10x: met; stretch: speed-up >= 20x: NOT met; mean deletion AUC within +0.01 of the "
        "notebook's: met; every perturbation method within 1.25x of the hardware limit at ~1,000 evaluations: met; "
        "first panel under 1 s: met."
    )


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
