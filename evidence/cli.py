"""`whylabel`: the dashboard's evidence for many images from the command line, and the dashboard itself.

    whylabel models
    whylabel dashboard [--port 8501]
    whylabel explain PATH... --model NAME --methods saliency,occlusion,lime,shap --seed 0 --target auto --out DIR
    whylabel explain PATH... --model-file FILE [--labels FILE] [--architecture NAME] [--input-size N]
                             [--mean R,G,B] [--std R,G,B] [--crop F] [--layout NCHW|NHWC] --out DIR
    whylabel audit PATH... (--model NAME | --model-file FILE ...) [--method M] [--boxes FILE] --out DIR [--ray]

PATH is images or folders (searched recursively for image files). For each image: DIR/<stem>/figure.png,
record.json, heatmaps.npz and report.html; DIR/index.html links them with a summary table. Bad files are
reported and skipped; the exit code is 1 when any image failed, 2 for a bad command line. `--ray` runs each
image as a Ray task, on the cluster RAY_ADDRESS names or on a local Ray started for the run. Maps and scores
are kept in the result store the page shares (`evidence.results`): an image explained before, by the page or
the command, is read back, not computed again; `--no-cache` computes everything anew. `--model-file` takes
your own model as the page's "Your own model" does (`models.load_user_model`: the same checks and messages; a
TorchScript file runs in its isolated worker). `whylabel audit` is `evidence.audit_command`.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from whylabel import explainers, models
from whylabel.evidence import audit_command, index, runner
from whylabel.evidence.bundle import files, write
from whylabel.evidence.record import collect
from whylabel.explainers.explain import check_seed, resolve_contrast
from whylabel.models.user import digest


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="whylabel", description="Explanation evidence for image classifiers.")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("models", help="list the models")
    page = commands.add_parser("dashboard", help="serve the dashboard (the page `make run` starts)")
    page.add_argument("--port", type=int, default=8501)
    page.add_argument("--address", default=None, help="address to listen on (default: Streamlit's)")
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
    audit_command.add_parser(commands)
    return top


def model_arguments(command: argparse.ArgumentParser) -> None:
    """--model, or --model-file with the choices of the page's "Your own model"."""
    command.add_argument("--model", default=None, help="a name from `whylabel models` (default efficientnet_lite0)")
    own = command.add_argument_group("your own model", 'the choices of the page\'s "Your own model", with its checks')
    own.add_argument("--model-file", type=Path, help="TorchScript or ONNX, or a state_dict with --architecture")
    own.add_argument("--labels", type=Path, help="labels file: one per line, or JSON (a list or index -> label)")
    own.add_argument("--architecture", choices=models.ARCHITECTURES, help="the network a state_dict's weights fit")
    own.add_argument("--input-size", type=int, help="pixels a side (TorchScript default 224)")
    own.add_argument("--mean", type=triple, help="R,G,B of the normalisation (TorchScript default ImageNet's)")
    own.add_argument("--std", type=triple, help="R,G,B of the normalisation (TorchScript default ImageNet's)")
    own.add_argument("--crop", type=float, help="centre crop, a share of the shorter side (TorchScript default 0.875)")
    own.add_argument("--layout", choices=("NCHW", "NHWC"), help="an ONNX graph's input layout (default: its shape's)")


def triple(value: str) -> tuple[float, float, float]:
    """ "0.5,0.5,0.5" -> (0.5, 0.5, 0.5); argparse turns the ValueError into a one-line usage error."""
    parts = [float(part) for part in value.split(",")]
    if len(parts) != 3:
        raise ValueError(f"three numbers R,G,B expected; got {value!r}")
    return parts[0], parts[1], parts[2]


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


DEFAULT_MODEL = "efficientnet_lite0"
OWN_OPTIONS = ("labels", "architecture", "input_size", "mean", "std", "crop", "layout")


def model_choice(args: argparse.Namespace) -> dict[str, Any]:
    """--model or --model-file as every task receives it: {"model": its name, "own": the user's files or None}."""
    own = own_model_files(args)
    return {"model": args.model or DEFAULT_MODEL if own is None else own["name"], "own": own}


def check_model_name(opts: dict[str, Any]) -> None:
    if opts["own"] is None and opts["model"] not in models.available():
        raise ValueError(f"unknown model {opts['model']!r}; available: {', '.join(models.available())}")


def check_threads(threads: int) -> None:
    if threads < 1:
        raise ValueError(f"--threads must be at least 1; got {threads}")


def own_model_files(args: argparse.Namespace) -> dict[str, Any] | None:
    """The user's model as `models.load_user_model` takes it (files read here, so Ray tasks get the bytes)."""
    given = [name for name in OWN_OPTIONS if getattr(args, name) is not None]
    if args.model_file is None:
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} is for --model-file; the packaged models have their own")
        return None
    if args.model is not None:
        raise ValueError("give --model (a packaged model) or --model-file (your own), not both")
    preprocessing = {name: getattr(args, name) for name in ("input_size", "mean", "std", "crop", "layout")}
    return {
        "model": read_file(args.model_file, "model"),
        "labels": None if args.labels is None else read_file(args.labels, "labels"),
        "name": args.model_file.name,
        "architecture": args.architecture,
        **{name: value for name, value in preprocessing.items() if value is not None},
    }


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ValueError(f"cannot read the {what} file {str(path)!r}: {err.strerror or err}") from None


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


def classifier(opts: dict[str, Any]) -> models.Classifier:
    """The packaged model, or the user's (checked as the page checks it: ModelError, a ValueError, says why)."""
    own = opts.get("own")
    return loaded(opts["model"]) if own is None else own_model(**own)


@functools.cache
def loaded(name: str) -> models.Classifier:
    """One classifier per process (a Ray worker keeps it between tasks)."""
    return models.load(name)


OWN: dict[str, models.Classifier] = {}
"""The user's models this process has loaded, by the digest of everything that went in (one, in practice)."""


def own_model(
    model: bytes, labels: bytes | None, name: str, architecture: str | None, **preprocessing: Any
) -> models.Classifier:
    key = digest(model, labels, architecture, preprocessing)
    if key not in OWN:
        OWN[key] = models.load_user_model(model, labels, name, architecture, **preprocessing)
    return OWN[key]


def explain_command(args: argparse.Namespace, say: Callable[[str], None]) -> int:
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    if args.command == "models":
        print("\n".join(models.available()))
        return 0
    if args.command == "dashboard":
        from whylabel.ui import launch  # Streamlit only for this command

        return launch.dashboard(args.port, args.address)
    try:
        return audit_command.run(args, say) if args.command == "audit" else explain_command(args, say)
    except ValueError as err:
        say(f"whylabel: error: {err}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
