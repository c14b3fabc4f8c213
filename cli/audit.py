"""`whylabel audit PATH... --out DIR`: is the model right for the wrong reasons, over a set of images?

Each image gets its map for the predicted class (`audit.map_image`, one batch-runner task, on Ray with
`--ray`); `audit.analyse` clusters them per class and flags clusters; DIR/index.html (self-contained) and
DIR/audit.json are written. A folder's first-level subfolders are its groups; with several PATHs, each
PATH without subfolders is a group of its own. Unreadable files are listed, skipped, and make the exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from whylabel import audit, explainers, models
from whylabel.audit.localise import box_for, read_boxes
from whylabel.cli import runner
from whylabel.cli.options import check_model_name, check_threads, classifier, model_arguments, model_choice, read_file
from whylabel.evidence.audit_report import index_html
from whylabel.explainers.explain import check_seed, needs_gradients


def add_parser(commands: Any) -> None:
    command = commands.add_parser("audit", help="cluster a set's maps per class and flag odd habits (SpRAy)")
    command.add_argument("paths", nargs="+", type=Path, help="images, or folders (their subfolders are groups)")
    model_arguments(command)
    command.add_argument(
        "--method", default=None, help="the map method (default: saliency, or occlusion without gradients)"
    )
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--boxes", type=Path, help="CSV file,left,top,right,bottom or JSON: localisation scores")
    command.add_argument("--out", type=Path, required=True, help="output folder for index.html and audit.json")
    command.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads per image")
    command.add_argument("--ray", action="store_true", help="one Ray task per image (RAY_ADDRESS, or a local Ray)")


def named(paths: Sequence[Path]) -> tuple[list[Path], dict[Path, str], dict[Path, str]]:
    """The image files under PATHs, each once, with a unique name within the set and its group."""
    files, names, groups, used = [], {}, {}, set()
    for root in paths:
        for path in runner.images([root]):
            if path in names:  # reached twice (a folder and a file in it): audited once
                continue
            inside = path.relative_to(root) if root.is_dir() else Path(path.name)
            group = group_of(root, inside, several=len(paths) > 1)
            name = inside.as_posix() if len(inside.parts) > 1 or not group else f"{group}/{inside.as_posix()}"
            names[path], groups[path] = unique(name, used), group
            used.add(names[path])
            files.append(path)
    return files, names, groups


def group_of(root: Path, inside: Path, several: bool) -> str:
    """The first folder under the PATH; else, when several PATHs were given, the folder PATH itself."""
    if len(inside.parts) > 1:
        return inside.parts[0]
    return root.name if several and root.is_dir() else ""


def unique(name: str, used: set[str]) -> str:
    """The name, or "name (2)", "name (3)", ... when it is taken."""
    n = 1
    while (name if n == 1 else f"{name} ({n})") in used:
        n += 1
    return name if n == 1 else f"{name} ({n})"


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
    files, names, groups = named(args.paths)
    if not files:
        raise ValueError("no images found in the given paths")
    items, failed = [], []
    outcomes = runner.run(files, audit_one, opts, use_ray=args.ray, names=names)
    for path, outcome in tqdm(outcomes, total=len(files), desc="mapping", unit="image", file=sys.stderr):
        if isinstance(outcome, str):
            failed.append((names[path], outcome))
            tqdm.write(f"skipped {path}: {outcome}", file=sys.stderr)
            continue
        outcome.group = groups[path]
        items.append(outcome)
    order = {names[path]: n for n, path in enumerate(files)}
    items.sort(key=lambda item: order[item.file])  # Ray's come as they finish
    result = audit.analyse(items, opts["model"], opts["method"], failed)
    write(result, args.out)
    say(
        f"{len(items)} of {len(files)} images audited, {len(result.flagged())} clusters flagged; "
        f"open {args.out / 'index.html'}"
    )
    return 1 if failed else 0


def write(result: audit.Audit, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(audit.json_text(result), encoding="utf-8")
    (out / "index.html").write_text(index_html(result), encoding="utf-8")
