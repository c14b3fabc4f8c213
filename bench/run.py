"""`make bench`: the notebook path against the dashboard path, in one run on this machine.

For each gallery photo and round, alternately: the four maps as a notebook would compute them
(`bench.notebook`), then the dashboard's four default panels (`explainers.explain`, warm model).
Reports median seconds per method and in all, the speed-up, images the model was shown per method,
throughput achieved against the best measured forward throughput, deletion AUC per method (lower is
better), the first-panel time, and the budget sweep that chooses the perturbation methods' defaults
(`bench.defaults`: known-answer share, deletion AUC, seed agreement). Writes JSON and
a Markdown table (for docs/performance.md) and prints the table.

Usage: python -m bench.run [--model efficientnet_lite0] [--photos N] [--rounds N] [--no-sweep]
       [--sweep-photos N] [--sweep-methods M ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
from tqdm import tqdm

from bench import defaults, notebook, worker_cost
from whylabel import explainers, models, render, whatif
from whylabel.models import engine
from whylabel.trust.faithfulness import curve, random_map

PHOTOS = ("chelsea (cat)", "coffee", "astronaut", "rocket", "motorcycle", "china (temple)", "flower", "grace hopper")
METHODS = ("saliency", "occlusion", "lime", "shap")
PERTURBATION = ("occlusion", "lime", "shap")
GOAL_SPEEDUP, STRETCH_SPEEDUP, AUC_SLACK, THROUGHPUT_SLACK, FIRST_PANEL_S = 10.0, 20.0, 0.01, 1.25, 1.0


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def notebook_run(clf: models.Classifier, pixels: np.ndarray, target: int) -> dict[str, dict[str, Any]]:
    out = {}
    for method in METHODS:
        start = time.perf_counter()
        heatmap, images = notebook.METHODS[method](clf, pixels, target)
        out[method] = {"seconds": time.perf_counter() - start, "images": images, "heatmap": heatmap}
    return out


def dashboard_run(clf: models.Classifier, img: Any, target: int) -> dict[str, dict[str, Any]]:
    clf.memory.clear()  # a photo the page has not seen: no logits kept from an earlier round
    out = {}
    for method in METHODS:
        shown = []  # seconds at which each estimate arrived: the first is what a person waits for
        att = explainers.run(explainers.Request.make(clf, img, method, target=target), on_stage=shown.append)
        images = att.stage.evaluations  # every image the model saw on the way, previews included
        first = shown[0].seconds
        out[method] = {"seconds": att.seconds, "first_seconds": first, "images": images, "heatmap": att.heatmap}
    return out


def first_panel_seconds(clf: models.Classifier, img: Any) -> float:
    """What the page does before the first panel shows: predict, saliency, and its figure."""
    start = time.perf_counter()
    target = clf.predict(img).top[0][0]
    att = explainers.explain(clf, img, "saliency", target=target)
    render.attribution_figure(clf.input_image(img), att, render.Display())
    return time.perf_counter() - start


def forward_rates(clf: models.Classifier, seconds: float) -> dict[str, dict[int, float]]:
    """Forward images per second at every batch size, for the engine's backend and for eager torch."""
    example = np.stack([clf.input_image(models.sample_image(PHOTOS[0]))] * 3).astype(np.float32)
    return {
        "engine": engine.calibrate(clf.engine().run, example, seconds=seconds),
        "torch": engine.calibrate(engine.torch_run(clf), example, seconds=seconds),
    }


def best_throughput(clf: models.Classifier, before: dict, after: dict) -> dict[str, Any]:
    """The best of two measurements (before and after the timed runs) at each batch size."""
    fast = clf.engine()
    rates = {kind: {size: max(before[kind][size], after[kind][size]) for size in before[kind]} for kind in before}
    return {
        "engine": {"backend": fast.backend, "batch_size": fast.batch_size, "note": fast.note},
        "rates": rates,
        "best": max(max(r.values()) for r in rates.values()),
    }


SWITCHES = ("another class", "a contrast", "below the top 5")
"""The targets asked after the top class's maps: the second class, top rather than second, the 7th class."""


