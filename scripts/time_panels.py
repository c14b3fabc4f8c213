"""Time each default panel on gallery photos (a quick look; `make bench` will be the real benchmark).

Usage: python -m scripts.time_panels [--model efficientnet_lite0] [--repeats 3]
Prints the median seconds per method over the photos and repeats, warm (after one untimed run).
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch

import explainers
import models

PHOTOS = ("chelsea (cat)", "coffee", "astronaut")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="efficientnet_lite0", choices=models.available())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    clf = models.load(args.model)
    for method in explainers.available():  # warm-up: numba JIT, allocator, first-call costs
        explainers.explain(clf, models.sample_image(PHOTOS[0]), method)
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, {args.model}")
    total = 0.0
    for method in explainers.available():
        times = [
            explainers.explain(clf, models.sample_image(photo), method).seconds
            for photo in PHOTOS
            for _ in range(args.repeats)
        ]
        total += statistics.median(times)
        print(f"{method:>10}: median {statistics.median(times):6.2f} s over {len(times)} runs")
    print(f"{'all four':>10}: {total:6.2f} s")


if __name__ == "__main__":
    main()
