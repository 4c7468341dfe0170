"""The ``skcreate`` command line: ``compare``, and ``fit`` / ``recommend`` / ``evaluate`` on files.

Run ``skcreate --help`` (or ``python -m skcreate --help``) for the commands, and
``skcreate COMMAND --help`` for their options. The estimators, and torch with them, are imported
only when a command runs, so the help answers at once.
"""

import functools
import os
import sys
import warnings

from . import compare, own_data
from ._options import CommandError, Parser, parse_value

__all__ = ["main", "parse_value"]


def build_parser():
    """The argument parser of every command."""
    parser = Parser(
        prog="skcreate", description="Sequential recommendation: compare recommenders, or fit, "
        "recommend and evaluate on your own interaction files.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    compare.add_parser(sub)
    own_data.add_parsers(sub)
    return parser


def _show_warning(command, message, category, filename, lineno, file=None, line=None):
    # one line per warning: the library's source path and line mean nothing to a user here
    print(f"skcreate {command}: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv=None):
    """Run one command; return its exit status (0, 1 for bad input or a diverged fit, 2 for bad
    arguments, 130 when interrupted by Ctrl-C)."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():  # restores showwarning when the command ends
        warnings.showwarning = functools.partial(_show_warning, args.command)
        try:
            return args.run(args)
        except BrokenPipeError:
            # the reader stopped early (`skcreate recommend ... | head`): not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except (CommandError, ValueError, TypeError, OSError, FloatingPointError) as exc:
            # the library's messages name the column, value or parameter; a traceback adds nothing
            print(f"skcreate {args.command}: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            # a fit that keeps its weights returns normally (trainer__on_interrupt="stop"): one that
            # gets here saved nothing
            nothing = f"; nothing was saved to {args.out}" if args.command == "fit" else ""
            print(f"skcreate {args.command}: interrupted{nothing}.", file=sys.stderr)
            return 130
