r"""Speed and memory of SASRec, LightGCN and CREATE against data size (synthetic interactions).

The graph branch's mini-batch propagation against full propagation, side by side, and CREATE's
joint epoch against SASRec's on Amazon Beauty (``size-sweep-graph.*``, issue 13):

    python benchmarks/size_sweep.py --sizes \
        100000:10000,300000:30000,1000000:100000,3000000:300000 \
        --models CREATE-warmup,CREATE-warmup-full,LightGCN,LightGCN-full \
        --cap LightGCN=1000000 --cap LightGCN-full=1000000 --cap CREATE-warmup-full=1000000 \
        --beauty --data-home ../shared/data --out benchmarks/results/size-sweep-graph

"-full" is the same model with ``propagation="full"`` (every step propagates the whole graph,
the path before issue 13); "CREATE-warmup" times CREATE's graph warm-up epochs alone (training
stops after them). The earlier results (``size-sweep.*``) come from (about 15 min on the
quiet 2-core benchmark machine; full CE stops at 300k interactions, where its logits already
dominate the epoch):

    python benchmarks/size_sweep.py --sizes 10000:1000,100000:10000,300000:30000,1000000:100000 \
        --models SASRec,SASRec-SCE,LightGCN,CREATE,CREATE-SCE --cap SASRec=300000 \
        --cap CREATE=300000 --out benchmarks/results/size-sweep

Sizes grow geometrically, ``interactions:items`` from 10,000:1,000 to 1,000,000:100,000, with
``interactions / mean_length`` users (``skcreate.data.datasets.make_interactions``, about 15 events
per user at the median; about three quarters of the requested items occur). Every
(size, model) runs in a fresh spawned process that fits on all the interactions, then
recommends k=100 items to a fixed sample of ``--recommend-users`` users from their histories in
one batched call. Reported: seconds of the last training epoch (the model's own; CREATE first
trains one graph-only warm-up epoch, reported apart, then its joint epochs), recommended users
per second, and the child's peak resident memory, which includes the interpreter, torch and the
data (``start_mib`` in the CSV, before fit).

The graph encoders' ``row_sparse`` and LightGCN's ``propagation`` default to "auto", which
takes the scalable mode (row-sparse, one sampled hop a step) on graphs of more than
``GraphEncoder.large_graph`` edges: "LightGCN", "UltraGCN", "CREATE", "CREATE-SCE" and
"CREATE-warmup" are those defaults ("LightGCN-walks3" too, with ``walks=3``,
"CREATE-SCE-joint-full", with ``joint_graph_step="full"``, and "CREATE-warmup-neighbours",
with ``warmup_graph_step="full"``), "-exact" the
same models as before "auto" did so (every model but these is fitted with ``large_graph``
infinite, so the earlier sweeps' names keep their meaning):

    python benchmarks/size_sweep.py --sizes 100000:10000,300000:30000,1000000:100000 \
        --models CREATE-warmup,CREATE-warmup-exact,LightGCN,LightGCN-exact --epochs 1 \
        --out benchmarks/results/size-sweep-auto

"SASRec-SCE" is SASRec with scalable cross-entropy (``loss="sce"``): full softmax CE costs
positions x catalogue, which dominates at 100k items. Writes ``<out>.csv`` (after every run,
so a stopped sweep keeps its rows), ``<out>.md`` and ``<out>.png`` (log-log, three panels),
and ``<out>.json``, the settings of its runs. Resumable: the same command again (or with
more sizes or models) keeps the rows already in ``<out>.csv`` and runs only the others (a
run that died is run again); a sweep with other settings (epochs, seed, ``--set``...) is
refused a ``<out>`` that holds one.

    python benchmarks/size_sweep.py --max-interactions 100000 --models SASRec,CREATE \
        --set CREATE.loss=sce --out /tmp/sweep
"""

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from skcreate.apps.comparison import default_models
from skcreate.data.datasets import make_interactions
from skcreate.nn import LightGCNEncoder

from _common import (StopAfter, fit_and_time, in_fresh_process, load_data,
                     matmul_gflops, parse_sets, sasrec_epoch_flops)

