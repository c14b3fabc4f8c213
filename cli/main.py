"""`whylabel`: the commands, and the dashboard.

    whylabel models
    whylabel dashboard [--port 8501]
    whylabel explain PATH... --model NAME --methods saliency,occlusion,lime,shap --seed 0 --target auto --out DIR
    whylabel explain PATH... --model-file FILE [--labels FILE] [--architecture NAME] [--input-size N]
                             [--mean R,G,B] [--std R,G,B] [--crop F] [--layout NCHW|NHWC] --out DIR
    whylabel audit PATH... (--model NAME | --model-file FILE ...) [--method M] [--boxes FILE] --out DIR [--ray]

PATH is images or folders (searched recursively for image files). The exit code is 1 when any image failed,
2 for a bad command line (one line on stderr saying why). `--ray` runs each image as a Ray task, on the
cluster RAY_ADDRESS names or on a local Ray started for the run. `--model-file` takes your own model as the
page's "Your own model" does (`models.load_user_model`: the same checks and messages; a TorchScript file runs
in its isolated worker).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from whylabel import models
from whylabel.cli import audit, explain


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="whylabel", description="Explanation evidence for image classifiers.")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("models", help="list the models")
    page = commands.add_parser("dashboard", help="serve the dashboard (the page `make run` starts)")
    page.add_argument("--port", type=int, default=8501)
    page.add_argument("--address", default=None, help="address to listen on (default: Streamlit's)")
    explain.add_parser(commands)
    audit.add_parser(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "models":
        print("\n".join(models.available()))
        return 0
    if args.command == "dashboard":
        from whylabel.ui import launch  # Streamlit is imported only for this command

        return launch.dashboard(args.port, args.address)
    command = audit.run if args.command == "audit" else explain.run
    try:
        return command(args, say)
    except ValueError as err:
        say(f"whylabel: error: {err}")
        return 2


def say(text: str) -> None:
    print(text, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
