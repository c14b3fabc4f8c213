"""The commands (`whylabel explain | audit | dashboard | models`) and the batch runner (local or Ray).

A top room, beside `whylabel.ui`: it may import every room below it (models, explainers, store, trust,
whatif, audit, render, evidence) and reaches the page only to start it (`whylabel dashboard`). Nothing
imports it but `whylabel.__main__` and the `whylabel` entry point.
"""

from whylabel.cli.main import main

__all__ = ["main"]
