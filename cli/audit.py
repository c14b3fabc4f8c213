"""`whylabel audit PATH... --out DIR`: is the model right for the wrong reasons, over a set of images?

Each image gets its map for the predicted class (`audit.map_image`, one batch-runner task, on Ray with
`--ray`); `audit.analyse` clusters them per class and flags clusters; DIR/index.html (self-contained) and
DIR/audit.json are written. The images, their groups and names come from `audit.intake` (the page's rules):
a folder's (or a zip's) first-level subfolders are its groups; with several PATHs, the images at the top of
each folder PATH are a group of their own; names are paths within the set, numbered where they repeat.
Unreadable images and refused inputs (a damaged zip) are listed, skipped, and make the exit code 1; files in a
folder that are no image by their name (a readme) are listed and skipped without changing it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from whylabel import audit, explainers, models
from whylabel.audit import intake
from whylabel.audit.localise import box_for, read_boxes
from whylabel.cli import runner
from whylabel.cli.options import check_model_name, check_threads, classifier, model_arguments, model_choice, read_file
from whylabel.evidence.audit_report import index_html
from whylabel.explainers.explain import check_seed, needs_gradients


def add_parser(commands: Any) -> None:
    command = commands.add_parser("audit", help="cluster a set's maps per class and flag odd habits (SpRAy)")
    command.add_argument("paths", nargs="+", type=Path, help="images, or folders or zips (their subfolders are groups)")
    model_arguments(command)
    command.add_argument(
        "--method", default=None, help="the map method (default: saliency, or occlusion without gradients)"
    )
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--boxes", type=Path, help="CSV file,left,top,right,bottom or JSON: localisation scores")
    command.add_argument("--out", type=Path, required=True, help="output folder for index.html and audit.json")
    command.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads per image")
    command.add_argument("--ray", action="store_true", help="one Ray task per image (RAY_ADDRESS, or a local Ray)")


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The model, method, seed, threads and boxes, each refused in one line before any image is read."""
    opts = model_choice(args)
    check_model_name(opts)
    clf = classifier(opts)
    method = args.method or audit.default_method(clf)
    if explainers.get(method).runs_module and not clf.gradients:  # get() refuses an unknown name first
        raise ValueError(needs_gradients(method, clf))
    check_threads(args.threads)
    boxes = {} if args.boxes is None else read_boxes(read_file(args.boxes, "boxes"))
    return {**opts, "method": method, "seed": check_seed(args.seed), "threads": args.threads, "boxes": boxes}


def audit_one(data: bytes, name: str, opts: dict[str, Any]) -> audit.Item:
    """One image's prediction and map, from its bytes: what a local run and a Ray task both call."""
    clf = classifier(opts)
    box = box_for(opts["boxes"], name)
    return audit.map_image(clf, models.open_image(data), name, "", opts["method"], opts["seed"], box)


def run(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    opts = options(args)
    found = intake.from_paths(args.paths)
    entries = found.entries
    if not entries:
        raise ValueError("no images found in the given paths" + left_out(found))
    failed = found.refused + found.skipped  # listed in audit.json; only the refused and unreadable set exit 1
    for name, why in failed:
        say(f"skipped {name}: {why}")
    items = []
    names = {entry: entry.file for entry in entries}
    outcomes = runner.run(entries, audit_one, opts, use_ray=args.ray, names=names)  # entries read as paths do
    for entry, outcome in tqdm(outcomes, total=len(entries), desc="mapping", unit="image", file=sys.stderr):
        if isinstance(outcome, str):
            failed.append((entry.file, outcome))
            tqdm.write(f"skipped {entry.origin}: {outcome}", file=sys.stderr)
            continue
        outcome.group = entry.group
        items.append(outcome)
    order = {entry.file: n for n, entry in enumerate(entries)}
    items.sort(key=lambda item: order[item.file])  # Ray's come as they finish
    result = audit.analyse(items, opts["model"], opts["method"], failed)
    write(result, args.out)
    say(
        f"{len(items)} of {len(entries)} images audited, {len(result.flagged())} clusters flagged; "
        f"open {args.out / 'index.html'}"
    )
    return 1 if len(failed) > len(found.skipped) else 0


def left_out(found: intake.Intake) -> str:
    """What was found and left out, when no image was: "" when nothing was."""
    lines = [f"{name}: {why}" for name, why in found.refused + found.skipped]
    return "" if not lines else f" ({len(lines)} left out; the first: {lines[0]})"


def write(result: audit.Audit, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(audit.json_text(result), encoding="utf-8")
    (out / "index.html").write_text(index_html(result), encoding="utf-8")
