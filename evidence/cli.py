"""`whylabel`: the dashboard's evidence for many images from the command line.

    whylabel models
    whylabel explain PATH... --model NAME --methods saliency,occlusion,lime,shap --seed 0 --target auto --out DIR

PATH is images or folders (searched recursively for image files). For each image: DIR/<stem>/figure.png,
record.json, heatmaps.npz and report.html; DIR/index.html links them with a summary table. Bad files are
reported and skipped; the exit code is 1 when any image failed, 2 for a bad command line. `--ray` runs each
image as a Ray task, on the cluster RAY_ADDRESS names or on a local Ray started for the run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

import explainers
import models
from evidence import index
from evidence.bundle import files, write
from evidence.record import collect
from explainers.explain import check_seed, resolve_contrast

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="whylabel", description="Explanation evidence for image classifiers.")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("models", help="list the models")
    run = commands.add_parser("explain", help="write figure, record, maps and report for each image")
    run.add_argument("paths", nargs="+", type=Path, help="images, or folders searched for images")
    run.add_argument("--model", default="efficientnet_lite0", help="a name from `whylabel models`")
    run.add_argument("--methods", default="saliency,occlusion,lime,shap", help="comma-separated method names")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--target", default="auto", help="auto (the top-1 class), a class index or a label")
    run.add_argument("--contrast", default=None, help="explain the target rather than this class (index or label)")
    run.add_argument("--out", type=Path, required=True, help="output folder")
    run.add_argument("--no-scores", action="store_true", help="skip the deletion and insertion curves")
    run.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch threads per image (default: this machine's %(default)s); gradient maps depend on it bit for bit",
    )
    run.add_argument("--ray", action="store_true", help="one Ray task per image (RAY_ADDRESS, or a local Ray)")
    return top


def class_arg(value: str | None) -> int | str | None:
    """auto/None -> None (top-1), digits -> an index, anything else -> a label."""
    if value is None or value == "auto":
        return None
    return int(value) if value.isdigit() else value


def images(paths: Sequence[Path]) -> Iterator[Path]:
    """Files as given (whatever their suffix: a bad one is reported later); folders searched for image files."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield path


def options(args: argparse.Namespace) -> dict[str, Any]:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    return {
        "model": args.model,
        "methods": methods,
        "seed": args.seed,
        "target": class_arg(args.target),
        "contrast": class_arg(args.contrast),
        "score": not args.no_scores,
        "threads": args.threads,
    }


def check(opts: dict[str, Any]) -> None:
    """Refuse a bad model, method or seed before any image is read (ValueError naming the valid choices)."""
    if opts["model"] not in models.available():
        raise ValueError(f"unknown model {opts['model']!r}; available: {', '.join(models.available())}")
    if not opts["methods"]:
        raise ValueError(f"no methods given; available: {', '.join(explainers.available())}")
    for method in opts["methods"]:
        explainers.get(method)
    check_seed(opts["seed"])
    clf = loaded(opts["model"])  # a bad target or contrast is refused once, not once per image
    target = None if opts["target"] is None else clf.resolve_target(opts["target"], None)
    if opts["contrast"] is not None:
        resolve_contrast(clf, None, opts["contrast"], target if target is not None else -1)
    if opts["threads"] < 1:
        raise ValueError(f"--threads must be at least 1; got {opts['threads']}")


def explain_one(data: bytes, name: str, opts: dict[str, Any]) -> dict[str, bytes]:
    """One image's files from its bytes: what a local run and a Ray task both call."""
    clf = loaded(opts["model"])
    evidence = collect(
        clf,
        models.open_image(data),
        opts["methods"],
        name=name,
        image_bytes=data,
        target=opts["target"],
        contrast=opts["contrast"],
        seed=opts["seed"],
        score=opts["score"],
    )
    return files(evidence)


def attempt(data: bytes, name: str, opts: dict[str, Any]) -> dict[str, bytes] | str:
    """The files, or a one-line reason: a bad image, a bad target for this model, a model that fails."""
    torch.set_num_threads(opts["threads"])  # the same in a Ray worker as here, so the maps match bit for bit
    try:
        return explain_one(data, name, opts)
    except ValueError as err:  # models.ImageError is one
        return str(err)
    except Exception as err:  # one bad image must not stop a batch of thousands
        return f"{type(err).__name__}: {err}"


@functools.cache
def loaded(name: str) -> models.Classifier:
    """One classifier per process (a Ray worker keeps it between tasks)."""
    return models.load(name)


Outcome = tuple[Path, dict[str, bytes] | str]


def read(path: Path) -> bytes | str:
    try:
        return path.read_bytes()
    except OSError as err:
        return f"cannot read the file: {err.strerror or err}"


def run_local(paths: list[Path], opts: dict[str, Any]) -> Iterator[Outcome]:
    for path in paths:
        data = read(path)
        yield path, data if isinstance(data, str) else attempt(data, path.name, opts)


def run_ray(paths: list[Path], opts: dict[str, Any]) -> Iterator[Outcome]:
    """One Ray task per image, results as they finish; the bytes travel, so workers need no shared disk."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, log_to_driver=False)
    try:
        cpus = min(opts["threads"], int(ray.cluster_resources().get("CPU", 1)))
        task = ray.remote(num_cpus=cpus)(attempt)
        pending: dict[Any, Path] = {}
        for path in paths:
            data = read(path)
            if isinstance(data, str):
                yield path, data
            else:
                pending[task.remote(data, path.name, opts)] = path
        while pending:
            [ready], _ = ray.wait(list(pending), num_returns=1)
            yield pending.pop(ready), ray.get(ready)
    finally:
        if started:
            ray.shutdown()


def folder_names(paths: list[Path]) -> dict[Path, str]:
    """An output folder per image: its stem, with -2, -3, ... when two images share one."""
    names: dict[Path, str] = {}
    used: set[str] = set()
    for path in paths:
        name, n = path.stem or "image", 1
        while (name if n == 1 else f"{name}-{n}") in used:
            n += 1
        names[path] = name if n == 1 else f"{name}-{n}"
        used.add(names[path])
    return names


def explain_command(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    opts = options(args)
    check(opts)
    paths = list(images(args.paths))
    if not paths:
        raise ValueError("no images found in the given paths")
    names = folder_names(paths)
    runner = run_ray if args.ray else run_local
    rows, failed = [], 0
    for path, outcome in tqdm(runner(paths, opts), total=len(paths), desc="explaining", unit="image", file=sys.stderr):
        if isinstance(outcome, str):
            failed += 1
            tqdm.write(f"skipped {path}: {outcome}", file=sys.stderr)
            rows.append(index.Row(str(path), None, None, outcome))
            continue
        write(outcome, args.out / names[path])
        rows.append(index.Row(str(path), names[path], json.loads(outcome["record.json"]), None))
    (args.out / "index.html").write_text(index.html_index(rows, opts), encoding="utf-8")
    say(f"{len(paths) - failed} of {len(paths)} images explained; open {args.out / 'index.html'}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    if args.command == "models":
        print("\n".join(models.available()))
        return 0
    try:
        return explain_command(args, say)
    except ValueError as err:
        say(f"whylabel: error: {err}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
