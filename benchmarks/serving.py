r"""Exported models against their estimators: equal top-10s, throughput and latency.

For each model kind: fit on the Table 2 protocol's train part (defaults, ``random_state=0``),
export, then on the test users' histories

- count the users whose exported top-10 equals the estimator's (identical lists; lists that
  differ only between tied scores, within 1e-4, counted apart);
- users/s of ``recommend(histories, k=100)``: the estimator (torch) and the export
  (onnxruntime, CPU), the same frames and threads;
- single-user latency, p50/p99 over 1,000 calls of ``recommend(one user's history, k=100)``
  for both, and of the bare onnxruntime session (the graph without the frame handling).

Resumable: a kind already in ``<out>.csv`` is skipped; a fitted model is kept in
``<out>-cache/<kind>.skc`` and reused. Each kind's row is appended as soon as it is measured.

    python benchmarks/serving.py --data-home ../shared/data --out benchmarks/results/serving-beauty
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import load_data  # noqa: E402

import skcreate  # noqa: E402
from skcreate.data.model_selection import GlobalTemporalSplit, split_history_target  # noqa: E402
from skcreate.serving import load  # noqa: E402

KINDS = {
    "SASRec": skcreate.SASRecRecommender,
    "CREATE": skcreate.CREATERecommender,
    "LightGCN": skcreate.LightGCNRecommender,
    "UltraGCN": skcreate.UltraGCNRecommender,
    "ALS": skcreate.ALSRecommender,
    "BPR": skcreate.BPRRecommender,
    "PureSVD": skcreate.PureSVDRecommender,
    "CREATE-BERT4Rec": lambda random_state: skcreate.CREATERecommender(
        sequence_encoder="bert4rec", random_state=random_state),
}
TOL = 1e-4


def compare_top_k(expected, got, k=10):
    """(identical, tie-only, differing) user counts of two recommendation frames."""
    counts = [0, 0, 0]
    got = got.groupby("user_id", sort=False)
    for user, mine in expected.groupby("user_id", sort=False):
        theirs = got.get_group(user)
        a_items, b_items = mine["item_id"].to_numpy()[:k], theirs["item_id"].to_numpy()[:k]
        a_scores = mine["score"].to_numpy()[:k]
        if len(a_items) == len(b_items) and (a_items == b_items).all():
            counts[0] += 1
            continue
        differ = np.flatnonzero(a_items != b_items) if len(a_items) == len(b_items) else []
        close = np.isclose(a_scores[:, None], a_scores[None, :], rtol=TOL, atol=TOL)
        tied = len(differ) > 0 and all(close[i].sum() > 1 or np.isclose(
            a_scores[i], a_scores[-1], rtol=TOL, atol=TOL) for i in differ) and np.allclose(
            a_scores, theirs["score"].to_numpy()[:k], rtol=TOL, atol=TOL)
        counts[1 if tied else 2] += 1
    return counts


def latencies(call, arguments):
    times = []
    for argument in arguments:
        start = time.perf_counter()
        call(argument)
        times.append(time.perf_counter() - start)
    return 1000 * np.percentile(times, 50), 1000 * np.percentile(times, 99)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--out", required=True, help="results prefix (<out>.csv, <out>.md)")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=1000, help="single-user calls")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*(unseen at fit|served by popularity).*")
    torch.set_num_threads(args.threads)
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1

    out = Path(args.out)
    csv, cache = out.with_name(out.name + ".csv"), out.with_name(out.name + "-cache")
    cache.mkdir(parents=True, exist_ok=True)
    done = set(pd.read_csv(csv)["model"]) if csv.exists() else set()
    X = load_data(args.dataset, args.data_home)
    train_idx, test_idx = next(GlobalTemporalSplit(0.8).split(X))
    history, _ = split_history_target(X.iloc[test_idx])
    users = history["user_id"].unique()
    singles = [frame for _, frame in history.groupby("user_id", sort=False)]
    rng = np.random.default_rng(0)
    singles = [singles[i] for i in rng.choice(len(singles), args.calls)]
    command = " ".join(["python", "benchmarks/serving.py"] +
                       list(sys.argv[1:] if argv is None else argv))
    for kind in args.kinds:
        if kind in done:
            continue
        path = cache / f"{kind}.skc"
        fit_s = None
        if path.exists():
            est = skcreate.load(path)
        else:
            start = time.perf_counter()
            est = KINDS[kind](random_state=0).fit(X.iloc[train_idx])
            fit_s = time.perf_counter() - start
            est.save(path)
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            est.export(Path(folder) / "model.onnx")
            export_s = time.perf_counter() - start
            size = os.path.getsize(Path(folder) / "model.onnx")
            model = load(Path(folder) / "model.onnx", session_options=options)
            identical, ties, differ = compare_top_k(est.recommend(history, k=10),
                                                    model.recommend(history, k=10))
            row = {"model": kind, "users": len(users), "identical": identical, "ties": ties,
                   "differ": differ, "equal_pct": round(100 * (identical + ties) / len(users), 3)}
            for name, recommender in (("torch", est), ("onnx", model)):
                start = time.perf_counter()
                recommender.recommend(history, k=100)
                row[f"{name}_users_per_s"] = round(len(users) / (time.perf_counter() - start))
            for name, recommender in (("torch", est), ("onnx", model)):
                p50, p99 = latencies(lambda frame: recommender.recommend(frame, k=100), singles)
                row[f"{name}_p50_ms"], row[f"{name}_p99_ms"] = round(p50, 2), round(p99, 2)
            feeds = [model._feeds(model._encode(frame), np.arange(1), min(100, model.n_items_))
                     for frame in singles]
            p50, p99 = latencies(lambda feed: model.session_.run(["items", "scores"], feed),
                                 feeds)
            row["session_p50_ms"], row["session_p99_ms"] = round(p50, 2), round(p99, 2)
        row.update(export_s=round(export_s, 1), onnx_mb=round(size / 2**20, 1),
                   fit_s=None if fit_s is None else round(fit_s), threads=args.threads,
                   machine=f"{platform.machine()}, {os.cpu_count()} cores, load "
                           f"{os.getloadavg()[0]:.1f}, torch {torch.__version__}, onnxruntime "
                           f"{onnxruntime.__version__}",
                   params=json.dumps({"random_state": 0}), command=command)
        frame = pd.DataFrame([row])
        frame.to_csv(csv, mode="a", header=not csv.exists(), index=False)
        print(frame.drop(columns=["command", "machine", "params"]).to_string(index=False),
              flush=True)
    write_table(pd.read_csv(csv), out.with_name(out.name + ".md"))


def write_table(results, path):
    columns = ["model", "users", "identical", "ties", "differ", "equal_pct", "torch_users_per_s",
               "onnx_users_per_s", "torch_p50_ms", "torch_p99_ms", "onnx_p50_ms", "onnx_p99_ms",
               "session_p50_ms", "session_p99_ms", "export_s", "onnx_mb"]
    lines = ["# Exported models against their estimators", "",
             "Top-10 equality on the test users' histories (ties: lists that differ only "
             "between scores equal within 1e-4), users/s of recommend(k=100), single-user "
             "latency in ms (k=100; `session`: the onnxruntime call alone).", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in results.iterrows():
        lines.append("| " + " | ".join(str(row[c]) for c in columns) + " |")
    lines += ["", f"Machine: {results.machine.iloc[-1]}; threads: {results.threads.iloc[-1]}.",
              "", f"Command: `{results.command.iloc[-1]}`", ""]
    Path(path).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
