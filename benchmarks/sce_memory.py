"""Peak memory of SASRec training on a 1,000,000-item catalogue: scalable vs full cross-entropy.

    python benchmarks/sce_memory.py --loss sce            # a full epoch through the estimator
    python benchmarks/sce_memory.py --loss ce --steps 3   # a few steps of full CE

Users walk through consecutive runs of a random permutation of the items, so every item of the
catalogue occurs and the next item is predictable. Peak memory is the process's maximum
resident set size.
"""

import argparse
import itertools
import time

import numpy as np
import pandas as pd
import torch

from skcreate import SASRecRecommender
from skcreate.benchmarking import peak_mib
from skcreate.interactions import Interactions, check_interactions


def walks(n_items, length, seed=0):
    """Interactions covering ``n_items`` items exactly, in runs of ``length`` per user."""
    rng = np.random.default_rng(seed)
    n_users = n_items // length
    items = rng.permutation(n_items)[:n_users * length]
    users = np.repeat(np.arange(n_users), length)
    times = np.tile(np.arange(length), n_users) + users
    return pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-items", type=int, default=1_000_000)
    parser.add_argument("--length", type=int, default=25)
    parser.add_argument("--loss", choices=["sce", "ce"], default="sce")
    parser.add_argument("--steps", type=int, default=None,
                        help="train this many steps only (default: one full epoch)")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)

    X = walks(args.n_items, args.length)
    print(f"{len(X):,} interactions, {X.user_id.nunique():,} users, {X.item_id.nunique():,} items;"
          f" peak after data {peak_mib():.0f} MiB")
    start = time.perf_counter()
    if args.steps is None:
        model = SASRecRecommender(loss=args.loss, epochs=1, batch_size=args.batch_size,
                                  max_len=args.length, random_state=0)
        model.fit(X)
        fit_s = time.perf_counter() - start
        recs = model.recommend(X[X.user_id < 1000], k=10)
        print(f"fit {fit_s:.0f} s, loss {model.loss_curve_[0]:.3f}; recommend ok "
              f"({len(recs)} rows)")
    else:
        # the estimator's own network, batches and step, cut after a few steps
        model = SASRecRecommender(loss=args.loss, batch_size=args.batch_size,
                                  max_len=args.length, random_state=0)
        data, _ = Interactions.from_frame(check_interactions(X), "user_id", "item_id",
                                          "timestamp")
        torch.manual_seed(0)
        network, (stage,) = model._build(data, np.random.default_rng(0))
        optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
        for batch in itertools.islice(stage.batches(0), args.steps):
            loss = network(batch)["local"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"{args.steps} steps in {time.perf_counter() - start:.0f} s, last loss "
              f"{loss.item():.3f}")
    positions = args.batch_size * (args.length - 1)
    print(f"loss={args.loss}: peak resident memory {peak_mib():.0f} MiB "
          f"(full-CE logits of one batch alone: {positions} x {args.n_items:,} floats = "
          f"{positions * args.n_items * 4 / 2**30:.1f} GiB)")


if __name__ == "__main__":
    main()
