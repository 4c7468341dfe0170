r"""Milliseconds and minor page faults per training step, by tenth of each epoch, for one fit.

Tells a cost spread over an epoch's steps (page faults of memory the allocator returned to
the system) from one at its start (a refresh, a compilation). The eighteenth session's
LightGCN fit at 3M interactions (results README):

    python benchmarks/epoch_steps.py --model LightGCN --interactions 3000000 --items 300000

Run it again with ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184`` in
the environment to see the faults of glibc's default thresholds go.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import add_synthetic_arguments, machine, synthetic_data  # noqa: E402

from skcreate import LightGCNRecommender, UltraGCNRecommender  # noqa: E402
from skcreate.training import Callback  # noqa: E402

MODELS = {"LightGCN": LightGCNRecommender, "UltraGCN": UltraGCNRecommender}


class StepClock(Callback):
    """The time and the process's minor page faults at every step's end; epoch ends."""

    def __init__(self):
        self.times, self.faults, self.epoch_ends = [], [], []

    def on_step_end(self, step, terms):
        self.times.append(time.perf_counter())
        self.faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)

    def on_epoch_end(self, record):
        self.epoch_ends.append(len(self.times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=list(MODELS), default="LightGCN")
    add_synthetic_arguments(parser)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    X = synthetic_data(args)
    clock = StepClock()
    model = MODELS[args.model](epochs=args.epochs, random_state=0)
    model.set_params(trainer__callbacks=[clock])
    model.fit(X)
    command = " ".join(sys.argv[1:] if argv is None else argv)
    # the allocator's settings, where the environment sets them
    allocator = "".join(f"{name}={value} " for name, value in sorted(os.environ.items())
                        if name.startswith("MALLOC_"))
    print(f"`{allocator}python benchmarks/epoch_steps.py {command}`\n\n{len(X):,} interactions; "
          f"{machine()}; epoch seconds {[round(s, 1) for s in model.epoch_seconds_]}\n\n"
          "| epoch | measure | by tenth of the epoch's steps |\n|---|---|---|")
    times, faults = np.diff(clock.times) * 1000, np.diff(clock.faults)
    start = 0
    for epoch, end in enumerate(clock.epoch_ends, 1):
        # the differences within the epoch: its first step's has no start here
        steps = np.array_split(np.arange(start, end - 1), 10)
        start = end
        for name, values, fmt in [("ms per step", times, "{:.1f}"),
                                  ("minor faults per step", faults, "{:,.0f}")]:
            cells = ", ".join(fmt.format(values[part].mean()) for part in steps if len(part))
            print(f"| {epoch} | {name} | {cells} |")


if __name__ == "__main__":
    main()
