"""Options shared by the commands: column names, model names and ``--set name=value``."""

import sys

from sklearn.base import clone

from ..benchmarking import parse_value
from ..comparison import default_models

__all__ = ["CommandError", "add_column_options", "add_model_options", "make_models", "log"]


class CommandError(ValueError):
    """Bad command-line input; the message says what to change."""


def log(line):
    """Progress and notes go to stderr, results to stdout."""
    print(line, file=sys.stderr, flush=True)


def add_column_options(parser):
    parser.add_argument("--user-col", default="user_id", help="user id column (default: user_id)")
    parser.add_argument("--item-col", default="item_id", help="item id column (default: item_id)")
    parser.add_argument("--time-col", default="timestamp",
                        help="timestamp column, numeric or ISO-8601 (default: timestamp)")


def add_model_options(parser, several):
    names = ", ".join(default_models())
    if several:
        parser.add_argument("--model", required=True, metavar="NAME[,NAME...]",
                            help=f"comma-separated models, of: {names}")
    else:
        parser.add_argument("--model", required=True, metavar="NAME", help=f"one of: {names}")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="set a model parameter, e.g. --set epochs=10 --set alignment=none; "
                        "MODEL.NAME=VALUE sets it on one model only; repeatable")
    parser.add_argument("--seed", type=int, default=0, help="random_state of the models")
    parser.add_argument("--quiet", action="store_true", help="no training progress bars")


def _parse_setting(setting):
    key, sep, value = setting.partition("=")
    if not sep or not key:
        raise CommandError(f"--set expects NAME=VALUE, got {setting!r}.")
    model, dot, name = key.rpartition(".")
    return (model if dot else None), name, parse_value(value)


def make_models(spec, settings, seed, verbose):
    """Fresh estimators for the comma-separated names in ``spec``, with ``settings`` applied."""
    known = default_models(random_state=seed)
    by_lower = {name.lower(): name for name in known}
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n.lower() not in by_lower]
    if unknown or not names:
        raise CommandError(f"unknown model(s) {unknown or [spec]}; choose from {list(known)}.")
    models = {by_lower[n.lower()]: clone(known[by_lower[n.lower()]]) for n in names}
    for est in models.values():
        if "verbose" in est.get_params():
            est.set_params(verbose=verbose)
    for setting in settings:
        target, param, value = _parse_setting(setting)
        if target is not None and target not in models:
            raise CommandError(f"--set {setting}: {target!r} is not among the models "
                               f"{list(models)}.")
        for model, est in models.items():
            if target not in (None, model):
                continue
            valid = est.get_params()
            if param not in valid:
                raise CommandError(f"--set {setting}: {model} has no parameter {param!r}; its "
                                   f"parameters are {sorted(valid)}.")
            est.set_params(**{param: value})
    return models
