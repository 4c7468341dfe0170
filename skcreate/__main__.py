"""Command line: ``python -m skcreate compare --dataset NAME`` prints a comparison table."""

import argparse
import sys
import warnings

from .comparison import compare, default_models, format_table
from .datasets import get_data_home, list_datasets, load_dataset, make_interactions


def load_or_synthesise(name, data_home=None, log=print):
    """A named data set, or the synthetic fallback when it is not on disk."""
    if name == "synthetic":
        return make_interactions(n_users=3000, n_items=800, random_state=0), "synthetic"
    try:
        return load_dataset(name, data_home=data_home), name
    except FileNotFoundError:
        log(f"{name} not found in {get_data_home(data_home)} (set --data-home or "
            "SKCREATE_DATA); using the synthetic data set instead.")
        return make_interactions(n_users=3000, n_items=800, random_state=0), "synthetic"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="skcreate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cmp_parser = sub.add_parser("compare", help="compare recommenders on a global temporal split")
    cmp_parser.add_argument("--dataset", default="movielens-100k",
                            help=f"one of {list_datasets()} or 'synthetic'")
    cmp_parser.add_argument("--data-home", default=None,
                            help="data directory (default: SKCREATE_DATA or ~/skcreate_data)")
    cmp_parser.add_argument("--models", default=None,
                            help="comma-separated subset of the default models")
    cmp_parser.add_argument("--epochs", type=int, default=None,
                            help="epochs of the neural models (default: their own)")
    cmp_parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    cmp_parser.add_argument("--quantile", type=float, default=0.8)
    args = parser.parse_args(argv)

    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    X, name = load_or_synthesise(args.dataset, args.data_home, log)
    models = default_models(epochs=args.epochs)
    if args.models:
        wanted = [m.strip() for m in args.models.split(",")]
        unknown = sorted(set(wanted) - set(models))
        if unknown:
            parser.error(f"unknown model(s) {unknown}; choose from {list(models)}")
        models = {m: models[m] for m in wanted}
    log(f"{name}: {len(X):,} interactions, {X['user_id'].nunique():,} users, "
        f"{X['item_id'].nunique():,} items; global temporal split at q={args.quantile}")
    with warnings.catch_warnings():
        # test histories hold items first seen after the split; that is expected here
        warnings.filterwarnings("ignore", message=".*unseen at fit.*")
        results = compare(X, models, quantile=args.quantile, seeds=args.seeds, log=log)
    print(f"\n{name}: next-item metrics in %, warm test users, seen items filtered\n")
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
