"""The commands (`whylabel explain | audit | dashboard | models`) and the batch runner (local or Ray).

May import: whylabel.evidence, whylabel.render, whylabel.audit, whylabel.trust, whylabel.whatif,
whylabel.explainers, whylabel.models, whylabel.store, and whylabel.ui only to start the page (`whylabel
dashboard`). The top floor, beside whylabel.ui; nothing imports it but `whylabel.__main__` and the `whylabel`
entry point.
"""

from whylabel.cli.main import main

__all__ = ["main"]
