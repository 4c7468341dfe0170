r"""Fit models on a named data set under the evaluation protocol; report quality, speed, memory.

The protocol is described in ``docs/protocol.md``.

Each (model, seed) runs in a fresh process so that its peak resident memory is its own.

    python benchmarks/bench.py --dataset amazon-beauty --data-home ../shared/data \
        --models SASRec,LightGCN,ALS --seeds 0 1 2 --json results/beauty.json

Model options override the defaults: ``--set SASRec.epochs=10 --set SASRec.learning_rate=2e-3``.
"""

import argparse
import json
import platform
import sys

import pandas as pd
import torch

from skcreate.apps.comparison import default_models, format_table
from skcreate.data.model_selection import GlobalTemporalSplit

from _common import (add_data_arguments, evaluate_with_memory, in_fresh_process,
                     load_data, matmul_gflops, parse_sets, sasrec_epoch_flops)


def run_one(X, name, params, seed, quantile):
    """One (model, seed) row, fitted and evaluated in a fresh process."""
    train_idx, test_idx = next(GlobalTemporalSplit(quantile).split(X))
    train, test = X.iloc[train_idx], X.iloc[test_idx]
    model = default_models(seed)[name].set_params(**params)
    if "random_state" in model.get_params():
        model.set_params(random_state=seed)
    row = {"model": name, "seed": seed, "params": params}
    row.update(in_fresh_process(evaluate_with_memory, model, train, test,
                                X["item_id"].nunique()))
    if name == "SASRec" and model.loss == "ce" and row.get("s_per_epoch"):
        flops = sasrec_epoch_flops(model, train)
        row["gflop_per_epoch"] = flops / 1e9
        row["achieved_gflops"] = flops / 1e9 / row["s_per_epoch"]
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--models", default="Popular,ALS,LightGCN,SASRec")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--quantile", type=float, default=0.8)
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.PARAM=VALUE")
    parser.add_argument("--json", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)

    params = parse_sets(args.set)
    names = args.models.split(",")
    unknown = set(names) - set(default_models())
    if unknown:
        parser.error(f"unknown model(s) {sorted(unknown)}; choose from {list(default_models())}")
    X = load_data(args.dataset, args.data_home)
    rows = []
    for name in names:
        for seed in args.seeds:
            row = run_one(X, name, params.get(name, {}), seed, args.quantile)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    results = pd.DataFrame(rows)
    print(f"\n{args.dataset}, global temporal split q={args.quantile}, warm users, last target, "
          f"seen items filtered; {torch.get_num_threads()} torch threads, "
          f"{platform.processor() or platform.machine()}\n")
    print(format_table(results))
    speed_cols = [c for c in ("fit_s", "epochs", "s_per_epoch", "users_per_s", "peak_rss_mib",
                              "gflop_per_epoch", "achieved_gflops") if c in results]
    print("\n" + results.groupby("model", sort=False)[speed_cols].mean().round(2).to_string())
    print(f"\nmachine float32 matmul: {matmul_gflops():.0f} GFLOP/s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"argv": sys.argv, "rows": rows}, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
