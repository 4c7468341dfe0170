r"""partial_fit against a full refit, on the Table 2 protocol's train part.

The train part (global temporal split at 0.8) is split again by time at its 0.9 quantile: a
model is fitted on the first 90 % and updated with ``partial_fit`` on the last 10 %; the
full refit is fitted on the whole train part. Both are scored on the test users (NDCG@10,
Recall@10, %). Also counted: the items that appear only in the last 10 %, how many of them
are recommended to some test user (top 10) after the update, and before it (never: they are
not in the catalogue).

Resumable: one row per (model, seed, variant) in ``<out>.csv``, appended as it finishes;
rows already there are skipped.

    python benchmarks/partial_fit.py --data-home ../shared/data \
        --out benchmarks/results/partial-fit-beauty --models SASRec CREATE --seeds 0 1 2
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import load_data  # noqa: E402

import skcreate  # noqa: E402
from skcreate.data.metrics import evaluate  # noqa: E402
from skcreate.data.model_selection import GlobalTemporalSplit, split_history_target  # noqa: E402

COLUMNS = ["model", "seed", "variant", "ndcg@10", "recall@10", "coverage@10", "seconds",
           "base_seconds", "new_items", "new_items_recommended",
           "new_items_recommended_before", "machine", "params", "command"]
MODELS = {"SASRec": skcreate.SASRecRecommender, "CREATE": skcreate.CREATERecommender,
          "ALS": skcreate.ALSRecommender, "LightGCN": skcreate.LightGCNRecommender}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--out", required=True, help="results prefix (<out>.csv, <out>.md)")
    parser.add_argument("--models", nargs="+", default=["SASRec", "CREATE"],
                        choices=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--update-epochs", type=int, default=None,
                        help="epochs of the update (default: the model's epochs)")
    parser.add_argument("--quantile", type=float, default=0.9)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*(unseen at fit|served by popularity).*")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv = out.with_name(out.name + ".csv")
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=["model", "seed",
                                                                       "variant"])
    finished = set(zip(done["model"], done["seed"].astype(int), done["variant"]))
    command = " ".join(["python", "benchmarks/partial_fit.py"] +
                       list(sys.argv[1:] if argv is None else argv))
    X = load_data(args.dataset, args.data_home)
    train_idx, test_idx = next(GlobalTemporalSplit(0.8).split(X))
    train = X.iloc[train_idx]
    history, targets = split_history_target(X.iloc[test_idx])
    cut = train["timestamp"].quantile(args.quantile)
    first, last = train[train["timestamp"] <= cut], train[train["timestamp"] > cut]
    new_items = set(last["item_id"]) - set(first["item_id"])
    catalog = X["item_id"].nunique()

    def score(model):
        recs = model.recommend(history, k=10)
        metrics = evaluate(recs, targets, catalog, ks=(10,))
        return ({name: round(100 * value, 4) for name, value in metrics.items()},
                int(recs["item_id"].isin(new_items).groupby(recs["item_id"]).any().sum()))

    for seed in args.seeds:
        for name in args.models:
            for variant in ("refit", "update"):
                if (name, seed, variant) in finished:
                    continue
                model = MODELS[name](random_state=seed)
                row = {"model": name, "seed": seed, "variant": variant}
                start = time.perf_counter()
                if variant == "refit":
                    model.fit(train)
                    row["seconds"] = round(time.perf_counter() - start, 1)
                else:
                    model.fit(first)
                    row["base_seconds"] = round(time.perf_counter() - start, 1)
                    row["new_items_recommended_before"] = score(model)[1]
                    start = time.perf_counter()
                    model.partial_fit(last, epochs=args.update_epochs)
                    row["seconds"] = round(time.perf_counter() - start, 1)
                metrics, recommended = score(model)
                row.update(metrics, new_items=len(new_items),
                           new_items_recommended=recommended,
                           machine=f"{platform.machine()}, {torch.get_num_threads()} torch "
                                   f"threads, load {os.getloadavg()[0]:.1f}",
                           params=json.dumps({"update_epochs": args.update_epochs,
                                              "quantile": args.quantile}),
                           command=command)
                frame = pd.DataFrame([row]).reindex(columns=COLUMNS)
                frame.to_csv(csv, mode="a", header=not csv.exists(), index=False)
                print(frame.drop(columns=["command", "machine", "params"]).to_string(
                    index=False), flush=True)
    write_table(pd.read_csv(csv), out.with_name(out.name + ".md"))


def write_table(results, path):
    lines = ["# partial_fit against a full refit", "",
             "Fit on the first 90 % of the train part and partial_fit on the last 10 % "
             "(update), or fit on all of it (refit); test users, metrics in %, mean ± std "
             "over seeds; seconds of the refit and of the update alone.", "",
             "| model | variant | seeds | NDCG@10 | Recall@10 | seconds | new items "
             "recommended |", "|---|---|---|---|---|---|---|"]
    for (model, variant), rows in results.groupby(["model", "variant"], sort=False):
        def spread(column):
            values = rows[column].astype(float)
            return f"{values.mean():.2f} ± {values.std(ddof=0):.2f}"
        lines.append(f"| {model} | {variant} | {len(rows)} | {spread('ndcg@10')} | "
                     f"{spread('recall@10')} | {rows['seconds'].mean():.0f} | "
                     f"{rows['new_items_recommended'].mean():.0f} of "
                     f"{rows['new_items'].iloc[0]} |")
    lines += ["", f"Machine: {results.machine.iloc[-1]}.", "",
              f"Command: `{results.command.iloc[-1]}`", ""]
    Path(path).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
