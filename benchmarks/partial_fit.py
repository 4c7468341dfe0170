r"""partial_fit against a full refit, on the Table 2 protocol's train part.

The train part (global temporal split at 0.8) is split again by time at its 0.9 quantile: a
model is fitted on the first 90 % (the base) and updated with ``partial_fit`` on the last
10 %, once per update configuration (``--updates EPOCHS:REPLAY[:fold][:lrF] ...``, "default"
for the model's epochs, ``fold`` to fold new items in, ``lrF`` to update at F times the
fit's learning rate); the full refit is fitted on the whole train part. All are scored on the test
users (NDCG@10, Recall@10, Coverage@10, %). Also counted: the items that appear only in the
last 10 %, and how many of them are recommended to some user (top 10) after the update; and
NDCG@10 over the users whose target is one of them (``ndcg@10_new``, ``new_targets`` users)
and over the others (``ndcg@10_old``), which tells whether an update loses on the new
items or on the fitted ones. ``:wN`` runs N graph-only warm-up epochs first (CREATE),
``:bN`` updates in batches of N users, ``:sF`` moves the new items' rows F times as far as
the optimiser at every step (``new_item_step``), ``:aN`` takes the mean of the weights at the
ends of the update's last N epochs (``average_epochs``; without it, 1: the last weights),
``:rN`` updates with ``random_state=N`` (without it, the base's seed), which measures how much
an update varies with its own draws.
``MODEL=`` before a configuration applies it
to that model of ``--models`` only (``CREATE=default:0:fold SASRec=4:1:fold``); without it a
configuration applies to every model.

``--split validation`` runs the same protocol inside the train part, for choosing the update
configuration honestly: the inner train (``global_temporal_split`` at 0.8 then 0.9) plays
the train part and the validation users are scored; the test split is never read.

Resumable: one row per (model, seed, variant) in ``<out>.csv``, appended as it finishes;
rows already there are skipped (the base model is refitted when an update of it is missing,
unless ``--cache DIR`` holds it: fitted base and refit models are pickled there, keyed by
split, model, seed and quantile; clear it when the code or the defaults change).

    python benchmarks/partial_fit.py --data-home ../shared/data --split validation \
        --out benchmarks/results/partial-fit-beauty-validation --models SASRec --seeds 0 \
        --updates default:0 5:0 5:0.3 10:0.3 5:1
    python benchmarks/partial_fit.py --data-home ../shared/data \
        --out benchmarks/results/partial-fit-beauty --models SASRec --seeds 0 1 2 \
        --updates 5:0.3
"""

import argparse
import inspect
import json
import os
import pickle
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
from skcreate.data.model_selection import (  # noqa: E402
    GlobalTemporalSplit, global_temporal_split, split_history_target)

