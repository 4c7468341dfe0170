r"""A resumable campaign: named configurations x seeds on one split, one row per finished fit.

    python benchmarks/campaign.py benchmarks/plans/alignment-stage1.json \
        --data-home ../shared/data --out benchmarks/results/alignment-stage1

The plan is a JSON file::

    {"dataset": "amazon-beauty", "split": "validation", "seeds": [0],
     "runs": {"defaults": {},
              "none": {"alignment": "none"},
              "sasrec": {"model": "SASRec"}}}

Each run is a model (``"model"``: ``CREATE``, the default, ``SASRec`` or ``LightGCN``) and its
parameters (the estimator's defaults for the rest, ``random_state`` set to the seed; a part's
options as ``alignment__temperature``, as in ``set_params``). ``"split"`` picks
the protocol of :func:`~skcreate.data.model_selection.global_temporal_split` (quantile 0.8, then
0.9): ``"validation"`` fits on the inner train and scores the validation users, never reading
the test split (use it to choose); ``"test"`` fits on the outer train and scores the test users
(use it once per reported configuration).

Every finished fit is appended to ``<out>.csv`` as one line in one write: a campaign can be
stopped at any time, and restarted it skips every (run, seed) already there. A run whose
parameters changed since its row was written is refused: give the new configuration a new
name. ``<out>.md`` tabulates mean ± std over seeds in %. ``--only`` restricts to some runs.
"""

import argparse
import csv
import io
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from skcreate import CREATERecommender, LightGCNRecommender, SASRecRecommender
from skcreate.apps.comparison import evaluate_model
from skcreate.apps.migration import respell
from skcreate.data.model_selection import GlobalTemporalSplit, global_temporal_split

from _common import git_commit, load_data, pyplot

MODELS = {"CREATE": CREATERecommender, "SASRec": SASRecRecommender,
          "LightGCN": LightGCNRecommender}
METRICS = ("ndcg@10", "recall@10", "coverage@10", "ndcg@100")
COLUMNS = ["run", "seed", "model", "params", "dataset", "split",
           *METRICS, "epochs", "fit_s", "command", "commit", "machine", "load", "finished"]


def read_plan(path):
    """The plan's dataset, split, seeds and runs ``{name: (model, params)}``, checked."""
    plan = json.loads(Path(path).read_text())
    unknown = set(plan) - {"dataset", "split", "seeds", "runs"}
    if unknown:
        raise ValueError(f"{path}: unknown plan keys {sorted(unknown)}.")
    if plan.get("split") not in ("validation", "test"):
        raise ValueError(f"{path}: 'split' must be 'validation' or 'test', got "
                         f"{plan.get('split')!r}.")
    runs = {}
    for name, spec in plan["runs"].items():
        spec = dict(spec)
        model = spec.pop("model", "CREATE")
        if model not in MODELS:
            raise ValueError(f"{path}: run {name!r} has model {model!r}; choose from "
                             f"{sorted(MODELS)}.")
        # unknown parameters fail here, before any fit
        MODELS[model]().set_params(**spec)
        runs[name] = (model, spec)
    return plan["dataset"], plan["split"], [int(s) for s in plan["seeds"]], runs


def read_results(path):
    """Finished rows; a last line cut off by a stopped campaign is dropped from the file."""
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)
    if b"\n" not in data:
        # empty, or its first line (header and first row) was cut off
        return pd.DataFrame(columns=COLUMNS)
    # run names as written ("01" is not 1)
    return pd.read_csv(path, keep_default_na=False, dtype={"run": str})


