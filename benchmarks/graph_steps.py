r"""Milliseconds per training step of LightGCN's historical mode, and the rows a step reads.

What an epoch's time is made of at one data size: for each ``--fanouts`` value, LightGCN
(``propagation="historical", row_sparse=True``) is fitted on ``make_interactions`` data and
stopped after ``--steps`` steps; the report is the mean wall time of the steps after the first
``--skip`` (past the epoch's refresh and the first steps' allocations) and the mean number of
distinct layer-0 rows those steps read (the step's own rows and its sampled neighbours' and
walks' rows: what its gathers, backward and LazyAdam update cost). ``--walks`` times each
fanout with those numbers of random walks per node for layers 2..K (default: the fanout's).

    python benchmarks/graph_steps.py --interactions 1000000 --items 100000 --fanouts 1 2 3 10
    python benchmarks/graph_steps.py --interactions 1000000 --items 100000 --fanouts 10 \
        --walks 1 2 3 10
"""

import argparse
import sys
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).parent))
from _common import (StepsDone, StepTimer, add_step_arguments, machine,  # noqa: E402
                     step_data)

from skcreate import LightGCNRecommender  # noqa: E402
from skcreate.nn import LightGCNEncoder  # noqa: E402


def time_steps(X, fanout, walks, batch_size, n_steps, skip, seed):
    """(ms per step, distinct layer-0 rows per step) over steps ``skip..n_steps``."""
    timer = StepTimer(n_steps)
    model = LightGCNRecommender(propagation="historical", row_sparse=True, fanout=fanout,
                                walks=walks, batch_size=batch_size, epochs=1,
                                random_state=seed)
    model.set_params(trainer__callbacks=[timer])
    rows = []
    reads = LightGCNEncoder._layer0_rows

    def counting_reads(encoder, nodes):
        rows.append(len(nodes))
        return reads(encoder, nodes)

    with mock.patch.object(LightGCNEncoder, "_layer0_rows", counting_reads):
        try:
            model.fit(X)
        except StepsDone:
            pass
    if len(timer.times) <= skip:
        raise SystemExit(f"an epoch has {len(timer.times)} steps: lower --skip")
    seconds = (timer.times[-1] - timer.times[skip - 1]) / (len(timer.times) - skip)
    counted = rows[skip:len(timer.times)]
    return 1000 * seconds, sum(counted) / len(counted)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_step_arguments(parser, steps=100, skip=20)
    parser.add_argument("--fanouts", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--walks", type=int, nargs="+", default=[None],
                        help="random walks per node for layers 2..K (default: the fanout)")
    parser.add_argument("--batch-size", type=int, default=2048)
    args = parser.parse_args(argv)
    X = step_data(parser, args)
    print(f"`python benchmarks/graph_steps.py {' '.join(sys.argv[1:] if argv is None else argv)}`"
          f"\n\n{len(X):,} interactions, batch {args.batch_size}; {machine()}\n\n"
          "| fanout | walks | ms per step | distinct rows per step |\n|---|---|---|---|",
          flush=True)
    for fanout in args.fanouts:
        for walks in args.walks:
            ms, rows = time_steps(X, fanout, walks, args.batch_size, args.steps, args.skip,
                                  args.seed)
            print(f"| {fanout} | {walks or fanout} | {ms:.1f} | {rows:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
