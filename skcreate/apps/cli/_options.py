"""Options shared by the commands: column names, model names, output files and ``--set``.

The estimators (and with them torch) are imported only when a command runs or a model's help is
shown, so that ``skcreate --help`` answers at once.
"""

import argparse
import ast
import sys
from pathlib import Path

__all__ = ["CommandError", "MODEL_NAMES", "Parser", "add_column_options", "add_model_options",
           "check_writable", "make_models", "model_parameters", "log", "parse_value",
           "positive_int"]

#: Names of :func:`skcreate.apps.comparison.default_models`, for the help (a test keeps them equal).
MODEL_NAMES = ("Random", "PopRnd", "Popular", "PureSVD", "ALS", "BPR", "LightGCN", "UltraGCN",
               "SASRec", "CREATE")

# the parameters ``fit --help`` shows, in this order, for the models that have them
_MAIN_PARAMETERS = ("warmup_epochs", "epochs", "iterations", "n_factors", "learning_rate",
                    "regularization", "alpha")


class CommandError(ValueError):
    """Bad command-line input; the message says what to change."""


def positive_int(text):
    """An argparse type: an integer >= 1 (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


class Parser(argparse.ArgumentParser):
    """An argument parser whose epilog is built only when its help is shown.

    Parameters
    ----------
    epilog_factory : callable, optional
        Returns the epilog; called by :meth:`format_help`, so what it imports is imported only
        for ``--help``.
    **kwargs
        Passed to :class:`argparse.ArgumentParser`.
    """

    def __init__(self, *args, epilog_factory=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.epilog_factory = epilog_factory

    def format_help(self):
        if self.epilog_factory is not None:
            self.epilog = self.epilog_factory()
        return super().format_help()


def log(line):
    """Progress and notes go to stderr, results to stdout."""
    print(line, file=sys.stderr, flush=True)


def add_column_options(parser, remembered=False):
    """``--user-col``, ``--item-col``, ``--time-col``; ``remembered``: default to the model's."""
    if remembered:
        # None means: the columns the model was fitted on, read from the model file
        for flag, what in (("--user-col", "user id column of HISTORIES and of the output"),
                           ("--item-col", "item id column of HISTORIES and of the output"),
                           ("--time-col", "timestamp column of HISTORIES")):
            parser.add_argument(flag, default=None,
                                help=f"{what} (default: the model's, as named at fit)")
        return
    parser.add_argument("--user-col", default="user_id", help="user id column (default: user_id)")
    parser.add_argument("--item-col", default="item_id", help="item id column (default: item_id)")
    parser.add_argument("--time-col", default="timestamp",
                        help="timestamp column, numeric or ISO-8601 (default: timestamp)")


def add_model_options(parser, several):
    names = ", ".join(MODEL_NAMES)
    if several:
        parser.add_argument("--model", required=True, metavar="NAME[,NAME...]",
                            help=f"comma-separated models, of: {names}")
    else:
        parser.add_argument("--model", required=True, metavar="NAME", help=f"one of: {names}")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="set a parameter on every model that has it, e.g. --set epochs=10 "
                        "--set alignment=none; MODEL.NAME=VALUE sets it on one model only; "
                        "repeatable")
    parser.add_argument("--seed", type=int, default=0, help="random_state of the models")
    parser.add_argument("--quiet", action="store_true", help="no training progress bars")


def model_parameters():
    """One line per model: its main parameters and their defaults (the epilog of ``fit``)."""
    from ..comparison import default_models

    models = default_models()
    width = max(map(len, models))
    lines = ["main parameters of each model, with their defaults (change them with --set):"]
    for name, est in models.items():
        params = est.get_params()
        shown = [f"{p}={params[p]}" for p in _MAIN_PARAMETERS if p in params]
        lines.append(f"  {name:<{width}}  {' '.join(shown) or '(no training parameters)'}")
    return "\n".join(lines)


def check_writable(path, option="--out"):
    """Fail now, not after a fit, if ``path`` cannot be written.

    The file is opened for appending (which changes nothing in an existing file) and removed
    again if it did not exist.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise CommandError(f"{option} {path}: directory {path.parent} does not exist.")
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise CommandError(f"{option} {path} cannot be written: {exc.strerror}.") from None
    if not existed:
        path.unlink()


def parse_value(text):
    """A command-line value as a Python literal when it is one (3, 0.1, None), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parse_setting(setting):
    key, sep, value = setting.partition("=")
    if not sep or not key:
        raise CommandError(f"--set expects NAME=VALUE, got {setting!r}.")
    model, dot, name = key.rpartition(".")
    return (model if dot else None), name, parse_value(value)


def make_models(spec, settings, seed, verbose):
    """Fresh estimators for the comma-separated names in ``spec``, with ``settings`` applied.

    ``NAME=VALUE`` sets ``NAME`` on every model that has it and is an error only if none has;
    ``MODEL.NAME=VALUE`` sets it on ``MODEL``, which must have it.
    """
    from sklearn.base import clone

    from ..comparison import default_models

    known = default_models(random_state=seed)
    by_lower = {name.lower(): name for name in known}
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n.lower() not in by_lower]
    if unknown or not names:
        raise CommandError(f"unknown model(s) {unknown or [spec]}; choose from {list(known)}.")
    models = {by_lower[n.lower()]: clone(known[by_lower[n.lower()]]) for n in names}
    for est in models.values():
        if "trainer__verbose" in est.get_params():
            est.set_params(trainer__verbose=verbose)
    for setting in settings:
        target, param, value = _parse_setting(setting)
        if target is not None and target not in models:
            raise CommandError(f"--set {setting}: {target!r} is not among the models "
                               f"{list(models)}.")
        candidates = list(models) if target is None else [target]
        having = [m for m in candidates if param in models[m].get_params()]
        if not having and len(candidates) == 1:
            raise CommandError(f"--set {setting}: {candidates[0]} has no parameter {param!r}; its "
                               f"parameters are {sorted(models[candidates[0]].get_params())}.")
        if not having:
            raise CommandError(f"--set {setting}: none of the models {candidates} has a parameter "
                               f"{param!r}.")
        for model in having:
            models[model].set_params(**{param: value})
    return models
