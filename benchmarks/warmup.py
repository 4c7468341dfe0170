r"""CREATE's warm-up length on validation data, for short and default joint budgets.

    python benchmarks/warmup.py --data-home ../shared/data --datasets movielens-100k \
        amazon-beauty --plan 2:0,6,20,60 5:0,15,60 --seeds 0 1 2 \
        --out benchmarks/results/warmup

``--plan EPOCHS:W1,W2,...`` fits ``epochs=EPOCHS`` with ``warmup_epochs`` W1, W2, ...

Every run fits CREATE (its defaults, but ``epochs`` and ``warmup_epochs``) on the inner train
of :func:`~skcreate.data.model_selection.global_temporal_split` (quantile 0.8, validation 0.9) and
scores next-item NDCG@10 and Recall@10 on the validation users: the test split is never read.
Each finished run is appended to ``<out>.csv`` at once; a restarted run skips what is there,
so the script can be stopped at any time. ``<out>.md`` tabulates mean ± std over seeds.
"""

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import torch

from skcreate import CREATERecommender
from skcreate.apps.comparison import evaluate_model
from skcreate.data.model_selection import global_temporal_split

from _common import git_commit, load_data

KEY = ["dataset", "epochs", "warmup", "seed"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["movielens-100k", "amazon-beauty"])
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--plan", nargs="+", default=["2:0,6,20,60", "5:0,15,60"],
                        metavar="EPOCHS:W1,W2,...")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default="warmup")
    args = parser.parse_args(argv)
    plan = [(int(epochs), warmups.split(","))
            for epochs, _, warmups in (item.partition(":") for item in args.plan)]
    warnings.filterwarnings("ignore", message=".*unseen at fit.*")
    out = Path(args.out)
    csv = out.with_suffix(".csv")
    done = pd.read_csv(csv, dtype={"warmup": str}) if csv.exists() else pd.DataFrame(columns=KEY)
    finished = set(map(tuple, done[KEY].astype(str).to_numpy()))
    command = " ".join(["python", "benchmarks/warmup.py"] + list(sys.argv[1:] if argv is None
                                                                 else argv))
    # seeds outermost: a stopped campaign has every configuration at the first seeds
    for seed in args.seeds:
        for dataset in args.datasets:
            X = load_data(dataset, args.data_home)
            train, validation, _ = global_temporal_split(X, 0.8, 0.9)
            catalog = X["item_id"].nunique()
            for epochs, warmups in plan:
                for warmup in warmups:
                    key = (dataset, str(epochs), warmup, str(seed))
                    if key in finished:
                        continue
                    model = CREATERecommender(epochs=epochs, warmup_epochs=int(warmup),
                                              random_state=seed)
                    metrics = evaluate_model(model, train, validation, catalog)
                    stages = pd.Series(model.epoch_stages_)
                    seconds = pd.Series(model.epoch_seconds_)
                    row = dict(zip(KEY, key), **{
                        "warmup_epochs_run": model.warmup_epochs_,
                        "val_ndcg@10": 100 * metrics["ndcg@10"],
                        "val_recall@10": 100 * metrics["recall@10"],
                        "warmup_s": float(seconds[stages == "warmup"].sum()),
                        "joint_s": float(seconds[stages == "joint"].sum()),
                        "fit_s": metrics["fit_s"], "command": command, "commit": git_commit(),
                        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch "
                                   f"threads, torch {torch.__version__}",
                        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                        "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
                    pd.DataFrame([row]).to_csv(csv, mode="a", header=not csv.exists(),
                                               index=False)
                    print(f"{dataset} epochs={epochs} warmup={warmup} seed={seed}: val NDCG@10 "
                          f"{row['val_ndcg@10']:.2f} % (warm-up {row['warmup_s']:.0f} s, joint "
                          f"{row['joint_s']:.0f} s)", file=sys.stderr, flush=True)
    write_table(pd.read_csv(csv, dtype={"warmup": str}), out.with_suffix(".md"))


def write_table(results, path):
    """Mean ± std over seeds per dataset, epochs and warm-up."""
    def spread(values):
        return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}" if len(values) > 1 \
            else f"{values.mean():.2f}"

    rows = []
    for (dataset, epochs, warmup), part in results.groupby(["dataset", "epochs", "warmup"],
                                                           sort=False):
        rows.append(f"| {dataset} | {epochs} | {warmup} | {part.warmup_epochs_run.iloc[0]} | "
                    f"{spread(part['val_ndcg@10'])} | {spread(part['val_recall@10'])} | "
                    f"{part.warmup_s.mean():.0f} | {part.joint_s.mean():.0f} | "
                    f"{', '.join(map(str, sorted(part.seed)))} |")
    lines = [
        "# CREATE's warm-up on validation data", "",
        f"Command: `{results.command.iloc[-1]}`", "",
        f"Machine: {results.machine.iloc[-1]}; load averages at the end of each run in the CSV.",
        "Validation split inside train (global temporal 0.8, then 0.9); metrics in %.", "",
        "| dataset | epochs | warmup_epochs | warm-up epochs run | val NDCG@10 | val Recall@10 "
        "| warm-up s | joint s | seeds |",
        "|---|---|---|---|---|---|---|---|---|", *rows]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
