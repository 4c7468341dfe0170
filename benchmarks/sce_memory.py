"""Peak memory of SASRec training on a 1,000,000-item catalogue: scalable vs full cross-entropy.

    python benchmarks/sce_memory.py --loss sce            # a full epoch through the estimator
    python benchmarks/sce_memory.py --loss sce --steps 20 # seconds per step (median)
    python benchmarks/sce_memory.py --loss ce --steps 3   # a few steps of full CE

Users walk through consecutive runs of a random permutation of the items, so every item of the
catalogue occurs and the next item is predictable. Peak memory is the process's maximum
resident set size. ``--steps`` runs the estimator's own network, optimiser, clipping and
training loop (:func:`skcreate.training.train`) for that many steps and reports the median
step time after the first (which allocates the optimiser state).
"""

import argparse
import itertools
import time

import numpy as np
import pandas as pd
import torch

from skcreate import SASRecRecommender
from skcreate.data.interactions import Interactions, check_interactions
from skcreate.nn import FullCrossEntropy, ScalableCrossEntropy
from skcreate.training import Callback, Stage, train

from _common import parse_value, peak_mib


def walks(n_items, length, seed=0):
    """Interactions covering ``n_items`` items exactly, in runs of ``length`` per user."""
    rng = np.random.default_rng(seed)
    n_users = n_items // length
    items = rng.permutation(n_items)[:n_users * length]
    users = np.repeat(np.arange(n_users), length)
    times = np.tile(np.arange(length), n_users) + users
    return pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times})


class _StepClock(Callback):
    """Wall-clock time at the end of every step."""

    def __init__(self):
        self.times = [time.perf_counter()]

    def on_step_end(self, step, terms):
        self.times.append(time.perf_counter())


def local_loss(args):
    """The loss part of ``--loss`` and ``--candidates``."""
    if args.loss == "ce":
        return FullCrossEntropy()
    return ScalableCrossEntropy(n_candidates=args.candidates)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-items", type=int, default=1_000_000)
    parser.add_argument("--length", type=int, default=25)
    parser.add_argument("--loss", choices=["sce", "ce"], default="sce")
    parser.add_argument("--steps", type=int, default=None,
                        help="train this many steps only (default: one full epoch)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--candidates", type=parse_value, default=65536,
                        help="SCE's n_candidates (None: the whole catalogue)")
    args = parser.parse_args(argv)

    X = walks(args.n_items, args.length)
    print(f"{len(X):,} interactions, {X.user_id.nunique():,} users, {X.item_id.nunique():,} items;"
          f" peak after data {peak_mib():.0f} MiB")
    start = time.perf_counter()
    if args.steps is None:
        model = SASRecRecommender(loss=local_loss(args), epochs=1, batch_size=args.batch_size,
                                  max_len=args.length, random_state=0)
        model.fit(X)
        fit_s = time.perf_counter() - start
        recs = model.recommend(X[X.user_id < 1000], k=10)
        print(f"fit {fit_s:.0f} s, loss {model.loss_curve_[0]:.3f}; recommend ok "
              f"({len(recs)} rows)")
    else:
        # the estimator's own network, batches, optimiser and loop, cut after a few steps
        model = SASRecRecommender(loss=local_loss(args), batch_size=args.batch_size,
                                  max_len=args.length, random_state=0)
        data, _ = Interactions.from_frame(check_interactions(X), "user_id", "item_id",
                                          "timestamp")
        torch.manual_seed(0)
        network, (stage,) = model._build(data, np.random.default_rng(0))
        cut = Stage("steps", 1, lambda epoch: itertools.islice(stage.batches(epoch),
                                                               args.steps))
        clock = _StepClock()
        result = train(network, [cut], model._optimizer(network), callbacks=[clock])
        steps = np.diff(clock.times)
        print(f"{args.steps} steps in {time.perf_counter() - start:.0f} s; first step "
              f"{steps[0]:.2f} s, median of the rest {np.median(steps[1:]):.3f} s/step; "
              f"mean loss {result.loss_curve[0]:.3f}")
    positions = args.batch_size * (args.length - 1)
    print(f"loss={args.loss}: peak resident memory {peak_mib():.0f} MiB "
          f"(full-CE logits of one batch alone: {positions} x {args.n_items:,} floats = "
          f"{positions * args.n_items * 4 / 2**30:.1f} GiB)")


if __name__ == "__main__":
    main()