def target_switch_run(clf: models.Classifier, img: Any, first: dict[str, dict[str, Any]]) -> dict[str, dict]:
    """After the dashboard's maps of the top class (`first`): each perturbation method's map of the second class,
    of the top class rather than the second (a contrast), and of the 7th class (below the top 5 that LIME's
    `watch`='top 5' and occlusion's coarse-to-fine split watch), with the forward passes they ran."""
    top = [index for index, _, _ in clf.predict(img, k=7).top]
    out = {}
    for method in PERTURBATION:
        asked = {
            "another class": {"target": top[1]},
            "a contrast": {"target": top[0], "contrast": top[1]},
            "below the top 5": {"target": top[6]},
        }
        out[method] = {"first": first[method]["seconds"]}
        for name, classes in asked.items():
            att = explainers.explain(clf, img, method, **classes)
            out[method][name] = {"seconds": att.seconds, "ran": att.extras["ran"], "reused": att.extras["reused"]}
    return out


FIXED_BUDGET = {"occlusion": {"window": 15, "stride": 7}, "lime": {"samples": 1000}, "shap": {"evaluations": 1000}}
"""About 1,000 evaluations each (occlusion: 962 windows), so per-evaluation costs dominate fixed ones."""


def fixed_budget_run(clf: models.Classifier, img: Any, target: int) -> dict[str, dict[str, float]]:
    out = {}
    for method, params in FIXED_BUDGET.items():
        clf.memory.clear()  # its own passes, not the logits the default maps left
        att = explainers.explain(clf, img, method, target=target, **params)
        out[method] = {"seconds": att.seconds, "images": att.extras["evaluations"]}
    return out


WHATIF = {"counterfactual": whatif.counterfactual, "sufficient": whatif.sufficient}


def whatif_run(clf: models.Classifier, img: Any) -> dict[str, dict[str, float]]:
    """Each what-if search with its defaults, from an empty memory: seconds, views tried, found, set size."""
    out = {}
    for kind, search in WHATIF.items():
        clf.memory.clear()  # its own passes, not the maps' logits
        edit = search(clf, img)
        out[kind] = {"seconds": edit.seconds, "views": edit.evaluations, "found": edit.found, "size": len(edit.changed)}
    return out


def deletion(clf: models.Classifier, pixels: np.ndarray, heatmap: np.ndarray, target: int) -> float:
    return curve(clf, pixels, heatmap, target, "deletion").auc


