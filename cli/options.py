"""The model options every command shares: --model, or --model-file with the page's "Your own model" choices.

A task receives the model as `model_choice` makes it ({"model": name, "own": the user's files or None}), so a
Ray task gets the file's bytes, not a path; `classifier` loads it once per process with the page's checks.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

from whylabel import models
from whylabel.models.user import digest

DEFAULT_MODEL = "efficientnet_lite0"
OWN_OPTIONS = ("labels", "architecture", "input_size", "mean", "std", "crop", "layout")


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