def append_row(path, row):
    """Append one CSV line (with the header if the file is new) in a single write."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    if not path.exists() or path.stat().st_size == 0:
        writer.writeheader()
    writer.writerow(row)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, buffer.getvalue().encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def splits(X, split):
    """(train, evaluation users' rows) of the plan's protocol."""
    if split == "validation":
        train, validation, _ = global_temporal_split(X, 0.8, 0.9)
        return train, validation
    train_idx, test_idx = next(GlobalTemporalSplit(0.8).split(X))
    return X.iloc[train_idx], X.iloc[test_idx]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("plan", help="the plan's JSON file")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--out", required=True, help="results prefix (<out>.csv, <out>.md)")
    parser.add_argument("--only", nargs="+", default=None, metavar="RUN")
    parser.add_argument("--figure", nargs="+", default=[], metavar="PARAM",
                        help="plot NDCG@10 against each PARAM over the runs that change it "
                        "alone, with the defaults' run at the default value (<out>.png)")
    args = parser.parse_args(argv)
    dataset, split, seeds, runs = read_plan(args.plan)
    if args.only is not None:
        missing = set(args.only) - set(runs)
        if missing:
            raise SystemExit(f"--only: runs {sorted(missing)} are not in {args.plan}.")
        runs = {name: runs[name] for name in args.only}
    warnings.filterwarnings("ignore", message=".*unseen at fit.*")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # appended, not with_suffix: a prefix such as "lr0.001" keeps its dot
    results_csv = out.with_name(out.name + ".csv")
    done = read_results(results_csv)
    for name, (model_name, params) in runs.items():
        recorded = done.loc[done["run"] == name, "params"]
        # rows written before a parameter was renamed compare in today's spelling
        spelt = [json.dumps(respell(MODELS[model_name], json.loads(row)), sort_keys=True)
                 for row in recorded]
        if any(row != json.dumps(params, sort_keys=True) for row in spelt):
            raise SystemExit(f"run {name!r}: its parameters differ from the rows already in "
                             f"{results_csv}; give the new configuration a new name.")
    finished = set(zip(done["run"].astype(str), done["seed"].astype(int)))
    command = " ".join(["python", "benchmarks/campaign.py"] +
                       list(sys.argv[1:] if argv is None else argv))
    X = load_data(dataset, args.data_home)
    train, evaluation = splits(X, split)
    catalog = X["item_id"].nunique()
    # seeds outermost: a stopped campaign has every run at the first seeds
    for seed in seeds:
        for name, (model_name, params) in runs.items():
            if (name, seed) in finished:
                continue
            model = MODELS[model_name]().set_params(**params, random_state=seed)
            metrics = evaluate_model(model, train, evaluation, catalog)
            row = {"run": name, "seed": seed, "model": model_name,
                   "params": json.dumps(params, sort_keys=True), "dataset": dataset,
                   "split": split, **{m: round(100 * metrics[m], 4) for m in METRICS},
                   "epochs": metrics.get("epochs", ""), "fit_s": round(metrics["fit_s"], 1),
                   "command": command, "commit": git_commit(),
                   "machine": f"{platform.machine()}, {torch.get_num_threads()} torch "
                              f"threads, torch {torch.__version__}",
                   "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                   "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
            append_row(results_csv, row)
            print(f"{name} seed {seed}: {split} NDCG@10 {row['ndcg@10']:.2f} % "
                  f"({row['fit_s']:.0f} s)", file=sys.stderr, flush=True)
    results = read_results(results_csv)
    write_table(results, out.with_name(out.name + ".md"))
    if args.figure:
        plot_sweeps(results, args.figure, out.with_name(out.name + ".png"))


def write_table(results, path):
    """Mean ± std over seeds per run, in the order the runs first finished."""
    def spread(values):
        return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}" if len(values) > 1 \
            else f"{values.mean():.2f}"

    if results.empty:
        return
    rows = []
    for name, part in results.groupby("run", sort=False):
        rows.append(f"| {name} | {part.model.iloc[0]} | `{part.params.iloc[0]}` | " +
                    " | ".join(spread(part[m]) for m in METRICS) +
                    f" | {part.fit_s.mean():.0f} | {', '.join(map(str, sorted(part.seed)))} |")
    split = results.split.iloc[-1]
    protocol = ("scored on the validation users, trained on the inner train"
                if split == "validation" else "trained on the outer train, scored on the test "
                "users")
    lines = [
        f"# {results.dataset.iloc[-1]}, {split} split (metrics in %)", "",
        f"Command: `{results.command.iloc[-1]}`", "",
        f"Machine: {results.machine.iloc[-1]}; commit and load average of each run in the CSV.",
        f"Global temporal split 0.8 (test), then 0.9 inside train (validation); {protocol}.",
        "",
        "| run | model | parameters | " + " | ".join(METRICS) +
        " | fit s | seeds |",
        "|---" * (5 + len(METRICS)) + "|", *rows]
    path.write_text("\n".join(lines) + "\n")


def sweep_points(results, param):
    """``{value: NDCG@10 values over seeds}`` of the CREATE runs that set ``param`` alone; the
    defaults' run (no parameter set) stands at the default value, ``warmup_epochs="auto"`` at
    the epochs it resolves to."""
    defaults = CREATERecommender()
    default = (defaults._warmup_epochs if param == "warmup_epochs"
               else defaults.get_params()[param])
    points = {}
    for params, part in results[results.model == "CREATE"].groupby("params", sort=False):
        params = json.loads(params)
        if set(params) <= {param}:
            value = params.get(param, default)
            points.setdefault(str(value), []).extend(part["ndcg@10"])
    return points, str(default)


def _value_order(value):
    # numbers in order, then the rest (a default such as "auto") by name
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def plot_sweeps(results, params, path):
    """One panel per parameter: validation or test NDCG@10 (mean ± std over seeds)."""
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, len(params), figsize=(4 * len(params), 3.2), squeeze=False)
    for ax, param in zip(axes[0], params):
        points, default = sweep_points(results, param)
        values = sorted(points, key=_value_order)
        means = [np.mean(points[v]) for v in values]
        spread = [np.std(points[v], ddof=1) if len(points[v]) > 1 else 0 for v in values]
        ax.errorbar(values, means, yerr=spread, marker="o", capsize=3)
        if default in points:
            ax.plot([default], [np.mean(points[default])], marker="*", markersize=14,
                    linestyle="", color="C1", label="defaults")
            ax.legend()
        ax.set(title=param, xlabel=param,
               ylabel=f"{results.split.iloc[-1]} NDCG@10 (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