DEFAULT_SIZES = "10000:1000,30000:3000,100000:10000,300000:30000,1000000:100000"
K = 100
# CREATE's graph encoder in the scalable mode: one hop per step, 10 sampled neighbours
HISTORICAL = {"n_layers": 1, "propagation": "historical", "row_sparse": True, "fanout": 10}
# name -> (estimator of skcreate.apps.comparison.default_models, parameters for this sweep)
MODELS = {
    "SASRec": ("SASRec", {}),
    "SASRec-SCE": ("SASRec", {"loss": "sce"}),
    "LightGCN": ("LightGCN", {}),
    "LightGCN-full": ("LightGCN", {"propagation": "full", "row_sparse": False}),
    "CREATE": ("CREATE", {"warmup_epochs": 1}),
    "CREATE-full": ("CREATE", {"warmup_epochs": 1, "graph_encoder": LightGCNEncoder(
        n_layers=1, propagation="full", row_sparse=False)}),
    "CREATE-SCE": ("CREATE", {"warmup_epochs": 1, "loss": "sce"}),
    "CREATE-warmup": ("CREATE", {}),
    "CREATE-warmup-full": ("CREATE", {"graph_encoder": LightGCNEncoder(
        n_layers=1, propagation="full", row_sparse=False)}),
    # the defaults before "auto" took the scalable mode on large graphs
    "LightGCN-exact": ("LightGCN", {}),
    "UltraGCN-exact": ("UltraGCN", {}),
    "CREATE-exact": ("CREATE", {"warmup_epochs": 1}),
    "CREATE-SCE-exact": ("CREATE", {"warmup_epochs": 1, "loss": "sce"}),
    "CREATE-warmup-exact": ("CREATE", {}),
    # row-sparse gradients and row-wise Adam (issue 29)
    "LightGCN-sparse": ("LightGCN", {"row_sparse": True}),
    "CREATE-warmup-sparse": ("CREATE", {"graph_encoder": LightGCNEncoder(
        n_layers=1, row_sparse=True)}),
    # and sampled neighbourhoods: at most 10 neighbours per node and hop
    "LightGCN-fanout": ("LightGCN", {"row_sparse": True, "fanout": 10}),
    "CREATE-warmup-fanout": ("CREATE", {"graph_encoder": LightGCNEncoder(
        n_layers=1, row_sparse=True, fanout=10)}),
    # and one hop per step, deeper layers from a per-epoch refresh (LTGNN)
    "LightGCN-historical": ("LightGCN", {"propagation": "historical", "row_sparse": True,
                                         "fanout": 10}),
    # the defaults with 3 random walks per node for layers 2..K instead of the fanout's 10
    "LightGCN-walks3": ("LightGCN", {"walks": 3}),
    "UltraGCN": ("UltraGCN", {}),
    "UltraGCN-sparse": ("UltraGCN", {"row_sparse": True}),
    # (with the warm-up's gradients to the neighbours' rows, as before warmup_graph_step)
    "CREATE-warmup-historical": ("CREATE", {"graph_encoder": LightGCNEncoder(**HISTORICAL),
                                            "warmup_graph_step": "full"}),
    "CREATE-SCE-historical": ("CREATE", {"warmup_epochs": 1, "loss": "sce",
                                         "graph_encoder": LightGCNEncoder(**HISTORICAL),
                                         "warmup_graph_step": "full"}),
    # and the warm-up's gradients to its own rows only
    "CREATE-warmup-historical-light": ("CREATE", {"graph_encoder": LightGCNEncoder(**HISTORICAL),
                                                  "warmup_graph_step": "light"}),
    # the defaults with the joint step before "auto" took the light one on large graphs
    "CREATE-SCE-joint-full": ("CREATE", {"warmup_epochs": 1, "loss": "sce",
                                         "joint_graph_step": "full"}),
    # the defaults with the warm-up before "auto" took the light one on large graphs
    "CREATE-warmup-neighbours": ("CREATE", {"warmup_graph_step": "full"}),
}
# models timed on their graph warm-up alone: ``--epochs`` warm-up epochs, then training stops
WARMUP_ONLY = {"CREATE-warmup", "CREATE-warmup-full", "CREATE-warmup-sparse",
               "CREATE-warmup-fanout", "CREATE-warmup-historical", "CREATE-warmup-exact",
               "CREATE-warmup-historical-light", "CREATE-warmup-neighbours"}
