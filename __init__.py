"""whylabel: see why an image classifier gave its label, and how far to trust the explanation.

The repository's top folders are this package's rooms (pyproject.toml maps the package onto the repository
root), from the ground floor up: `whylabel.store` (what is kept on disk and in memory), `whylabel.models`
(classifiers, images, users' models), `whylabel.explainers` (one module per method in `methods/`),
`whylabel.trust` (how far a map can be trusted), `whylabel.whatif` (edits of superpixels), `whylabel.audit`
(many images), `whylabel.render` (the one drawing path), `whylabel.evidence` (record, figure, report, bundle),
and on the top floor `whylabel.cli` (the commands) beside `whylabel.ui` with `whylabel.app` (the pages). Each
room's docstring says what it may import (docs/layout.md). Import what you use:
`from whylabel import models, explainers`. Importing `whylabel` alone loads nothing heavy.
"""

from importlib import metadata

try:
    __version__ = metadata.version("whylabel")
except metadata.PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0+unknown"
