"""whylabel: see why an image classifier gave its label, and how far to trust the explanation.

The repository's top folders are this package's rooms (pyproject.toml maps the package onto the repository
root): `whylabel.models` (classifiers, images, users' models), `whylabel.explainers` (one module per method),
`whylabel.trust` (how far a map can be trusted), `whylabel.render` (the one drawing path), `whylabel.evidence`
(records, figures, the command line and the batch runner) and `whylabel.ui` with `whylabel.app` (the page).
Import what you use: `from whylabel import models, explainers`. Importing `whylabel` alone loads nothing heavy.
"""

from importlib import metadata

try:
    __version__ = metadata.version("whylabel")
except metadata.PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0+unknown"
