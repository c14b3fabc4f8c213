"""`python -m whylabel ...`: the same as the `whylabel` command."""

import sys

from whylabel.cli import main

sys.exit(main())
