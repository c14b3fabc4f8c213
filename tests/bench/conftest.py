"""The benchmark is not part of the package (the wheel leaves it out): it runs from a checkout, as
`python -m bench.run` does from the repository root, so its tests import it from there."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.append(ROOT)  # appended: the installed whylabel still comes first
