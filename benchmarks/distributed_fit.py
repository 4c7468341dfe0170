r"""Fit models data-parallel under torchrun, evaluate on rank 0, print bench.py's table.

Every rank loads the data, takes the same global temporal split and fits the same model; the
estimators see ``WORLD_SIZE > 1`` and train data-parallel (``docs/distributed.md``). Rank 0
alone evaluates on the test users and prints. Without torchrun the script fits in one process,
which gives the figure to compare with.

    torchrun --nproc-per-node 2 benchmarks/distributed_fit.py --dataset amazon-beauty \
        --data-home ../shared/data --models SASRec --seeds 0 --set SASRec.epochs=15

    # the same in one process with two threads
    OMP_NUM_THREADS=2 python benchmarks/distributed_fit.py --dataset amazon-beauty ...

Model options override the defaults as in ``bench.py``: ``--set SASRec.epochs=15``.
"""

import argparse
import json
import platform
import sys
import warnings

import pandas as pd
import torch

from skcreate.training import distributed
from skcreate.apps.comparison import default_models, evaluate_model, format_table
from skcreate.data.model_selection import GlobalTemporalSplit

from _common import add_data_arguments, load_data, machine, parse_sets

NEURAL = ("LightGCN", "UltraGCN", "SASRec", "CREATE")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--models", default="SASRec")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--quantile", type=float, default=0.8)
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.PARAM=VALUE")
    parser.add_argument("--json", default=None, help="rank 0 writes the rows as JSON here")
    args = parser.parse_args(argv)

    params = parse_sets(args.set)
    names = args.models.split(",")
    unknown = set(names) - set(NEURAL)
    if unknown:
        parser.error(f"unknown or non-neural model(s) {sorted(unknown)}; choose from "
                     f"{list(NEURAL)}")
    main_process = distributed.is_main_process()
    # test histories hold items first seen after the split; that is expected here
    warnings.filterwarnings("ignore", message=".*unseen at fit.*")
    X = load_data(args.dataset, args.data_home)
    train_idx, test_idx = next(GlobalTemporalSplit(args.quantile).split(X))
    train, test = X.iloc[train_idx], X.iloc[test_idx]
    rows = []
    for name in names:
        for seed in args.seeds:
            model = default_models(seed)[name].set_params(random_state=seed,
                                                          **params.get(name, {}))
            if main_process:
                row = {"model": name, "seed": seed, "params": params.get(name, {})}
                row.update(evaluate_model(model, train, test, X["item_id"].nunique()))
                row.update(world_size=model.world_size_, threads=torch.get_num_threads(),
                           epoch_seconds=model.epoch_seconds_)
                rows.append(row)
                print(json.dumps(row, default=str), file=sys.stderr, flush=True)
            else:
                # the other ranks train their shares; rank 0 evaluates alone
                model.fit(train)
    if not main_process:
        return
    results = pd.DataFrame(rows)
    world = int(results["world_size"].iloc[0])
    print(f"\n{args.dataset}, global temporal split q={args.quantile}, warm users, last target, "
          f"seen items filtered; {world} process(es) x {torch.get_num_threads()} torch "
          f"thread(s), {platform.processor() or platform.machine()}\n")
    print(format_table(results))
    speed_cols = [c for c in ("fit_s", "epochs", "s_per_epoch", "users_per_s") if c in results]
    print("\n" + results.groupby("model", sort=False)[speed_cols].mean().round(2).to_string())
    print(f"\n{machine()}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"argv": sys.argv, "world_size": world, "rows": rows}, fh, indent=1,
                      default=str)


if __name__ == "__main__":
    main()
