"""The ``skcreate`` command line: ``compare``, and ``fit`` / ``recommend`` / ``evaluate`` on files.

Run ``skcreate --help`` (or ``python -m skcreate --help``) for the commands, and
``skcreate COMMAND --help`` for their options.
"""

import argparse
import sys

from . import compare, own_data
from ._options import CommandError

__all__ = ["main"]


def build_parser():
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="skcreate", description="Sequential recommendation: compare recommenders, or fit, "
        "recommend and evaluate on your own interaction files.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    compare.add_parser(sub)
    own_data.add_parsers(sub)
    return parser


def main(argv=None):
    """Run one command; return its exit status (0, 1 for bad input, 2 for bad arguments)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, ValueError, TypeError, OSError) as exc:
        # the library's messages name the column, value or parameter; a traceback adds nothing
        print(f"skcreate {args.command}: error: {exc}", file=sys.stderr)
        return 1
