"""``skcreate fit``, ``recommend`` and ``evaluate``: the estimators on your own files.

Interaction files are CSV (optionally gzipped) or Parquet with a header, read by
:func:`skcreate.data.datasets.load_interactions`; ``--user-col``, ``--item-col`` and ``--time-col``
name their columns. ``fit`` keeps these names: the model is fitted with them as its
``user_col``, ``item_col`` and ``time_col`` and the model file records them, with the kind of
the training times, so that ``recommend`` reads histories and writes recommendations under them
by default and refuses histories whose times are of another kind.
"""

import argparse
import inspect
import sys
import time
import warnings

from ._options import (CommandError, _parse_setting, add_column_options, add_model_options,
                       check_writable, log, make_models, model_parameters, positive_int)
from .model_file import load_model, save_model

__all__ = ["add_parsers"]

_STANDARD = ("user_id", "item_id", "timestamp")
_COLUMN_PARAMS = ("user_col", "item_col", "time_col")


def add_parsers(sub):
    fit = sub.add_parser(
        "fit", help="fit a model on an interactions file and save it",
        description="Fit one model on all rows of an interactions file. The model file records "
        "the column names and the kind of times (numeric or datetime) of the file; `recommend` "
        "uses them.", epilog_factory=model_parameters,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("data", help="interactions file (.csv, .csv.gz or .parquet)")
    add_model_options(fit, several=False)
    fit.add_argument("--out", required=True, help="model file to write, e.g. model.skc")
    add_column_options(fit)
    fit.set_defaults(run=run_fit)

    rec = sub.add_parser(
        "recommend", help="top-k items for the users of a histories file",
        description="Recommend for every user of HISTORIES from their interactions there (users "
        "need not have been seen at fit), or for every fitted user without HISTORIES. Columns "
        "are those the model was fitted on unless --user-col, --item-col or --time-col say "
        "otherwise. The output has the columns user, item, score, rank and source: 'model', or "
        "'popularity' for a user none of whose history items the model knows (the score is "
        "then the item's number of training interactions).")
    rec.add_argument("model", help="model file written by `skcreate fit`")
    rec.add_argument("histories", nargs="?", default=None,
                     help="interactions of the users to serve (default: the fitted users)")
    rec.add_argument("--k", type=positive_int, default=10, help="items per user (default: 10)")
    rec.add_argument("--out", default="-", help="CSV to write (default: standard output)")
    rec.add_argument("--allow-module", action="append", default=[], metavar="MODULE",
                     help="a module (with its submodules) from which the model's own parts "
                     "may be imported, for a model fitted with parts of your own; importing "
                     "runs its code, so name only modules you trust (repeatable)")
    add_column_options(rec, remembered=True)
    rec.set_defaults(run=run_recommend)

    up = sub.add_parser(
        "update", help="update a model file with new interactions (partial_fit)",
        description="Continue the model of MODEL with the events of NEW (the model's columns, "
        "times of the fitted kind): new users and items are added, and the model learns from "
        "the new events as its partial_fit does. The updated model is written to --out.")
    up.add_argument("model", help="model file written by `skcreate fit` or `update`")
    up.add_argument("data", help="new interactions file (.csv, .csv.gz or .parquet)")
    up.add_argument("--out", required=True, help="model file to write (may be MODEL)")
    up.add_argument("--epochs", type=positive_int, default=None,
                    help="epochs of the update (ALS sweeps, BPR iterations); default: a "
                    "third of a neural model's epochs, ALS's and BPR's iterations")
    up.add_argument("--warmup-epochs", type=int, default=None,
                    help="CREATE only: graph-only epochs before the joint ones (default: a "
                    "third of the fit's)")
    up.add_argument("--new-item-step", type=float, default=None,
                    help="SASRec and CREATE only: how many times as far as the optimiser "
                    "each step moves the rows of the items new in NEW (default: 5)")
    up.add_argument("--average-epochs", type=positive_int, default=None,
                    help="SASRec and CREATE only: the updated weights are the mean of those "
                    "at the ends of the update's last N epochs (default: CREATE half of "
                    "them, SASRec 1)")
    up.add_argument("--allow-module", action="append", default=[], metavar="MODULE",
                    help="as in `skcreate recommend`")
    up.set_defaults(run=run_update)

    exp = sub.add_parser(
        "export", help="write a model file as an ONNX graph served without torch",
        description="Write the model of MODEL as an ONNX graph (histories in, top-k items out) "
        "and its sidecar OUT.json (id maps, columns, parameters, checksum), served by "
        "skcreate.serving.load with numpy, pandas and onnxruntime only. Needs the serving "
        "extra: pip install 'skcreate[serving]'.")
    exp.add_argument("model", help="model file written by `skcreate fit`")
    exp.add_argument("out", help="ONNX file to write, e.g. model.onnx")
    exp.add_argument("--allow-module", action="append", default=[], metavar="MODULE",
                     help="as in `skcreate recommend`")
    exp.set_defaults(run=run_export)

    ev = sub.add_parser(
        "evaluate", help="metrics of models on a global temporal split of a file",
        description="Split an interactions file at a time quantile (global temporal split), fit "
        "each model on the past and print NDCG, Recall and Coverage at 10 and 100 of its "
        "next-item predictions for the users who come back, and how many they are.",
        epilog_factory=model_parameters, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("data", help="interactions file (.csv, .csv.gz or .parquet)")
    add_model_options(ev, several=True)
    ev.add_argument("--quantile", type=float, default=0.8,
                    help="test threshold quantile of the timestamps (default: 0.8)")
    ev.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="several seeds give mean ± std (default: --seed)")
    add_column_options(ev)
    ev.set_defaults(run=run_evaluate)


def _read(path, columns, keep_names=True):
    """Interactions of ``path``, whose user, item and time columns are ``columns``.

    With ``keep_names=False`` they are renamed ``user_id``, ``item_id``, ``timestamp``.
    """
    from ...data.datasets import load_interactions

    X = load_interactions(path, *columns)
    log(f"{path}: {len(X):,} interactions, {X['user_id'].nunique():,} users, "
        f"{X['item_id'].nunique():,} items")
    return X.rename(columns=dict(zip(_STANDARD, columns))) if keep_names else X


def _time_kind(times):
    # load_interactions gives numbers or datetime64 (kind "M", time zone or not)
    return "datetime" if times.dtype.kind == "M" else "numeric"


def run_fit(args):
    check_writable(args.out)
    (name, model), = make_models(args.model, args.set, args.seed, not args.quiet).items()
    columns = (args.user_col, args.item_col, args.time_col)
    model.set_params(**dict(zip(_COLUMN_PARAMS, columns)))
    if "trainer__on_interrupt" in model.get_params() and "trainer__on_interrupt" not in \
            [_parse_setting(setting)[1] for setting in args.set]:
        # Ctrl-C ends training, not the command: the epochs trained so far are saved
        model.set_params(trainer__on_interrupt="stop")
    X = _read(args.data, columns)
    start = time.perf_counter()
    model.fit(X)
    save_model(model, args.out, _time_kind(X[args.time_col]))
    if getattr(model, "interrupted_", False):
        warnings.warn(f"training was interrupted after {len(model.loss_curve_)} epoch(s); "
                      f"{args.out} holds the model trained so far (its best weights), not a "
                      "finished fit.", UserWarning, stacklevel=1)
    log(f"{name} fitted in {time.perf_counter() - start:.1f} s; saved to {args.out}")
    return 0


def _sources(model, histories, recs):
    """``'popularity'`` for the rows of users whose history holds no item the model knows."""
    if histories is None:  # every fitted user has fitted items
        return "model"
    known = histories[model.item_col].isin(model.item_ids_)
    personal = recs[model.user_col].isin(histories.loc[known, model.user_col].unique())
    return personal.map({True: "model", False: "popularity"})


def run_recommend(args):
    if args.out != "-":
        check_writable(args.out)
    model, time_kind = load_model(args.model, args.allow_module)
    # the flags name the histories' and output's columns; by default those the model was fitted on
    flags = (args.user_col, args.item_col, args.time_col)
    fitted = model.get_params()
    columns = [flag or fitted[param] for flag, param in zip(flags, _COLUMN_PARAMS)]
    model.set_params(**dict(zip(_COLUMN_PARAMS, columns)))
    histories = None
    if args.histories is not None:
        histories = _read(args.histories, columns)
        kind = _time_kind(histories[model.time_col])
        if time_kind is not None and kind != time_kind:
            raise CommandError(
                f"{args.histories}: time column {model.time_col!r} holds {kind} times, but the "
                f"model was fitted on {time_kind} times; write them as in the training file.")
    if args.k > model.n_items_:
        seen = " minus the items of their history" if model.filter_seen_ else ""
        warnings.warn(f"k={args.k}, but the catalogue has {model.n_items_} items: each user "
                      f"gets at most {model.n_items_}{seen}.", UserWarning, stacklevel=1)
    recs = model.recommend(histories, k=args.k)
    recs["source"] = _sources(model, histories, recs)
    recs.to_csv(sys.stdout if args.out == "-" else args.out, index=False)
    if args.out != "-":
        log(f"{len(recs):,} recommendations for {recs[model.user_col].nunique():,} users "
            f"written to {args.out}")
    return 0


def run_update(args):
    check_writable(args.out)
    model, time_kind = load_model(args.model, args.allow_module)
    columns = [model.get_params()[param] for param in _COLUMN_PARAMS]
    X = _read(args.data, columns)
    kind = _time_kind(X[model.time_col])
    if time_kind is not None and kind != time_kind:
        raise CommandError(f"{args.data}: time column {model.time_col!r} holds {kind} times, "
                           f"but the model was fitted on {time_kind} times.")
    options = {}
    if args.warmup_epochs is not None:
        if "warmup_epochs" not in model.get_params():
            raise CommandError(f"--warmup-epochs: {type(model).__name__} has no warm-up.")
        options["warmup_epochs"] = args.warmup_epochs
    accepted = inspect.signature(model.partial_fit).parameters
    for name, refusal in [("new_item_step", "has no new-item step (SASRec and CREATE have)"),
                          ("average_epochs", "averages no epochs (SASRec and CREATE do)")]:
        value = getattr(args, name)
        if value is None:
            continue
        if name not in accepted:
            raise CommandError(f"--{name.replace('_', '-')}: {type(model).__name__} "
                               f"{refusal}.")
        options[name] = value
    start = time.perf_counter()
    n_items = model.n_items_
    model.partial_fit(X, epochs=args.epochs, **options)
    save_model(model, args.out, time_kind or kind)
    log(f"{type(model).__name__} updated in {time.perf_counter() - start:.1f} s "
        f"({model.n_items_ - n_items:,} new items); saved to {args.out}")
    return 0


def run_export(args):
    model, _ = load_model(args.model, args.allow_module)
    model.export(args.out)
    log(f"{type(model).__name__} exported to {args.out} and {args.out}.json")
    return 0


def run_evaluate(args):
    from ..comparison import compare, format_table

    models = make_models(args.model, args.set, args.seed, not args.quiet)
    # compare reads the standard column names, which the estimators have by default
    X = _read(args.data, (args.user_col, args.item_col, args.time_col), keep_names=False)
    seeds = args.seeds or [args.seed]
    with warnings.catch_warnings():
        # test histories hold items first seen after the split; that is expected here
        warnings.filterwarnings("ignore", message=".*unseen at fit.*")
        results = compare(X, models, quantile=args.quantile, seeds=seeds, log=log)
    print(f"\n{args.data}: next-item metrics in %, {results['test_users'].iloc[0]:,} warm "
          f"test users, seen items filtered, global temporal split at q={args.quantile}\n")
    print(format_table(results))
    return 0
