"""``skcreate compare``: recommenders side by side on a global temporal split.

With no arguments: MovieLens-100K (downloaded once and cached, or a synthetic data set when that
is not possible) and a quick set of models; ``--full`` runs every model at its defaults.
"""

import time
import warnings

from ._options import MODEL_NAMES, CommandError, log, positive_int

__all__ = ["DATASET_NAMES", "add_parser", "run", "load_or_synthesise"]

#: :func:`skcreate.data.datasets.list_datasets`, for the help (a test keeps them equal).
DATASET_NAMES = ("movielens-100k", "movielens-1m", "amazon-beauty", "amazon-sports")

# the full comparison's synthetic set is the one it always used; the quick one fits the budget
_SYNTHETIC = {True: dict(n_users=3000, n_items=800), False: dict(n_users=1000, n_items=500)}


def add_parser(sub):
    parser = sub.add_parser(
        "compare", help="compare recommenders on a global temporal split",
        description=__doc__)
    parser.add_argument("--dataset", default="movielens-100k",
                        help=f"one of {list(DATASET_NAMES)} or 'synthetic' "
                        "(default: movielens-100k)")
    parser.add_argument("--data-home", default=None,
                        help="data directory (default: SKCREATE_DATA or ~/skcreate_data)")
    parser.add_argument("--no-download", action="store_true",
                        help="never download; use the synthetic data set if the data set is "
                        "not in the data directory")
    parser.add_argument("--full", action="store_true",
                        help="every model at its defaults (minutes) instead of the quick set")
    parser.add_argument("--models", default=None,
                        help=f"comma-separated subset of {list(MODEL_NAMES)}")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="epochs of the neural models (default: the set's own)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--quantile", type=float, default=0.8)
    parser.add_argument("--quiet", action="store_true", help="no training progress bars")
    parser.set_defaults(run=run)


def load_or_synthesise(name, data_home=None, download=True, full=False, log=log):
    """A named data set, or the synthetic fallback (said in one line) when it cannot be had."""
    from ...data.datasets import get_data_home, load_dataset, make_interactions

    if name == "synthetic":
        return make_interactions(**_SYNTHETIC[full], random_state=0), "synthetic"
    home = get_data_home(data_home)
    how = (f"To use the real data, run once with network access (it is cached in {home}), or "
           f"point --data-home or SKCREATE_DATA at a directory holding it.")
    try:
        return load_dataset(name, data_home=data_home, download=download, progress=True), name
    except FileNotFoundError:
        reason = f"{name} not found in {home} and downloading is off (--no-download)"
    except OSError as exc:
        reason = str(exc).rstrip(".")
    log(f"{reason}: using the synthetic data set instead. {how}")
    return make_interactions(**_SYNTHETIC[full], random_state=0), "synthetic"


def _models(args):
    from ..comparison import default_models, quick_models

    models = default_models(epochs=args.epochs) if args.full or args.models else quick_models()
    if args.models:
        wanted = [m.strip() for m in args.models.split(",")]
        unknown = sorted(set(wanted) - set(models))
        if unknown:
            raise CommandError(f"unknown model(s) {unknown}; choose from {list(models)}.")
        models = {m: models[m] for m in wanted}
    elif args.epochs is not None and not args.full:
        for est in models.values():
            if "epochs" in est.get_params():
                est.set_params(epochs=args.epochs)
    for est in models.values():
        if "trainer__verbose" in est.get_params():
            est.set_params(trainer__verbose=not args.quiet)
    return models


def run(args):
    from ..comparison import compare, format_table

    start = time.perf_counter()
    models = _models(args)
    X, name = load_or_synthesise(args.dataset, args.data_home, not args.no_download, args.full)
    budget = "full comparison, models at their defaults" if args.full or args.models else (
        "quick set (SASRec and CREATE on a short budget; --full for the defaults)")
    log(f"{name}: {len(X):,} interactions, {X['user_id'].nunique():,} users, "
        f"{X['item_id'].nunique():,} items; global temporal split at q={args.quantile}; {budget}")
    with warnings.catch_warnings():
        # test histories hold items first seen after the split; that is expected here
        warnings.filterwarnings("ignore", message=".*unseen at fit.*")
        results = compare(X, models, quantile=args.quantile, seeds=args.seeds, log=log)
    print(f"\n{name}: next-item metrics in %, warm test users, seen items filtered\n")
    print(format_table(results))
    log(f"\n{time.perf_counter() - start:.0f} s in total")
    return 0