# the defaults, whose "auto" graph options take the scalable mode on graphs of more than
# GraphEncoder.large_graph edges; every other model is fitted as before them (large_graph =
# inf), so that the earlier sweeps' names keep their meaning
AUTO = {"LightGCN", "LightGCN-walks3", "UltraGCN", "CREATE", "CREATE-SCE", "CREATE-warmup",
        "CREATE-SCE-joint-full", "CREATE-warmup-neighbours"}
# the models of the Amazon Beauty epoch-time comparison (``--beauty``)
BEAUTY_MODELS = ["SASRec", "CREATE", "CREATE-full"]
# (CSV column, Markdown header, format) of the table
TABLE = [("model", "model", "{}"), ("interactions", "interactions", "{:,}"),
         ("items", "items", "{:,}"), ("users", "users", "{:,}"),
         ("s_per_epoch", "s/epoch", "{:,.2f}"), ("warmup_s", "warm-up s", "{:,.2f}"),
         ("users_per_s", "users/s", "{:,.0f}"), ("peak_mib", "peak MiB", "{:,.0f}")]
PANELS = [("s_per_epoch", "seconds per epoch"), ("users_per_s", f"users/s (k={K})"),
          ("peak_mib", "peak resident MiB")]


def parse_sizes(text):
    """``"10000:1000,30000:3000"`` -> ``[(10000, 1000), (30000, 3000)]`` (interactions, items)."""
    return [tuple(int(n) for n in pair.split(":")) for pair in text.split(",")]


def sweep_model(name, params, seed):
    """The estimator of sweep model ``name`` with ``params`` (``epochs`` among them) over its
    own, the parameters set, and the ``GraphEncoder.large_graph`` it is fitted under (None:
    the package's)."""
    base, sweep_params = MODELS[name]
    params = dict(params)
    if name in WARMUP_ONLY:
        # the estimator's own epochs are a joint epoch after the warm-up: stop before it
        epochs = params.pop("epochs")
        sweep_params = {**sweep_params, "warmup_epochs": epochs,
                        "trainer__callbacks": [StopAfter(epochs)]}
    params = {**sweep_params, **params}
    model = default_models(seed)[base].set_params(**params)
    return model, params, None if name in AUTO else float("inf")


def run_one(name, X, params, n_recommend, seed):
    """Fit one model on ``X`` and time recommendations in a fresh process.

    Parameters
    ----------
    name : str
        A key of ``MODELS``.
    X : pandas.DataFrame
        Interactions ``user_id, item_id, timestamp``.
    params : dict
        Estimator parameters over the sweep's.
    n_recommend : int
        Users (a seeded sample) served in the timed ``recommend`` call.
    seed : int
        Seed of the model and of the user sample.

    Returns
    -------
    dict
        One row of the results; only the model, data size and ``error`` when the process died
        (e.g. out of memory).
    """
    model, params, large_graph = sweep_model(name, params, seed)
    users = X["user_id"].unique()
    sample = np.random.default_rng(seed).choice(users, min(n_recommend, len(users)),
                                                replace=False)
    histories = X[X["user_id"].isin(sample)]
    row = {"model": name, "interactions": len(X), "users": len(users)}
    run = in_fresh_process(fit_and_time, model, X, histories, K, large_graph)
    if "error" in run:
        return {**row, "items": X["item_id"].nunique(), "error": run["error"]}
    seconds = np.asarray(run["epoch_seconds"])
    warmup = np.asarray(run["epoch_stages"]) == "warmup"
    # the last epoch is the model's own, and with two or more it is free of the first epoch's
    # one-off start-up (~0.5 s); CREATE's warm-up epochs are reported apart
    row.update({
        # a warm-up-only model's epochs are its warm-up epochs
        "items": run["n_items"], "epochs": run["n_epochs"], "s_per_epoch": seconds[-1],
        "epoch_seconds": [round(float(value), 4) for value in seconds],
        # the last warm-up epoch, like the last epoch: free of the first one's start-up
        "warmup_s": float(seconds[warmup][-1]) if warmup.any() else np.nan,
        "fit_s": run["fit_s"], "recommend_users": len(sample),
        "users_per_s": len(sample) / run["recommend_s"], "peak_mib": run["peak_mib"],
        "start_mib": run["start_mib"], "threads": run["threads"],
        "params": {key: value for key, value in params.items()
                   if key != "trainer__callbacks"},
    })
    if MODELS[name][0] == "SASRec" and model.loss == "ce":
        flops = sasrec_epoch_flops(model, X)
        row.update(gflop_per_epoch=flops / 1e9, achieved_gflops=flops / 1e9 / row["s_per_epoch"])
    return row


