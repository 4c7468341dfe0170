r"""CREATE ablations: vary one parameter at a time around a base configuration.

    python benchmarks/ablation.py --dataset amazon-beauty --data-home ../shared/data \
        --sweep warmup_epochs=0,10,20,50 --sweep alignment=barlow,contrastive,none \
        --sweep alignment_weight=0,0.1,0.2,0.5,1 --sweep graph_last_frac=0.2,0.4,0.7,1.0 \
        --out benchmarks/results/ablation-beauty

The base configuration (CREATE's defaults, updated by ``--set``) is fitted once per seed; a
swept value equal to the base's reuses that fit. With several ``--seeds`` every configuration
is fitted once per seed and the table gives mean ± standard deviation over them. Writes
``<out>.csv`` (one row per configuration and seed), ``<out>.md`` and ``<out>.png`` (one panel
per swept parameter, test NDCG@10 against the value with its seed spread, the base
configuration as a star and SASRec as a horizontal reference line).
"""

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd
from sklearn.base import clone

from skcreate import CREATERecommender, SASRecRecommender
from skcreate.apps.comparison import evaluate_model
from skcreate.data.model_selection import GlobalTemporalSplit

from _common import add_data_arguments, load_data, parse_value, pyplot


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--sweep", action="append", default=[], metavar="PARAM=V1,V2,...")
    parser.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                        help="base CREATE parameters (also given to the SASRec reference)")
    parser.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default="ablation")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*unseen at fit.*")

    X = load_data(args.dataset, args.data_home)
    train_idx, test_idx = next(GlobalTemporalSplit(0.8).split(X))
    train, test = X.iloc[train_idx], X.iloc[test_idx]
    catalog = X["item_id"].nunique()
    base = dict(kv.split("=", 1) for kv in args.set)
    base = {k: parse_value(v) for k, v in base.items()}
    sasrec_params = {k: v for k, v in base.items() if k in SASRecRecommender().get_params()}

    rows = []

    def run(name, model, seed, param="", value=""):
        row = {"sweep": param, "value": value, "model": name, "seed": seed}
        row.update(evaluate_model(model, train, test, catalog))
        rows.append(row)
        label = f"{param}={value}" if param else "base"
        print(f"{name} {label} seed {seed}: ndcg@10 {100 * row['ndcg@10']:.2f} % "
              f"({row['fit_s']:.0f} s)", file=sys.stderr, flush=True)

    base_params = CREATERecommender().set_params(**base).get_params()
    sweeps = []
    for sweep in args.sweep:
        param, values = sweep.split("=", 1)
        if param not in base_params:
            raise ValueError(f"--sweep {param}: CREATERecommender has no parameter {param!r}.")
        sweeps.append((param, [parse_value(v) for v in values.split(",")]))

    for seed in args.seeds:
        run("SASRec", SASRecRecommender(random_state=seed, **sasrec_params), seed)
        base_model = CREATERecommender().set_params(**base, random_state=seed)
        run("CREATE", base_model, seed)
        base_row = rows[-1]
        for param, values in sweeps:
            for value in values:
                if value == base_params[param]:
                    rows.append({**base_row, "sweep": param, "value": value})
                else:
                    run("CREATE", clone(base_model).set_params(**{param: value}), seed, param,
                        value)

    results = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results.to_csv(out.with_suffix(".csv"), index=False)
    table = summary(results)
    markdown = "| " + " | ".join(table.columns) + " |\n" + "|---" * len(table.columns) + "|\n"
    markdown += "\n".join("| " + " | ".join(map(str, row)) + " |" for row in table.values)
    header = (f"{args.dataset}, global temporal split 0.8, seeds {args.seeds}, base "
              f"{base or 'defaults'}; metrics in %" +
              (", mean ± std over seeds" if len(args.seeds) > 1 else "") + "\n\n")
    out.with_suffix(".md").write_text(header + markdown + "\n")
    print(header + markdown)
    plot(results, base_params, out.with_suffix(".png"))


METRICS = ("ndcg@10", "recall@10", "coverage@10", "ndcg@100")


def summary(results):
    """One row per configuration: metrics in % (mean ± std with several seeds), fit seconds."""
    keys = ["model", "sweep", "value"]
    frame = results.assign(value=results["value"].astype(str))
    groups = frame.groupby(keys, sort=False)
    table = groups[list(METRICS) + ["fit_s"]].mean().reset_index()
    spread = groups[list(METRICS)].std(ddof=1).reset_index(drop=True)
    for col in METRICS:
        mean = (100 * table[col]).round(2).astype(str)
        table[col] = mean if frame["seed"].nunique() == 1 else \
            mean + " ± " + (100 * spread[col]).round(2).astype(str)
    table["fit_s"] = table["fit_s"].round(0)
    table.loc[(table.model == "CREATE") & (table.sweep == ""), "sweep"] = "(base)"
    return table


def plot(results, base_params, path):
    plt = pyplot()
    if plt is None:
        return
    sweeps = [s for s in results["sweep"].unique() if s]
    if not sweeps:
        return
    ndcg = 100 * results["ndcg@10"]
    reference = ndcg[results.model == "SASRec"].mean()
    base_rows = (results.model == "CREATE") & (results.sweep == "")
    base = ndcg[base_rows].mean()
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4 * len(sweeps), 3.2), squeeze=False)
    for ax, sweep in zip(axes[0], sweeps):
        # values as text: None is a value here, and groupby would drop it
        part = results[results.sweep == sweep].assign(ndcg=ndcg, key=lambda f: f.value.map(str))
        points = {value: (rows["ndcg"].mean(), rows["ndcg"].std(ddof=1) if len(rows) > 1 else 0)
                  for value, rows in part.groupby("key", sort=False)}
        points.setdefault(str(base_params[sweep]), (base, ndcg[base_rows].std(ddof=1)
                                                    if base_rows.sum() > 1 else 0))
        values = list(points)
        try:
            values.sort(key=float)
        except ValueError:
            pass
        ax.errorbar(values, [points[v][0] for v in values],
                    yerr=[points[v][1] for v in values], marker="o", capsize=3, label="CREATE")
        ax.plot([str(base_params[sweep])], [base], marker="*", markersize=14, linestyle="",
                color="C1", label="base")
        ax.axhline(reference, color="grey", linestyle="--", label="SASRec")
        ax.set(title=sweep, ylabel="test NDCG@10 (%)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
