"""``python -m skcreate``: the command line of :mod:`skcreate.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
