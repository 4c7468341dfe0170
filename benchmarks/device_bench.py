r"""Seconds per epoch and users served per second of SASRec, LightGCN and CREATE on one device.

The script to run where a GPU exists; the same command measures the CPU:

    python benchmarks/device_bench.py --device cuda --data-home ../shared/data
    python benchmarks/device_bench.py --device cuda --precision bf16 --data-home ../shared/data
    python benchmarks/device_bench.py --tiny          # seconds on CPU: the CI smoke run

Two data sets: Amazon Beauty (train part of the global temporal split; its warm test users are
served from their histories) and 1,000,000 synthetic interactions (100,000 items; 10,000 of its
users are served). Each model trains ``--epochs`` epochs at its package defaults (CREATE after
one graph-only warm-up epoch, reported apart) and recommends k=100 items. s/epoch is the median
of the model's own epoch times (the training loop reads the device once per epoch, so the time
includes the device's work); users/s is the served users over the wall time of ``recommend``
(it copies only the top-k to the host). Peak memory: the process's resident set, and on CUDA the
device's peak allocation. ``--tiny`` replaces the data by two small synthetic sets and the models
by narrow ones.
"""

import argparse
import functools
import platform
import sys
import warnings

import numpy as np
import pandas as pd
import torch

from skcreate.estimators.create import CREATERecommender
from skcreate.data.datasets import make_interactions
from skcreate.estimators.graph import LightGCNRecommender
from skcreate.data.model_selection import global_temporal_split, split_history_target
from skcreate.nn import SASRecEncoder
from skcreate.estimators.sequential import SASRecRecommender
from skcreate.training import Trainer, resolve_device

from _common import fit_and_time, load_data, machine

K = 100
MODELS = {"SASRec": SASRecRecommender, "LightGCN": LightGCNRecommender,
          "CREATE": CREATERecommender,
          # row-sparse gradients and lazy updates of the graph tables (issue 29)
          "LightGCN-sparse": functools.partial(LightGCNRecommender, row_sparse=True),
          "CREATE-sparse": CREATERecommender,
          # and one-hop steps over sampled neighbours, deeper layers refreshed per epoch
          "LightGCN-historical": functools.partial(LightGCNRecommender, row_sparse=True,
                                                   propagation="historical", fanout=10),
          "CREATE-historical": CREATERecommender}
# CREATE's variants: options of its graph encoder
GRAPH_ENCODER = {"CREATE-sparse": {"row_sparse": True},
                 "CREATE-historical": {"row_sparse": True, "propagation": "historical",
                                       "fanout": 10}}
TINY = {"n_factors": 8, "batch_size": 32}
TINY_ENCODER = {"n_blocks": 1, "max_len": 8}


def datasets(args):
    """``(name, train frame, histories to serve)`` of every data set of the run."""
    rng = np.random.default_rng(0)
    if args.tiny:
        sizes = [("synthetic 1k", 60, 30), ("synthetic 2k", 120, 50)]
    else:
        sizes = [("synthetic 1M", 1_000_000 // 20, 100_000)]
        X = load_data("amazon-beauty", args.data_home)
        train, _, test = global_temporal_split(X)
        yield "amazon-beauty", train, split_history_target(test)[0]
    for name, n_users, n_items in sizes:
        X = make_interactions(n_users=n_users, n_items=n_items, random_state=0)
        users = rng.choice(n_users, min(n_users, 10_000), replace=False)
        yield name, X, X[X.user_id.isin(users)]


def make_model(name, args):
    params = {"trainer": Trainer(device=args.device, precision=args.precision),
              "random_state": 0, "epochs": args.epochs}
    create = name.startswith("CREATE")
    if create:
        params["warmup_epochs"] = 1
    if args.tiny:
        params.update(TINY)
        if name == "SASRec":
            params.update(TINY_ENCODER)
        elif create:
            # CREATE's transformer options live on its sequence encoder
            params.update(sequence_encoder=SASRecEncoder(**TINY_ENCODER), graph_batch_size=64)
    model = MODELS[name](**params)
    model.set_params(**{f"graph_encoder__{key}": value
                        for key, value in GRAPH_ENCODER.get(name, {}).items()})
    return model


def run(model, X, histories, cuda):
    """One row: epoch times, users/s and peak memory of fitting ``model`` and serving."""
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timing = fit_and_time(model, X, histories, K)
    stages = np.array(timing["epoch_stages"])
    seconds = np.array(timing["epoch_seconds"])
    n_users = histories["user_id"].nunique()
    row = {"s/epoch": float(np.median(seconds[stages != "warmup"])),
           "warm-up s/epoch": float(np.median(seconds[stages == "warmup"]))
           if (stages == "warmup").any() else float("nan"),
           "users/s": n_users / timing["recommend_s"], "served": n_users,
           "peak MiB": timing["peak_mib"]}
    if cuda:
        row["device peak MiB"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, auto")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs per model (default 2, with --tiny 1)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--tiny", action="store_true", help="small data and models (CI)")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 1 if args.tiny else 2
    names = args.models.split(",")
    unknown = set(names) - set(MODELS)
    if unknown:
        parser.error(f"unknown model(s) {sorted(unknown)}; choose from {list(MODELS)}")
    # test histories hold items first seen after the split; that is expected here
    warnings.filterwarnings("ignore", message=".*unseen at fit.*")
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    rows = []
    for data_name, X, histories in datasets(args):
        for name in names:
            row = {"data": data_name, "interactions": len(X), "model": name,
                   **run(make_model(name, args), X, histories, cuda)}
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    if cuda:
        device = f"{device} ({torch.cuda.get_device_name(device)})"
    print(f"\ndevice {device}, precision {args.precision}, {args.epochs} epoch(s), k={K}; "
          f"{machine()}; {platform.node() or 'host'}\n")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    return rows


if __name__ == "__main__":
    main()