COLUMNS = ["model", "seed", "variant", "split", "ndcg@10", "recall@10", "coverage@10",
           "seconds", "base_seconds", "new_items", "new_items_recommended", "ndcg@10_new",
           "ndcg@10_old", "new_targets", "machine", "params", "command"]
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
    parser.add_argument("--updates", nargs="+", default=["default:0"],
                        metavar="[MODEL=]EPOCHS:REPLAY[:fold][:lrF][:wN][:bN][:sF][:aN][:rN]",
                        help="update configurations, each for every model or, after "
                             "'MODEL=', for that one: epochs (or 'default'), replay share, "
                             "':fold' to fold new items in (SASRec, CREATE), ':lrF' to "
                             "update at F times the fit's learning rate, ':wN' to run N "
                             "graph warm-up epochs first (CREATE), ':bN' to update in "
                             "batches of N, ':sF' to move new items' rows F times as far "
                             "each step (new_item_step), ':aN' to average the weights of "
                             "the last N epochs (average_epochs), ':rN' to update with "
                             "random_state=N")
    parser.add_argument("--cache", default=None,
                        help="folder of pickled base and refit models to reuse")
    parser.add_argument("--split", choices=["test", "validation"], default="test")
    parser.add_argument("--quantile", type=float, default=0.9)
    args = parser.parse_args(argv)
    updates = [parse_scoped_update(text) for text in args.updates]
    warnings.filterwarnings("ignore", message=".*(unseen at fit|served by popularity).*")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv = out.with_name(out.name + ".csv")
    done = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=["model", "seed",
                                                                       "variant"])
    if csv.exists() and list(done.columns) != COLUMNS:  # rows from before a column was added
        done.reindex(columns=COLUMNS).to_csv(csv, index=False)
    finished = set(zip(done["model"], done["seed"].astype(int), done["variant"]))
    command = " ".join(["python", "benchmarks/partial_fit.py"] +
                       list(sys.argv[1:] if argv is None else argv))
    X = load_data(args.dataset, args.data_home)
    if args.split == "test":
        train_idx, test_idx = next(GlobalTemporalSplit(0.8).split(X))
        train, evaluation = X.iloc[train_idx], X.iloc[test_idx]
    else:
        train, evaluation, _ = global_temporal_split(X, 0.8, 0.9)
    history, targets = split_history_target(evaluation)
    cut = train["timestamp"].quantile(args.quantile)
    first, last = train[train["timestamp"] <= cut], train[train["timestamp"] > cut]
    new_items = set(last["item_id"]) - set(first["item_id"])
    catalog = X["item_id"].nunique()

    new_target = targets["item_id"].isin(new_items)

    def score(model):
        recs = model.recommend(history, k=10)
        metrics = {name: round(100 * value, 4)
                   for name, value in evaluate(recs, targets, catalog, ks=(10,)).items()}
        for part, chosen in (("new", new_target), ("old", ~new_target)):
            users = targets.loc[chosen, "user_id"]
            metrics[f"ndcg@10_{part}"] = round(100 * evaluate(
                recs[recs["user_id"].isin(users)], targets[chosen], catalog,
                ks=(10,))["ndcg@10"], 4)
        metrics["new_targets"] = int(new_target.sum())
        return (metrics,
                int(recs["item_id"].isin(new_items).groupby(recs["item_id"]).any().sum()))

    cache = Path(args.cache) if args.cache else None

    def fitted(name, seed, kind, frame):
        """A fitted model and its fit's seconds, from the cache when it holds them."""
        path = cache and cache / f"{args.split}-{name}-seed{seed}-q{args.quantile:g}-{kind}.pkl"
        if path and path.exists():
            model, seconds = pickle.loads(path.read_bytes())
            # pickled before a parameter existed: it takes its default (a new parameter's
            # default leaves Amazon Beauty's models as they were)
            for param, value in MODELS[name]().get_params(deep=False).items():
                if param not in vars(model):
                    setattr(model, param, value)
            return model, seconds
        model = MODELS[name](random_state=seed)
        start = time.perf_counter()
        model.fit(frame)
        seconds = round(time.perf_counter() - start, 1)
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pickle.dumps((model, seconds)))
        return model, seconds

    def record(row, model):
        metrics, recommended = score(model)
        row.update(metrics, split=args.split, new_items=len(new_items),
                   new_items_recommended=recommended,
                   machine=f"{platform.machine()}, {torch.get_num_threads()} torch "
                           f"threads, load {os.getloadavg()[0]:.1f}",
                   params=json.dumps({"quantile": args.quantile}), command=command)
        frame = pd.DataFrame([row]).reindex(columns=COLUMNS)
        frame.to_csv(csv, mode="a", header=not csv.exists(), index=False)
        print(frame.drop(columns=["command", "machine", "params"]).to_string(index=False),
              flush=True)

    for seed in args.seeds:
        for name in args.models:
            if (name, seed, "refit") not in finished:
                model, seconds = fitted(name, seed, "refit", train)
                record({"model": name, "seed": seed, "variant": "refit",
                        "seconds": seconds}, model)
            todo = [(variant_name(*update), *update) for scope, update in updates
                    if scope in (None, name)
                    and (name, seed, variant_name(*update)) not in finished]
            if not todo:
                continue
            base, base_seconds = fitted(name, seed, "base", first)
            if (name, seed, "base") not in finished:
                record({"model": name, "seed": seed, "variant": "base",
                        "seconds": base_seconds}, base)
            state = pickle.dumps(base)
            for (variant, epochs, replay, fold, factor, warmup, batch, step, average,
                 update_seed) in todo:
                model = pickle.loads(state)
                if factor != 1:
                    model.set_params(learning_rate=factor * model.learning_rate)
                if batch:
                    model.set_params(batch_size=batch)
                if update_seed is not None:
                    model.set_params(random_state=update_seed)
                # rows named without ":fold" were measured before fold_in existed
                accepted = inspect.signature(model.partial_fit).parameters
                options = {"fold_in": fold} if "fold_in" in accepted else {}
                # given always, 0 included: a variant's name says how many ran
                if "warmup_epochs" in accepted:
                    options["warmup_epochs"] = warmup
                elif warmup:
                    raise SystemExit(f"--updates {variant}: {name} has no warm-up.")
                if "new_item_step" in accepted:
                    options["new_item_step"] = step
                elif step != 1:
                    raise SystemExit(f"--updates {variant}: {name} has no new_item_step.")
                if "average_epochs" in accepted:
                    options["average_epochs"] = average
                elif average != 1:
                    raise SystemExit(f"--updates {variant}: {name} averages no epochs.")
                start = time.perf_counter()
                model.partial_fit(last, epochs=epochs, replay=replay, **options)
                record({"model": name, "seed": seed, "variant": variant,
                        "seconds": round(time.perf_counter() - start, 1),
                        "base_seconds": base_seconds}, model)
    write_table(pd.read_csv(csv), out.with_name(out.name + ".md"))