def finished_rows(out, settings):
    """Rows of ``<out>.csv`` from an earlier run of the same settings (those that did not
    die), to keep; [] when there is none. Raises SystemExit when ``<out>`` holds a sweep of
    other settings, whose rows would not compare with this one's."""
    csv, saved = out.with_suffix(".csv"), out.with_suffix(".json")
    if not csv.exists():
        return []
    earlier = json.loads(saved.read_text()) if saved.exists() else None
    if earlier != settings:
        raise SystemExit(f"{csv} holds a sweep of other settings ({earlier} against "
                         f"{settings}); choose another --out or remove {csv}.")
    table = pd.read_csv(csv)
    if "error" in table:
        table = table[table["error"].isna()].drop(columns="error")
    return table.to_dict("records")


def slopes(results, low=100_000):
    """Log-log slope of seconds per epoch against interactions, per model, from ``low`` up.

    Returns
    -------
    pandas.DataFrame
        ``model``, ``from``, ``to`` (interactions), ``slope`` (least squares over the sizes in
        between) and ``endpoint_slope`` (of the first and last size alone); models with fewer
        than two sizes from ``low`` are left out.
    """
    rows = []
    for name, part in results.dropna(subset=["s_per_epoch"]).groupby("model", sort=False):
        part = part[part["interactions"] >= low * 0.9]
        if len(part) < 2:
            continue
        x, y = np.log(part["interactions"].to_numpy()), np.log(part["s_per_epoch"].to_numpy())
        rows.append({"model": name, "from": int(part["interactions"].iloc[0]),
                     "to": int(part["interactions"].iloc[-1]),
                     "slope": float(np.polyfit(x, y, 1)[0]),
                     "endpoint_slope": float((y[-1] - y[0]) / (x[-1] - x[0]))})
    return pd.DataFrame(rows, columns=["model", "from", "to", "slope", "endpoint_slope"])


def speedups(results, pairs=(("LightGCN", "LightGCN-exact"),
                             ("UltraGCN", "UltraGCN-exact"),
                             ("CREATE-warmup", "CREATE-warmup-exact"),
                             ("CREATE", "CREATE-exact"),
                             ("CREATE-SCE", "CREATE-SCE-exact"),
                             ("LightGCN", "LightGCN-full"),
                             ("CREATE-warmup", "CREATE-warmup-full"),
                             ("LightGCN-sparse", "LightGCN"),
                             ("CREATE-warmup-sparse", "CREATE-warmup"),
                             ("LightGCN-fanout", "LightGCN"),
                             ("CREATE-warmup-fanout", "CREATE-warmup"),
                             ("LightGCN-historical", "LightGCN"),
                             ("UltraGCN-sparse", "UltraGCN"),
                             ("CREATE-warmup-historical", "CREATE-warmup"),
                             ("CREATE-SCE-historical", "CREATE-SCE"),
                             ("CREATE-SCE-historical", "SASRec-SCE"))):
    """Seconds per epoch of each (new, old) model pair at every size both ran, and the ratio."""
    rows = []
    for new, old in pairs:
        a = results[results["model"] == new].set_index("interactions")["s_per_epoch"]
        b = results[results["model"] == old].set_index("interactions")["s_per_epoch"]
        for size in a.index.intersection(b.index):
            rows.append({"models": f"{new} / {old}", "interactions": int(size),
                         "new_s": a[size], "old_s": b[size], "speedup": b[size] / a[size]})
    return pd.DataFrame(rows, columns=["models", "interactions", "new_s", "old_s", "speedup"])


