r"""Milliseconds per training step of the default models at one data size, in one process.

For each ``--models`` name the estimator (its defaults, ``random_state=0``) is fitted on
``make_interactions`` data and stopped after ``--steps`` steps of its first stage (CREATE's
warm-up, or its joint stage without one); the report is the mean wall time of the steps after
the first ``--skip`` (past an epoch's start: the historical layers' refresh, the first
allocations). Cheaper than timing epochs, and as telling for their ratios: a CREATE joint
epoch against SASRec's is the ratio of their steps (both take one step per batch of users).
``--repeat`` runs the list again, for the spread between identical runs.

    python benchmarks/step_times.py --interactions 1000000 --items 100000 \
        --models CREATE-SCE-joint SASRec-SCE --repeat 2
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import (StepsDone, StepTimer, add_step_arguments, machine,  # noqa: E402
                     step_data)

from skcreate import (CREATERecommender, LightGCNRecommender, SASRecRecommender,  # noqa: E402
                      UltraGCNRecommender)

#: name -> (estimator factory, the stage whose steps are timed)
MODELS = {
    "LightGCN": (LightGCNRecommender, "train"),
    "UltraGCN": (UltraGCNRecommender, "train"),
    "SASRec-SCE": (lambda **kw: SASRecRecommender(loss="sce", **kw), "train"),
    "CREATE-SCE-warmup": (lambda **kw: CREATERecommender(loss="sce", warmup_epochs=1, **kw),
                          "warmup"),
    # the warm-up step before "auto" took the light one on large graphs
    "CREATE-SCE-warmup-full": (lambda **kw: CREATERecommender(
        loss="sce", warmup_epochs=1, warmup_graph_step="full", **kw), "warmup"),
    "CREATE-SCE-joint": (lambda **kw: CREATERecommender(loss="sce", warmup_epochs=0, **kw),
                         "joint"),
    # the joint step before "auto" took the light one on large graphs
    "CREATE-SCE-joint-full": (lambda **kw: CREATERecommender(
        loss="sce", warmup_epochs=0, joint_graph_step="full", **kw), "joint"),
}


def time_steps(name, X, n_steps, skip):
    """Mean ms per step of model ``name`` over steps ``skip..n_steps`` of its stage."""
    make, stage = MODELS[name]
    timer = StepTimer(n_steps)
    model = make(epochs=1, random_state=0)
    model.set_params(trainer__callbacks=[timer])
    try:
        model.fit(X)
    except StepsDone:
        pass
    if len(timer.times) < n_steps:
        raise SystemExit(f"{name}: its {stage} stage has {len(timer.times)} steps: lower "
                         "--steps")
    return 1000 * (timer.times[-1] - timer.times[skip - 1]) / (n_steps - skip)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_step_arguments(parser, steps=60, skip=10)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    X = step_data(parser, args)
    command = " ".join(sys.argv[1:] if argv is None else argv)
    print(f"`python benchmarks/step_times.py {command}`\n\n{len(X):,} interactions; "
          f"steps {args.skip + 1}..{args.steps} of each fit; {machine()}\n\n"
          "| model | stage | ms per step |\n|---|---|---|", flush=True)
    rows = []
    for _ in range(args.repeat):
        for name in args.models:
            ms = time_steps(name, X, args.steps, args.skip)
            rows.append({"model": name, "ms": ms})
            print(f"| {name} | {MODELS[name][1]} | {ms:.1f} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