def measure(args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    clf = models.load(args.model)
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    clf.engine()
    engine_seconds = time.perf_counter() - start
    before = forward_rates(clf, args.calibration_seconds)
    photos = list(PHOTOS[: args.photos])
    warm = models.sample_image(PHOTOS[-1])  # one untimed run of everything: numba JIT, allocators, first calls
    notebook_run(clf, clf.input_image(warm), clf.predict(warm).top[0][0])
    dashboard_run(clf, warm, clf.predict(warm).top[0][0])
    runs: list[dict[str, Any]] = []
    for name in tqdm(photos * args.rounds, desc="photos x rounds", file=sys.stderr):
        img = models.sample_image(name)
        pixels, target = clf.input_image(img), clf.predict(img).top[0][0]
        row: dict[str, Any] = {"photo": name, "target": target, "label": clf.labels[target]}
        row["notebook"] = notebook_run(clf, pixels, target)  # alternating: notebook, then dashboard, per photo
        row["dashboard"] = dashboard_run(clf, img, target)
        row["target_switch"] = target_switch_run(clf, img, row["dashboard"])
        for path in ("notebook", "dashboard"):
            for result in row[path].values():
                result["deletion_auc"] = deletion(clf, pixels, result.pop("heatmap"), target)
        row["random_deletion_auc"] = deletion(clf, pixels, random_map(pixels.shape[:2]), target)
        row["fixed_budget"] = fixed_budget_run(clf, img, target)
        row["first_panel_seconds"] = first_panel_seconds(clf, models.sample_image(name).copy())
        row["whatif"] = whatif_run(clf, img)
        runs.append(row)
    result = {
        "machine": machine(),
        "model": args.model,
        "load_seconds": load_seconds,
        "engine_seconds": engine_seconds,
        "throughput": best_throughput(clf, before, forward_rates(clf, args.calibration_seconds)),
        "runs": runs,
        "worker": worker_cost.measure(clf, clf.input_image(models.sample_image(PHOTOS[0]))),
    }
    if args.sweep:
        result["defaults"] = sweep(clf, photos[: args.sweep_photos], runs, args.sweep_methods)
    return result


def sweep(clf: models.Classifier, names: list[str], runs: list[dict[str, Any]], methods: list[str]) -> dict[str, Any]:
    """`bench.defaults`: each budget's known-answer share, deletion AUC and seed agreement, against the notebook."""
    same = [r for r in runs if r["photo"] in names]  # the notebook's deletion on the photos the sweep uses
    notebook_auc = {m: statistics.mean(r["notebook"][m]["deletion_auc"] for r in same) for m in methods}
    found = defaults.sweep(clf, [models.sample_image(name) for name in names], notebook_auc)
    return {"photos": names, **found}


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    runs, best = result["runs"], result["throughput"]["best"]
    summary: dict[str, Any] = {"methods": {}}
    for method in METHODS:
        row: dict[str, Any] = {}
        for path in ("notebook", "dashboard"):
            row[path] = {
                key: statistics.median(r[path][method][key] for r in runs)
                for key in ("seconds", "images", "deletion_auc")
            }
        row["dashboard"]["first_seconds"] = statistics.median(r["dashboard"][method]["first_seconds"] for r in runs)
        dash = row["dashboard"]
        if method in PERTURBATION:
            dash["images_per_second"] = dash["images"] / dash["seconds"]
            dash["vs_hardware_limit"] = dash["seconds"] / (dash["images"] / best)
        summary["methods"][method] = row
    totals = {path: [sum(r[path][m]["seconds"] for m in METHODS) for r in runs] for path in ("notebook", "dashboard")}
    aucs = {path: statistics.mean(r[path][m]["deletion_auc"] for r in runs for m in METHODS) for path in totals}
    summary["total_seconds"] = {path: statistics.median(values) for path, values in totals.items()}
    summary["speedup"] = summary["total_seconds"]["notebook"] / summary["total_seconds"]["dashboard"]
    summary["mean_deletion_auc"] = aucs
    summary["random_deletion_auc"] = statistics.mean(r["random_deletion_auc"] for r in runs)
    summary["first_panel_seconds"] = statistics.median(r["first_panel_seconds"] for r in runs)
    summary["target_switch"] = {
        method: {
            "first": statistics.median(r["target_switch"][method]["first"] for r in runs),
            **{
                name: {
                    key: statistics.median(r["target_switch"][method][name][key] for r in runs)
                    for key in ("seconds", "ran", "reused")
                }
                for name in SWITCHES
            },
        }
        for method in PERTURBATION
    }
    summary["whatif"] = {
        kind: {
            "seconds": statistics.median(r["whatif"][kind]["seconds"] for r in runs),
            "views": statistics.median(r["whatif"][kind]["views"] for r in runs),
            "found": sum(bool(r["whatif"][kind]["found"]) for r in runs),
            "size": statistics.median(r["whatif"][kind]["size"] for r in runs if r["whatif"][kind]["found"])
            if any(r["whatif"][kind]["found"] for r in runs)
            else None,
            "photos": len(runs),
        }
        for kind in WHATIF
    }
    summary["fixed_budget"] = {}
    for method in PERTURBATION:
        seconds = statistics.median(r["fixed_budget"][method]["seconds"] for r in runs)
        images = statistics.median(r["fixed_budget"][method]["images"] for r in runs)
        summary["fixed_budget"][method] = {
            "images": images,
            "seconds": seconds,
            "images_per_second": images / seconds,
            "vs_hardware_limit": seconds / (images / best),
        }
    worst = max(row["vs_hardware_limit"] for row in summary["fixed_budget"].values())
    summary["goals"] = {
        f"speed-up >= {GOAL_SPEEDUP:g}x": summary["speedup"] >= GOAL_SPEEDUP,
        f"stretch: speed-up >= {STRETCH_SPEEDUP:g}x": summary["speedup"] >= STRETCH_SPEEDUP,
        f"mean deletion AUC within +{AUC_SLACK} of the notebook's": aucs["dashboard"] <= aucs["notebook"] + AUC_SLACK,
        f"every perturbation method within {THROUGHPUT_SLACK}x of the hardware limit at ~1,000 evaluations": worst
        <= THROUGHPUT_SLACK,
        f"first panel under {FIRST_PANEL_S:g} s": summary["first_panel_seconds"] < FIRST_PANEL_S,
    }
    for method, found in result.get("defaults", {}).items():
        if method != "photos":
            key = f"{method}'s default is the cheapest budget passing the known-answer tests and deletion AUC"
            summary["goals"][key] = found["cheapest_passing"] == found["default"]
    return summary


def table(result: dict[str, Any]) -> str:
    s, m = result["summary"], result["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, onnxruntime {m['onnxruntime']}; "
        f"model {result['model']}; {len({r['photo'] for r in result['runs']})} photos x "
        f"{len(result['runs']) // max(len({r['photo'] for r in result['runs']}), 1)} rounds, medians.",
        "",
        "| method | notebook s | dashboard: first estimate s | dashboard: converged s | speed-up "
        "| images (notebook / dashboard) | images/s vs best | deletion AUC (notebook / dashboard) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, row in s["methods"].items():
        nb, db = row["notebook"], row["dashboard"]
        limit = f"{db['images_per_second']:.0f} ({db['vs_hardware_limit']:.2f}x)" if "vs_hardware_limit" in db else "-"
        speedup, auc = nb["seconds"] / db["seconds"], f"{nb['deletion_auc']:.3f} / {db['deletion_auc']:.3f}"
        lines.append(
            f"| {method} | {nb['seconds']:.2f} | {db['first_seconds']:.2f} | {db['seconds']:.2f} | {speedup:.1f}x "
            f"| {nb['images']:.0f} / {db['images']:.0f} | {limit} | {auc} |"
        )
    t = s["total_seconds"]
    auc = s["mean_deletion_auc"]
    lines += [
        f"| **all four** | **{t['notebook']:.1f}** | | **{t['dashboard']:.2f}** | **{s['speedup']:.1f}x** | | "
        f"| {auc['notebook']:.3f} / {auc['dashboard']:.3f} (random map {s['random_deletion_auc']:.3f}) |",
        "",
        f"Best measured forward throughput: {result['throughput']['best']:.0f} images/s "
        f"({result['throughput']['engine']['backend']}, batch {result['throughput']['engine']['batch_size']}); "
        f"eager torch at its best batch: {max(result['throughput']['rates']['torch'].values()):.0f} images/s. "
        f"First panel (prediction + saliency + figure): {s['first_panel_seconds'] * 1000:.0f} ms. "
        f"Model load {result['load_seconds']:.1f} s, engine export and calibration {result['engine_seconds']:.1f} s.",
    ]
    lines += ["", target_switch_table(s["target_switch"]), "", fixed_budget_table(s["fixed_budget"])]
    lines += ["", whatif_table(s["whatif"])]
    if "worker" in result:
        lines += ["", worker_cost.table(result["worker"])]
    if "defaults" in result:
        found = {m: v for m, v in result["defaults"].items() if m != "photos"}
        lines += ["", f"Budgets on {', '.join(result['defaults']['photos'])} and the known-answer cases:", "",
                  defaults.table(found)]  # fmt: skip
    lines += ["", "Goals: " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in s["goals"].items()) + "."]
    return "\n".join(lines)


def target_switch_table(rows: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| same image, another target | first map s | "
        + " | ".join(f"{name} s (run / reused)" for name in SWITCHES)
        + " |",
        "|---" * (2 + len(SWITCHES)) + "|",
    ]
    for method, r in rows.items():
        cells = [f"{r[name]['seconds']:.2f} ({r[name]['ran']:.0f} / {r[name]['reused']:.0f})" for name in SWITCHES]
        lines.append(f"| {method} | {r['first']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def whatif_table(rows: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| what-if (defaults, own passes) | seconds | views tried | found | superpixels in the set |",
        "|---|---|---|---|---|",
    ]
    for kind, r in rows.items():
        size = "-" if r["size"] is None else f"{r['size']:.0f}"
        found = f"{r['found']} of {r['photos']}"
        lines.append(f"| {kind} | {r['seconds']:.2f} | {r['views']:.0f} | {found} | {size} |")
    return "\n".join(lines)


def fixed_budget_table(rows: dict[str, dict[str, float]]) -> str:
    lines = [
        "| at ~1,000 evaluations | images | seconds | images/s | time vs evaluations / best throughput |",
        "|---|---|---|---|---|",
    ]
    for method, r in rows.items():
        lines.append(
            f"| {method} | {r['images']:.0f} | {r['seconds']:.2f} | {r['images_per_second']:.0f} "
            f"| {r['vs_hardware_limit']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0", choices=models.available())
    parser.add_argument("--photos", type=int, default=4, help=f"gallery photos to time (at most {len(PHOTOS)})")
    parser.add_argument("--rounds", type=int, default=1, help="times each photo is run on each path")
    parser.add_argument(
        "--sweep", action=argparse.BooleanOptionalAction, default=True, help="the budget sweep of bench.defaults"
    )
    parser.add_argument("--sweep-photos", type=int, help="photos the sweep uses (default: all of --photos)")
    parser.add_argument("--sweep-methods", nargs="+", choices=PERTURBATION, default=list(PERTURBATION))
    parser.add_argument("--calibration-seconds", type=float, default=1.0, help="timing per batch size")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    result = measure(args)
    result["summary"] = summarise(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(result, indent=1, default=float))
    (args.out / "latest.md").write_text(table(result) + "\n")
    print(table(result))
    return result


if __name__ == "__main__":
    main()