#: ``:<prefix><value>`` options of an update: (type, default, valid)
UPDATE_OPTIONS = {"lr": (float, 1.0, lambda value: value > 0),
                  "w": (int, 0, lambda value: value >= 0),
                  "b": (int, 0, lambda value: value >= 1),
                  "s": (float, 1.0, lambda value: 0 < value < float("inf")),
                  "a": (int, 1, lambda value: value >= 1),
                  "r": (int, None, lambda value: value >= 0)}


def parse_scoped_update(text):
    """``[MODEL=]CONFIGURATION`` -> (the model, or None for every model, the parsed update)."""
    scope, _, configuration = text.rpartition("=")
    if scope and scope not in MODELS:
        raise SystemExit(f"--updates: {text!r} names model {scope!r}; the models are "
                         f"{', '.join(MODELS)}.")
    return scope or None, parse_update(configuration)


def parse_update(text):
    """``EPOCHS:REPLAY[:fold][:lrF][:wN][:bN][:sF][:aN][:rN]`` -> (epochs or None, replay,
    fold, learning-rate factor, warm-up epochs, batch size or 0 for the fit's, new-item step,
    epochs averaged, the update's seed or None for the base's)."""
    epochs, replay, *options = text.split(":")
    values = {"fold": False, **{prefix: default for prefix, (_, default, _) in
                                UPDATE_OPTIONS.items()}}
    given = set()
    for option in options:
        prefix = next((prefix for prefix in UPDATE_OPTIONS if option.startswith(prefix)),
                      option)
        try:
            value = True if option == "fold" else UPDATE_OPTIONS[prefix][0](option[len(prefix):])
        except (KeyError, ValueError):
            value = None
        if value is None or prefix in given or \
                (prefix in UPDATE_OPTIONS and not UPDATE_OPTIONS[prefix][2](value)):
            raise SystemExit(f"--updates: {text!r} is not EPOCHS:REPLAY[:fold][:lrF][:wN]"
                             "[:bN][:sF][:aN][:rN] (F > 0, N >= 0 warm-up epochs or seed, "
                             "N >= 1 users a batch or epochs averaged).")
        given.add(prefix)
        values[prefix] = value
    return ((None if epochs == "default" else int(epochs)), float(replay or 0),
            values["fold"], values["lr"], values["w"], values["b"], values["s"], values["a"],
            values["r"])


def variant_name(epochs, replay, fold=False, factor=1.0, warmup=0, batch=0, step=1.0,
                 average=1, update_seed=None):
    return (f"update-{'default' if epochs is None else epochs}e-replay{replay:g}"
            + ("-fold" if fold else "") + ("" if factor == 1 else f"-lr{factor:g}")
            + (f"-warmup{warmup}" if warmup else "") + (f"-batch{batch}" if batch else "")
            + ("" if step == 1 else f"-step{step:g}")
            + ("" if average == 1 else f"-average{average}")
            + ("" if update_seed is None else f"-seed{update_seed}"))


def write_table(results, path):
    split = results["split"].iloc[-1]
    users = "test users" if split == "test" else "validation users (inside the train part)"
    lines = ["# partial_fit against a full refit", "",
             "The base is fitted on the first 90 % of the train part; an update is the base "
             "with partial_fit on the last 10 % (`update-<epochs>e-replay<share>`, `-fold`: new "
             "items folded in); the refit "
             f"is fitted on all of it. Scored on the {users}; metrics in %, mean ± std over "
             "seeds; seconds of the fit, or of the update alone.", "",
             "| model | variant | seeds | NDCG@10 | Recall@10 | Coverage@10 | seconds | new "
             "items recommended |", "|---|---|---|---|---|---|---|---|"]
    for (model, variant), rows in results.groupby(["model", "variant"], sort=False):
        def spread(column):
            values = rows[column].astype(float)
            return f"{values.mean():.2f} ± {values.std(ddof=0):.2f}"
        lines.append(f"| {model} | {variant} | {len(rows)} | {spread('ndcg@10')} | "
                     f"{spread('recall@10')} | {spread('coverage@10')} | "
                     f"{rows['seconds'].mean():.0f} | "
                     f"{rows['new_items_recommended'].mean():.0f} of "
                     f"{rows['new_items'].iloc[0]} |")
    lines += ["", f"Machine: {results.machine.iloc[-1]}.", "",
              f"Command: `{results.command.iloc[-1]}`", ""]
    Path(path).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
