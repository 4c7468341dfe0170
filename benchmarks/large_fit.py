r"""One end-to-end fit on large synthetic data: its time per stage and peak memory (issue 29).

    python benchmarks/large_fit.py --model CREATE --set loss=sce --interactions 3000000 \
        --users 300000 --items 1000000 --out benchmarks/results/large-fit-create-3m
    python benchmarks/large_fit.py --model LightGCN --interactions 3000000 --users 300000 \
        --items 1000000 --out benchmarks/results/large-fit-lightgcn-3m

The model is the estimator at its defaults (``--set param=value`` changes one, ``set_params``
spelling: ``graph_encoder__fanout=10``), ``random_state=0``, fitted on
``skcreate.data.datasets.make_interactions`` with ``interactions / users`` events per user on
average, then asked for k=100 items for 10,000 of its users. Resumable: the fit checkpoints
every epoch to ``<out>.ckpt`` and logs each finished epoch to ``<out>.epochs.jsonl`` (stage,
seconds, peak memory of the process so far); a stopped run started again with the same
command continues after its last checkpoint, and the report counts the epochs of every
attempt. A finished fit (``<out>.json``) is not run again. ``<out>.json`` and ``<out>.md``:
the epochs' seconds in all and per stage, the last attempt's wall time, peak resident memory,
serving throughput.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from skcreate.apps.comparison import default_models
from skcreate.data.datasets import make_interactions
from skcreate.training import Callback, Trainer

from _common import git_commit, machine, parse_value, peak_mib

K = 100
SERVED_USERS = 10_000


class EpochLog(Callback):
    """Appends each finished epoch to a JSON-lines file (picklable: a module class)."""

    def __init__(self, path):
        self.path = path

    def on_epoch_end(self, record):
        row = {"epoch": record.epoch, "stage": record.stage, "seconds": record.elapsed,
               "loss": record.loss, "peak_mib": peak_mib(),
               "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="CREATE", choices=["CREATE", "LightGCN", "SASRec",
                                                              "UltraGCN"])
    parser.add_argument("--set", nargs="*", default=[], metavar="PARAM=VALUE")
    parser.add_argument("--interactions", type=int, default=3_000_000)
    parser.add_argument("--users", type=int, default=300_000)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--out", required=True, help="results prefix")
    args = parser.parse_args(argv)
    # the code this process runs: HEAD may move while a long fit runs
    commit = git_commit()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = out.with_name(out.name + ".json")
    if done.exists():
        print(f"{done} exists: the fit is done (remove it to fit again).")
        return json.loads(done.read_text())
    log = out.with_name(out.name + ".epochs.jsonl")
    checkpoint = out.with_name(out.name + ".ckpt")
    if not checkpoint.exists():
        # a fresh start: epochs logged by an attempt that left no checkpoint are redone
        log.unlink(missing_ok=True)
    started = time.perf_counter()

    X = make_interactions(n_users=args.users, n_items=args.items,
                          mean_length=args.interactions / args.users, random_state=0)
    data_s = time.perf_counter() - started
    params = {key: parse_value(value) for key, value in
              (item.split("=", 1) for item in args.set)}
    model = default_models(random_state=0)[args.model].set_params(**params)
    model.set_params(trainer=Trainer(checkpoint_path=str(checkpoint),
                                     callbacks=[EpochLog(str(log))]))
    start = time.perf_counter()
    model.fit(X)
    fit_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    pool = X["user_id"].unique()
    users = rng.choice(pool, min(SERVED_USERS, len(pool)), replace=False)
    histories = X[X["user_id"].isin(users)]
    start = time.perf_counter()
    model.recommend(histories, k=K)
    recommend_s = time.perf_counter() - start

    # an epoch run again after a resume (stopped before its checkpoint) counts once
    epochs = list({row["epoch"]: row for row in map(json.loads, log.read_text().splitlines())
                   }.values())
    stages = {}
    for row in epochs:
        stages.setdefault(row["stage"], []).append(row["seconds"])
    result = {
        "model": args.model, "params": params, "interactions": len(X),
        "users": int(X["user_id"].nunique()), "items": int(X["item_id"].nunique()),
        "epochs": {name: len(seconds) for name, seconds in stages.items()},
        "epoch_seconds": {name: float(np.sum(seconds)) for name, seconds in stages.items()},
        "median_epoch_seconds": {name: float(np.median(seconds))
                                 for name, seconds in stages.items()},
        "epochs_s": float(sum(row["seconds"] for row in epochs)),
        "this_attempt_fit_s": fit_s, "data_s": data_s,
        "peak_mib": max([peak_mib()] + [row["peak_mib"] for row in epochs]),
        "users_per_s": len(users) / recommend_s,
        "command": "python benchmarks/large_fit.py " + " ".join(sys.argv[1:] if argv is None
                                                                else argv),
        "commit": commit, "machine": machine(),
        "load": os.getloadavg()[0], "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    done.write_text(json.dumps(result, indent=2) + "\n")
    write_table(result, out.with_name(out.name + ".md"))
    print(json.dumps(result, indent=2))
    return result


def write_table(result, path):
    lines = [f"# {result['model']} fitted on {result['interactions']:,} interactions",
             "", f"{result['users']:,} users, {result['items']:,} items (synthetic); "
             f"parameters: the defaults{', ' + str(result['params']) if result['params'] else ''}"
             ", random_state=0.", "",
             "| stage | epochs | seconds | median s/epoch |", "|---|---|---|---|"]
    for name, count in result["epochs"].items():
        lines.append(f"| {name} | {count} | {result['epoch_seconds'][name]:,.0f} | "
                     f"{result['median_epoch_seconds'][name]:,.1f} |")
    lines += ["", f"Training epochs in all: {result['epochs_s'] / 60:,.1f} min; "
              f"peak resident memory {result['peak_mib'] / 1024:,.2f} GiB; serving "
              f"{result['users_per_s']:,.0f} users/s (k={K}).", "",
              f"Machine: {result['machine']}, load {result['load']:.1f}.", "",
              f"Command: `{result['command']}` (commit {result['commit']})."]
    Path(path).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
