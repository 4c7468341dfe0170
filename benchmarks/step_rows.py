r"""Rows the optimiser updates per step and per epoch of the scalable graph models, by size.

Why an epoch of the scalable graph branch grows faster than its interactions (issue 29): a
step reads a bounded number of layer-0 rows (its nodes and their sampled neighbours and walks)
but updates each distinct row once, so on a small graph, where the reads repeat rows, a step
costs less than on a large one, until the reads stop repeating. For each ``--sizes`` shape of
``benchmarks/size_sweep.py`` (the same ``make_interactions`` data) and each ``--models`` name
of its (by default its scalable models, "historical" at every size), one epoch is fitted
(CREATE: one warm-up epoch) and LazyAdam's row-sparse updates counted:
distinct rows per step and row updates per epoch, beside the epoch's seconds (the first
epoch: it includes the start-up, about half a second, and the historical layers' refresh)
and the seconds per row update.

    python benchmarks/step_rows.py --sizes 100000:10000,300000:30000,1000000:100000,3000000:300000 \
        --out benchmarks/results/step-rows
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402
from size_sweep import MODELS, parse_sizes, sweep_model  # noqa: E402

from skcreate.data.datasets import make_interactions  # noqa: E402
from skcreate.nn import GraphEncoder  # noqa: E402
from skcreate.nn.optim import LazyAdam  # noqa: E402
from skcreate.training import Callback  # noqa: E402

#: the scalable graph models of the sweep (a step's reads bounded whatever the graph's size)
SCALABLE = ["LightGCN-historical", "CREATE-warmup-historical",
            "CREATE-warmup-historical-light"]


class RowCounter(Callback):
    """Distinct rows LazyAdam updated in each step of the first epoch (then stops the fit)."""

    def __init__(self):
        self.steps = []
        self._rows = 0

    def add(self, n_rows):
        self._rows += n_rows

    def on_step_end(self, step, terms):
        self.steps.append(self._rows)
        self._rows = 0

    def on_epoch_end(self, record):
        return True


def count_rows(name, X):
    """Distinct rows per step of model ``name``'s first epoch on ``X``, and its graph size."""
    counter = RowCounter()
    update = LazyAdam._sparse_update

    def counted(param, state, group, size, root_correction):
        # the update coalesces the gradient first: its rows are the distinct rows it updates
        param.grad = param.grad.coalesce()
        counter.add(param.grad.indices().shape[1])
        update(param, state, group, size, root_correction)

    model, _, large_graph = sweep_model(name, {"epochs": 1}, 0)
    # the counter stops the fit after its first epoch (CREATE: the warm-up's)
    model.set_params(trainer__callbacks=[counter])
    default = GraphEncoder.large_graph
    GraphEncoder.large_graph = large_graph or default
    LazyAdam._sparse_update = staticmethod(counted)
    try:
        model.fit(X)
    finally:
        LazyAdam._sparse_update = staticmethod(update)
        GraphEncoder.large_graph = default
    if not any(counter.steps):
        raise SystemExit(f"{name}: no row-sparse update at {len(X):,} interactions (its "
                         "graph is below the scalable mode's threshold)")
    encoder = model.module_.graph.encoder if hasattr(model.module_, "graph") \
        else model.module_.encoder
    return (np.array(counter.steps), encoder.n_users + encoder.item_table.n_items,
            model.epoch_seconds_[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=parse_sizes, required=True, metavar="N:ITEMS,...")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=SCALABLE)
    parser.add_argument("--mean-length", type=float, default=20)
    parser.add_argument("--out", required=True, help="results prefix (<out>.csv, <out>.md)")
    args = parser.parse_args(argv)
    rows = []
    for n_interactions, n_items in args.sizes:
        X = make_interactions(n_users=max(1, round(n_interactions / args.mean_length)),
                              n_items=n_items, mean_length=args.mean_length, random_state=0)
        for name in args.models:
            steps, nodes, seconds = count_rows(name, X)
            row = {"requested": f"{n_interactions}:{n_items}", "model": name,
                   "interactions": len(X), "nodes": nodes, "steps": len(steps),
                   "rows_per_step": steps.mean(), "row_updates": int(steps.sum()),
                   "s_per_epoch": seconds, "us_per_row_update": 1e6 * seconds / steps.sum()}
            rows.append(row)
            print(row, flush=True)
            pd.DataFrame(rows).to_csv(f"{args.out}.csv", index=False)
    table = pd.DataFrame(rows)
    command = " ".join(sys.argv[1:] if argv is None else argv)
    lines = [f"`python benchmarks/step_rows.py {command}`", "", machine(), "",
             "| model | interactions | nodes | steps | distinct rows a step | share of the "
             "nodes | row updates an epoch | s/epoch | µs per row update |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in table.to_dict("records"):
        lines.append(f"| {row['model']} | {row['interactions']:,} | {row['nodes']:,} | "
                     f"{row['steps']} | {row['rows_per_step']:,.0f} | "
                     f"{row['rows_per_step'] / row['nodes']:.2f} | {row['row_updates']:,} | "
                     f"{row['s_per_epoch']:.2f} | {row['us_per_row_update']:.2f} |")
    for name, group in table.groupby("model", sort=False):
        if len(group) > 1:
            x = np.log(group.interactions)
            updates, seconds = (np.polyfit(x, np.log(group[column]), 1)[0]
                                for column in ("row_updates", "s_per_epoch"))
            lines.append(f"\n{name}, log-log slopes over the sizes (least squares): row "
                         f"updates an epoch {updates:.2f}, seconds an epoch {seconds:.2f}.")
    Path(f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return table


if __name__ == "__main__":
    main()
