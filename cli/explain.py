"""`whylabel explain PATH... --out DIR`: the page's evidence for many images.

For each image: DIR/<name>/figure.png, record.json, heatmaps.npz and report.html; DIR/index.html links them
with a summary table. Bad files are reported and skipped; the exit code is 1 when any image failed. Maps and
scores are kept in the result store the page shares (`store.results`): an image explained before, by the page
or the command, is read back, not computed again; `--no-cache` computes everything anew.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from whylabel import explainers, models
from whylabel.cli import runner
from whylabel.cli.options import check_model_name, check_threads, classifier, model_arguments, model_choice
from whylabel.evidence import index
from whylabel.evidence.bundle import files, write
from whylabel.evidence.record import collect
from whylabel.explainers.explain import check_seed, resolve_contrast


def add_parser(commands: Any) -> None:
    run = commands.add_parser("explain", help="write figure, record, maps and report for each image")
    run.add_argument("paths", nargs="+", type=Path, help="images, or folders searched for images")
    model_arguments(run)
    run.add_argument("--methods", default="saliency,occlusion,lime,shap", help="comma-separated method names")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--target", default="auto", help="auto (the top-1 class), a class index or a label")
    run.add_argument("--contrast", default=None, help="explain the target rather than this class (index or label)")
    run.add_argument("--out", type=Path, required=True, help="output folder")
    run.add_argument("--no-scores", action="store_true", help="skip the deletion and insertion curves")
    run.add_argument(
        "--whatif",
        action="store_true",
        help="also search the fewest superpixels whose hiding changes the top-1 class, and the fewest that keep it",
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="compute every map and score anew, and keep none (the result store the page shares is not used)",
    )
    run.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch threads per image (default: this machine's %(default)s); gradient maps depend on it bit for bit",
    )
    run.add_argument("--ray", action="store_true", help="one Ray task per image (RAY_ADDRESS, or a local Ray)")


def class_arg(value: str | None) -> int | str | None:
    """auto/None -> None (top-1), digits -> an index, anything else -> a label."""
    if value is None or value == "auto":
        return None
    return int(value) if value.isdigit() else value


def options(args: argparse.Namespace) -> dict[str, Any]:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    return {
        **model_choice(args),
        "methods": methods,
        "seed": args.seed,
        "target": class_arg(args.target),
        "contrast": class_arg(args.contrast),
        "score": not args.no_scores,
        "keep": not args.no_cache,
        "whatif": args.whatif,
        "threads": args.threads,
    }


def check(opts: dict[str, Any]) -> None:
    """Refuse a bad model, method or seed before any image is read (ValueError naming the valid choices)."""
    check_model_name(opts)
    if not opts["methods"]:
        raise ValueError(f"no methods given; available: {', '.join(explainers.available())}")
    for method in opts["methods"]:
        explainers.get(method)
    check_seed(opts["seed"])
    clf = classifier(opts)  # a bad model file, target or contrast is refused once, not once per image
    target = None if opts["target"] is None else clf.resolve_target(opts["target"], None)
    if opts["contrast"] is not None:
        resolve_contrast(clf, None, opts["contrast"], target if target is not None else -1)
    check_threads(opts["threads"])


def explain_one(data: bytes, name: str, opts: dict[str, Any]) -> dict[str, bytes]:
    """One image's files from its bytes: what a local run and a Ray task both call."""
    clf = classifier(opts)
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
        keep=opts.get("keep", True),
        whatif=opts.get("whatif", False),
    )
    return files(evidence)


def run(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    opts = options(args)
    check(opts)
    paths = list(runner.images(args.paths))
    if not paths:
        raise ValueError("no images found in the given paths")
    names = runner.folder_names(paths)
    outcomes = runner.run(paths, explain_one, opts, use_ray=args.ray)
    rows, failed = [], 0
    for path, outcome in tqdm(outcomes, total=len(paths), desc="explaining", unit="image", file=sys.stderr):
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
