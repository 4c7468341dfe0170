"""``python -m skcreate``: the command line of :mod:`skcreate.apps.cli`."""

import sys

from .apps.cli import main

if __name__ == "__main__":
    sys.exit(main())
