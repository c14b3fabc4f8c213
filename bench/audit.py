"""The audit's benchmark: which method finds planted habits, and what an audit costs.

    python -m bench.audit [--marks 3] [--memory-images 1000] [--out bench/results]   (part of `make bench`)

1. Methods on trained demos (`models.marked`): for each mark, the share of marked images that fall in flagged
   clusters, the flagged clusters that are mostly unmarked (false flags), and seconds per image. The marks are
   the first of tests/audit/test_demo.py's (none was among the demos the flag rule was chosen on).
2. Seconds for an audit of 100 MNIST digits and of the ImageNet gallery's photos, with the default method.
3. Memory for an audit of 1,000 images: the peak Python allocation (tracemalloc) while the audit holds its items.
Writes audit.json and audit.md under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from whylabel import audit, explainers, models
from whylabel.audit import demo
from whylabel.models import mnist
from whylabel.models.marked import Mark
from whylabel.models.samples import PHOTOS, sample_image

MARKS = [
    (Mark(digit=4, share=0.4, row=0, col=0, size=3), 5),
    (Mark(digit=8, share=0.3, row=23, col=23, size=5), 6),
    (Mark(digit=2, share=0.5, row=1, col=24, size=3), 7),
    (Mark(digit=6, share=0.4, row=24, col=2, size=4), 8),
    (Mark(digit=5, share=0.3, row=3, col=0, size=3), 9),
]
METHODS = ("saliency", "integrated_gradients", "smoothgrad", "gradcam", "occlusion")


def found(result: audit.Audit, marked: set[str]) -> tuple[float, int]:
    """The share of marked images in flagged clusters, and the flagged clusters that are mostly unmarked."""
    flagged = result.flagged()
    caught = {result.items[m].file for c in flagged for m in c.members} & marked
    false = sum(np.mean([result.items[m].file in marked for m in c.members]) <= 0.5 for c in flagged)
    return len(caught) / max(len(marked), 1), int(false)


def methods_row(mark: Mark, seed: int, images: int) -> list[dict[str, Any]]:
    clf, report = demo.train(mark, seed=seed)
    chosen = demo.images(mark, seed=seed + 1)[:: max(1, 1000 // images)]
    marked = {file for file, _, group in chosen if group == "marked"}
    rows = []
    for method in METHODS:
        start = time.perf_counter()
        result = audit.run(clf, chosen, method=method)
        seconds = time.perf_counter() - start
        caught, false = found(result, marked)
        rows.append(
            {
                "mark": str(mark),
                "method": method,
                "caught": round(caught, 3),
                "false_flags": false,
                "seconds_per_image": round(seconds / len(chosen), 4),
                "leans": report["accuracy_all_marked"],
            }
        )
    return rows


def timed(clf: models.Classifier, images: list, repeats: int = 3) -> dict[str, Any]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = audit.run(clf, images)
        times.append(time.perf_counter() - start)
    return {"images": len(images), "method": result.method, "median_s": round(float(np.median(times)), 3)}


def mnist_images(count: int) -> list[tuple[str, Any, str]]:
    pixels, labels = mnist.digits()
    order = np.resize(mnist.split()[1], count)
    return [(f"{labels[i]}_{n:04d}.png", Image.fromarray(pixels[i]), "") for n, i in enumerate(order)]


def memory(count: int) -> dict[str, Any]:
    clf = models.load("mnist_cnn")
    images = mnist_images(count)
    audit.run(clf, images[:10])  # warm: imports and engines are not the audit's
    tracemalloc.start()
    result = audit.run(clf, images)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "images": len(result.items),
        "peak_mib": round(peak / 2**20, 1),
        "per_image_kib": round(peak / 1024 / count, 1),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    _ = explainers  # the registry
    rows = [row for mark, seed in MARKS[: args.marks] for row in methods_row(mark, seed, args.method_images)]
    digits = timed(models.load("mnist_cnn"), mnist_images(100))
    photos = [(name, sample_image(name), "") for name in PHOTOS]
    gallery = timed(models.load("efficientnet_lite0"), photos)
    return {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "methods": rows,
        "mnist_100": digits,
        "gallery": gallery,
        "memory": memory(args.memory_images),
    }


def table(data: dict[str, Any]) -> str:
    lines = ["| method | marked images found (mean) | false flags | seconds per image |", "|---|---|---|---|"]
    for method in METHODS:
        rows = [r for r in data["methods"] if r["method"] == method]
        lines.append(
            f"| {method} | {np.mean([r['caught'] for r in rows]):.0%} | {sum(r['false_flags'] for r in rows)} | "
            f"{np.median([r['seconds_per_image'] for r in rows]):.4f} |"
        )
    d, g, m = data["mnist_100"], data["gallery"], data["memory"]
    lines += [
        "",
        f"Audit of {d['images']} MNIST digits ({d['method']}): {d['median_s']} s median of 3.",
        f"Audit of the {g['images']} gallery photos on efficientnet_lite0 ({g['method']}): "
        f"{g['median_s']} s median of 3.",
        f"Memory for {m['images']} images: peak {m['peak_mib']} MiB traced ({m['per_image_kib']} KiB per image).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--marks", type=int, default=3, help="trained demos for the method comparison (at most 5)")
    parser.add_argument("--method-images", type=int, default=500, help="held-out digits audited per demo and method")
    parser.add_argument("--memory-images", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    data = measure(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "audit.json").write_text(json.dumps(data, indent=2) + "\n")
    (args.out / "audit.md").write_text(table(data))
    print(table(data))
    return data


if __name__ == "__main__":
    main()
