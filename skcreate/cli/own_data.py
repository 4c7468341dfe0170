"""``skcreate fit``, ``recommend`` and ``evaluate``: the estimators on your own files.

Interaction files are CSV (optionally gzipped) or Parquet with a header, read by
:func:`skcreate.datasets.load_interactions`; ``--user-col``, ``--item-col`` and ``--time-col``
name their columns.
"""

import sys
import time
import warnings

from ..comparison import compare, format_table
from ..datasets import load_interactions
from ._options import add_column_options, add_model_options, log, make_models
from .model_file import load_model, save_model

__all__ = ["add_parsers"]


def add_parsers(sub):
    fit = sub.add_parser("fit", help="fit a model on an interactions file and save it",
                         description="Fit one model on all rows of an interactions file.")
    fit.add_argument("data", help="interactions file (.csv, .csv.gz or .parquet)")
    add_model_options(fit, several=False)
    fit.add_argument("--out", required=True, help="model file to write, e.g. model.skc")
    add_column_options(fit)
    fit.set_defaults(run=run_fit)

    rec = sub.add_parser(
        "recommend", help="top-k items for the users of a histories file",
        description="Recommend for every user of HISTORIES from their interactions there (users "
        "need not have been seen at fit), or for every fitted user without HISTORIES.")
    rec.add_argument("model", help="model file written by `skcreate fit`")
    rec.add_argument("histories", nargs="?", default=None,
                     help="interactions of the users to serve (default: the fitted users)")
    rec.add_argument("--k", type=int, default=10, help="items per user (default: 10)")
    rec.add_argument("--out", default="-", help="CSV to write (default: standard output)")
    add_column_options(rec)
    rec.set_defaults(run=run_recommend)

    ev = sub.add_parser(
        "evaluate", help="metrics of models on a global temporal split of a file",
        description="Split an interactions file at a time quantile (global temporal split), fit "
        "each model on the past and print NDCG, Recall and Coverage at 10 and 100 of its "
        "next-item predictions for the users who come back.")
    ev.add_argument("data", help="interactions file (.csv, .csv.gz or .parquet)")
    add_model_options(ev, several=True)
    ev.add_argument("--quantile", type=float, default=0.8,
                    help="test threshold quantile of the timestamps (default: 0.8)")
    ev.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="several seeds give mean ± std (default: --seed)")
    add_column_options(ev)
    ev.set_defaults(run=run_evaluate)


def _read(path, args):
    X = load_interactions(path, user_col=args.user_col, item_col=args.item_col,
                          time_col=args.time_col)
    log(f"{path}: {len(X):,} interactions, {X['user_id'].nunique():,} users, "
        f"{X['item_id'].nunique():,} items")
    return X


def run_fit(args):
    (name, model), = make_models(args.model, args.set, args.seed, not args.quiet).items()
    X = _read(args.data, args)
    start = time.perf_counter()
    model.fit(X)
    save_model(model, args.out)
    log(f"{name} fitted in {time.perf_counter() - start:.1f} s; saved to {args.out}")
    return 0


def run_recommend(args):
    model = load_model(args.model)
    histories = None if args.histories is None else _read(args.histories, args)
    recs = model.recommend(histories, k=args.k)
    recs = recs.rename(columns={"user_id": args.user_col, "item_id": args.item_col})
    recs.to_csv(sys.stdout if args.out == "-" else args.out, index=False)
    if args.out != "-":
        log(f"{len(recs):,} recommendations for {recs[args.user_col].nunique():,} users "
            f"written to {args.out}")
    return 0


def run_evaluate(args):
    models = make_models(args.model, args.set, args.seed, not args.quiet)
    X = _read(args.data, args)
    seeds = args.seeds or [args.seed]
    with warnings.catch_warnings():
        # test histories hold items first seen after the split; that is expected here
        warnings.filterwarnings("ignore", message=".*unseen at fit.*")
        results = compare(X, models, quantile=args.quantile, seeds=seeds, log=log)
    print(f"\n{args.data}: next-item metrics in %, warm test users, seen items filtered, "
          f"global temporal split at q={args.quantile}\n")
    print(format_table(results))
    return 0