def beauty_epochs(data_home, epochs, seed):
    """Joint-epoch seconds of CREATE (new and full graph path) against SASRec on Beauty.

    Each model trains ``epochs`` epochs (CREATE after one warm-up epoch) in a fresh process;
    the last epoch is reported, as in the sweep.
    """
    X = load_data("amazon-beauty", data_home)
    histories = X[X["user_id"].isin(X["user_id"].unique()[:2000])]
    rows = []
    for name in BEAUTY_MODELS:
        base, sweep_params = MODELS[name]
        model = default_models(seed)[base].set_params(**sweep_params, epochs=epochs)
        run = in_fresh_process(fit_and_time, model, X, histories, K)
        seconds = np.asarray(run["epoch_seconds"])
        joint = np.asarray(run["epoch_stages"]) != "warmup"
        rows.append({"model": name, "interactions": len(X), "epochs": epochs,
                     "s_per_epoch": float(seconds[joint][-1]),
                     "epoch_seconds": [round(float(value), 4) for value in seconds]})
        print(f"Beauty {name}: {rows[-1]['s_per_epoch']:.3g} s/epoch", file=sys.stderr,
              flush=True)
    table = pd.DataFrame(rows)
    table["x_sasrec"] = table["s_per_epoch"] / table.loc[table["model"] == "SASRec",
                                                         "s_per_epoch"].iloc[0]
    return table


