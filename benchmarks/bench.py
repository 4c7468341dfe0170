r"""Fit models on a named data set under the DESIGN protocol; report quality, speed and memory.

Each (model, seed) runs in a fresh process so that its peak resident memory is its own.

    python benchmarks/bench.py --dataset amazon-beauty --data-home ../shared/data \
        --models SASRec,LightGCN,ALS --seeds 0 1 2 --json results/beauty.json

Model options override the defaults: ``--set SASRec.epochs=10 --set SASRec.learning_rate=2e-3``.
"""

import argparse
import ast
import json
import multiprocessing as mp
import platform
import resource
import sys
import time
import warnings

import numpy as np
import pandas as pd
import torch

from skcreate.comparison import default_models, evaluate_model, format_table
from skcreate.datasets import load_dataset, make_interactions
from skcreate.model_selection import GlobalTemporalSplit


def load(dataset, data_home):
    if dataset.startswith("synthetic"):
        # synthetic[:n_users[:n_items]]
        _, *sizes = dataset.split(":")
        n_users, n_items = (list(map(int, sizes)) + [20000, 5000][len(sizes):])[:2]
        return make_interactions(n_users=n_users, n_items=n_items, random_state=0)
    return load_dataset(dataset, data_home=data_home)


def sasrec_epoch_flops(model, train):
    """FLOPs of one SASRec epoch: full-catalogue CE on real positions plus the transformer."""
    lengths = np.minimum(train.groupby(model.user_col).size().to_numpy(), model.max_len + 1)
    positions = int((lengths - 1).clip(min=0).sum())
    d, n_items = model.n_factors, train[model.item_col].nunique()
    ce = 6 * positions * n_items * d  # logits forward, two matmuls backward
    # per token and block: qkv + out projections 4d^2, feed-forward 2d^2, attention ~2Ld
    per_token = model.n_blocks * (6 * 2 * d * d + 2 * 2 * model.max_len * d)
    return ce + 3 * positions * per_token


def matmul_gflops(size=2048, repeats=5):
    """Measured float32 matmul throughput of this machine (the ceiling for CE)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def run_one(args):
    dataset, data_home, name, params, seed, quantile = args
    warnings.filterwarnings("ignore", message=".*unseen at fit.*")
    X = load(dataset, data_home)
    train_idx, test_idx = next(GlobalTemporalSplit(quantile).split(X))
    train, test = X.iloc[train_idx], X.iloc[test_idx]
    model = default_models(seed)[name].set_params(**params)
    if "random_state" in model.get_params():
        model.set_params(random_state=seed)
    row = {"model": name, "seed": seed, "params": params}
    row.update(evaluate_model(model, train, test, X["item_id"].nunique()))
    row["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if name == "SASRec" and model.loss == "ce" and row.get("s_per_epoch"):
        flops = sasrec_epoch_flops(model, train)
        row["gflop_per_epoch"] = flops / 1e9
        row["achieved_gflops"] = flops / 1e9 / row["s_per_epoch"]
    return row


def parse_value(text):
    """A command-line value as a Python literal when it is one (3, 0.1, None), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_sets(items):
    params = {}
    for item in items:
        key, value = item.split("=", 1)
        model, param = key.split(".", 1)
        params.setdefault(model, {})[param] = parse_value(value)
    return params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="amazon-beauty",
                        help="a skcreate.datasets name, or synthetic[:n_users[:n_items]]")
    parser.add_argument("--data-home", default=None)
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
    ctx = mp.get_context("spawn")
    rows = []
    for name in names:
        for seed in args.seeds:
            with ctx.Pool(1) as pool:
                row = pool.apply(run_one, ((args.dataset, args.data_home, name,
                                            params.get(name, {}), seed, args.quantile),))
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