def frame_table(frame, formats):
    """A small frame as a Markdown table; ``formats`` maps columns to format strings."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|---" * len(frame.columns) + "|"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(formats.get(col, "{}").format(row[col])
                                       for col in frame.columns) + " |")
    return "\n".join(lines)


def markdown_table(results):
    """The results as a Markdown table (empty cells where a value is missing)."""
    lines = ["| " + " | ".join(header for _, header, _ in TABLE) + " |",
             "|---" * len(TABLE) + "|"]
    for _, row in results.iterrows():
        cells = [fmt.format(row[col]) if col in row and pd.notna(row[col]) else ""
                 for col, _, fmt in TABLE]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results, path):
    """Three log-log panels against interactions, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:g}")

    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.6))
    for ax, (col, label) in zip(axes, PANELS):
        for name, part in results.groupby("model", sort=False):
            ax.plot(part["interactions"], part[col], marker="o", label=name)
        ax.set(xscale="log", yscale="log", xlabel="interactions", ylabel=label)
        ax.grid(True, which="both", alpha=0.3)
        # plain numbers, not 6x10^2; minor ticks labelled only where few major ticks show
        low, high = ax.get_ylim()
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain if high / low < 100 else NullFormatter())
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    """Run the sweep and write ``<out>.csv``, ``<out>.md`` and ``<out>.png``.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    pandas.DataFrame
        One row per (size, model); a run whose process died (e.g. out of memory) has only
        its model, data size and ``error``.
    """
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=parse_sizes, default=DEFAULT_SIZES, metavar="N:ITEMS,...",
                        help="interactions:items pairs (default: %(default)s)")
    parser.add_argument("--max-interactions", type=int, default=None,
                        help="skip sizes above this many interactions")
    parser.add_argument("--cap", action="append", default=[], metavar="MODEL=N",
                        help="skip MODEL above N interactions (e.g. full CE at 100k items)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated, from %(default)s")
    parser.add_argument("--epochs", type=int, default=1,
                        help="training epochs per run (CREATE: joint epochs after its warm-up); "
                             "2 keeps the first epoch's start-up out of the reported one")
    parser.add_argument("--mean-length", type=float, default=20,
                        help="mean events per user; users = interactions / mean length")
    parser.add_argument("--recommend-users", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.PARAM=VALUE",
                        help="override a model parameter, e.g. CREATE.loss=sce")
    parser.add_argument("--beauty", action="store_true",
                        help="also time SASRec and CREATE (new and full graph path) epochs on "
                             "Amazon Beauty, written to <out>-beauty.csv and the Markdown")
    parser.add_argument("--beauty-epochs", type=int, default=2,
                        help="epochs of each Beauty run (CREATE: after one warm-up epoch)")
    parser.add_argument("--data-home", default=None, help="where Amazon Beauty is stored")
    parser.add_argument("--out", default="size-sweep", help="output prefix")
    args = parser.parse_args(argv)

    names = args.models.split(",")
    unknown = set(names) - set(MODELS)
    if unknown:
        parser.error(f"unknown model(s) {sorted(unknown)}; choose from {list(MODELS)}")
    sizes = [(n, m) for n, m in args.sizes
             if args.max_interactions is None or n <= args.max_interactions]
    overrides = parse_sets(args.set)
    caps = {}
    for item in args.cap:
        model, _, limit = item.partition("=")
        if model not in MODELS or not limit.isdigit():
            parser.error(f"--cap expects MODEL=N with MODEL in {list(MODELS)}, got {item!r}")
        caps[model] = int(limit)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    beauty = None
    if args.beauty:
        # first, so that the comparison is in even when a long sweep is stopped
        beauty = beauty_epochs(args.data_home, args.beauty_epochs, args.seed)
        beauty.to_csv(out.with_name(out.name + "-beauty.csv"), index=False)
    settings = {"epochs": args.epochs, "mean_length": args.mean_length,
                "recommend_users": args.recommend_users, "seed": args.seed,
                "set": sorted(args.set)}
    rows = finished_rows(out, settings)
    out.with_suffix(".json").write_text(json.dumps(settings) + "\n")
    done = {(row["model"], row["requested"]) for row in rows}
    if rows:
        print(f"resuming: {len(rows)} run(s) kept from {out.with_suffix('.csv')}",
              file=sys.stderr, flush=True)
    for n_interactions, n_items in sizes:
        requested = f"{n_interactions}:{n_items}"
        todo = [name for name in names if (name, requested) not in done
                and n_interactions <= caps.get(name, n_interactions)]
        if not todo:
            continue
        X = make_interactions(n_users=max(1, round(n_interactions / args.mean_length)),
                              n_items=n_items, mean_length=args.mean_length,
                              random_state=args.seed)
        for name in todo:
            params = {"epochs": args.epochs, **overrides.get(name, {})}
            started = time.perf_counter()
            # the requested size: the key a resumed sweep skips by
            row = {"requested": requested,
                   **run_one(name, X, params, args.recommend_users, args.seed)}
            row["wall_s"] = time.perf_counter() - started
            rows.append(row)
            print(f"{name} {len(X):,} interactions: " + ", ".join(
                f"{key} {row[key]:.3g}" for key in ("s_per_epoch", "warmup_s", "users_per_s",
                                                    "peak_mib", "wall_s") if key in row)
                  + f" {row.get('error', '')}", file=sys.stderr, flush=True)
            pd.DataFrame(rows).to_csv(out.with_suffix(".csv"), index=False)

    # kept and new runs in the order of sizes (the slopes read the first and last)
    results = pd.DataFrame(rows)
    if len(results):
        results = results.sort_values("interactions", kind="stable", ignore_index=True)
    command = "python benchmarks/size_sweep.py " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    header = (f"`{command.strip()}`\n\n"
              f"make_interactions, mean length {args.mean_length:g}; {args.epochs} epoch(s) per "
              f"run (CREATE: after its warm-up epoch); recommend k={K} to "
              f"{args.recommend_users:,} users; {torch.get_num_threads()} torch threads, "
              f"{platform.processor() or platform.machine()}, float32 matmul "
              f"{matmul_gflops():.0f} GFLOP/s. Peak MiB includes Python, torch and the data "
              f"(`start_mib` in the CSV: before fit).\n\n")
    markdown = header + markdown_table(results) + "\n"
    if "s_per_epoch" in results:
        markdown += ("\nLog-log slope of s/epoch against interactions from 0.1M (least squares; "
                     "endpoints alone):\n\n" + frame_table(slopes(results), {
                         "from": "{:,}", "to": "{:,}", "slope": "{:.2f}",
                         "endpoint_slope": "{:.2f}"}) + "\n")
        pairs = speedups(results)
        if len(pairs):
            markdown += ("\nEach new path against the old one (or the joint epoch against "
                         "SASRec's), same run; speedup = old_s / new_s:\n\n"
                         + frame_table(pairs, {"interactions": "{:,}", "new_s": "{:,.2f}",
                                               "old_s": "{:,.2f}", "speedup": "{:.1f}x"})
                         + "\n")
    if beauty is not None:
        markdown += (f"\nAmazon Beauty, {args.beauty_epochs} epochs each (CREATE after one "
                     "warm-up epoch), last epoch:\n\n"
                     + frame_table(beauty[["model", "interactions", "s_per_epoch", "x_sasrec"]],
                                   {"interactions": "{:,}", "s_per_epoch": "{:.2f}",
                                    "x_sasrec": "{:.2f}"}) + "\n")
    out.with_suffix(".md").write_text(markdown)
    print("\n" + markdown)
    plot(results, out.with_suffix(".png"))
    return results


if __name__ == "__main__":
    main()
