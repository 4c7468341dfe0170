r"""Regenerate a Table-2-style comparison (CREATE paper) under the benchmark protocol.

The protocol is described in ``docs/protocol.md``.

    python benchmarks/reproduce.py --dataset movielens-100k --data-home ../shared/data \
        --out benchmarks/results/table2-ml100k
    python benchmarks/reproduce.py --quick --dataset movielens-100k --data-home ../shared/data \
        --out /tmp/quick

Protocol: global temporal split of all interactions at the 0.8 quantile (test); inside train, a
second split at 0.9 (validation). Each model's hyper-parameters are tuned on the validation
split by coordinate descent over its sweeps (one parameter at a time, the others at their best
value so far); neural models early-stop there, which also picks their number of epochs, the
transformer models (SASRec, CREATE) within one common budget (``--budget``, 20 epochs). The
chosen configuration is retrained on the whole train part (train + validation) for the chosen
epochs, once per seed, and the test set is evaluated once per seed: each warm test user's last
interaction is the target, the rest its history, seen items filtered. Tuning uses the first
seed.

Writes ``<out>.md`` (tables, chosen parameters, command line, machine), ``<out>.csv`` (test
rows), ``<out>-tuning.csv`` (validation rows), ``<out>-curves.png`` (CREATE's training curves
at the chosen configuration) and ``<out>-sweeps.png`` (validation NDCG@10 of CREATE along
its sweeps: warm-up, alignment, alignment weight, graph size).

``--tuner optuna --trials N`` replaces the coordinate descent by an Optuna study per model
(TPE sampler seeded by the first seed, the package defaults as the first trial, the same N
trials for every model that has a search space in ``SPACES``; parameters that a trial's other
choices make inactive, such as ``alignment_weight`` without an alignment, are not sampled). The
studies are saved in ``<out>-optuna.db`` (SQLite; ``optuna.load_study(study_name=MODEL,
storage="sqlite:///<out>-optuna.db")``) and each trial is a row of ``<out>-tuning.csv``.

``--quick`` runs one seed, short sweeps and epoch budgets: about 5 minutes on ML-100K on 2 cores.
"""

import argparse
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone

from skcreate import CREATERecommender, SASRecRecommender
from skcreate.apps.comparison import default_models, evaluate_model
from skcreate.data.model_selection import GlobalTemporalSplit, temporal_validation_split

from _common import (add_data_arguments, load_data, machine, parse_value,
                     pyplot)

KS = (10, 100)

# each sweep is (parameter, values) explored around the current best; rows in the paper's order
SWEEPS = {
    "Random": [],
    "PopRnd": [],
    "Popular": [],
    "PureSVD": [("n_factors", [32, 64, 128])],
    "ALS": [("regularization", [0.01, 0.1, 1.0]), ("alpha", [1.0, 10.0])],
    "BPR": [("learning_rate", [0.01, 0.05]), ("regularization", [0.001, 0.01])],
    "LightGCN": [("n_layers", [2, 3])],
    "UltraGCN": [("negative_weight", [1.0, 10.0])],
    "SASRec": [("dropout", [0.2, 0.3, 0.5])],
    "SASRec-SCE": [("dropout", [0.2, 0.3, 0.5])],
    "CREATE-BERT4Rec": [],
    "CREATE-UltraGCN": [("warmup_epochs", [0, 20, 60]),
                        ("alignment", ["barlow", "bt-sr", "contrastive", "none"]),
                        ("alignment_weight", [0.02, 0.05, 0.1])],
    "CREATE": [("warmup_epochs", [0, 20, 60]),
               ("alignment", ["barlow", "contrastive", "none"]),
               ("alignment_weight", [0.02, 0.05, 0.1]),
               ("regularization", [1e-3, 1e-2, 3e-2]),
               ("graph_encoder__n_layers", [1, 2]),
               ("graph_last_frac", [0.2, 0.4, 1.0])],
}

# Optuna search spaces: ("float" | "log", low, high), ("int", low, high, step) or
# ("choice", values); the transformer models share their common part (CREATE's dropout is
# its sequence encoder's)
_DROPOUT, _LEARNING_RATE = ("float", 0.1, 0.5), ("log", 5e-4, 5e-3)
_TRANSFORMER_SPACE = {"dropout": _DROPOUT, "learning_rate": _LEARNING_RATE}
SPACES = {
    "SASRec": _TRANSFORMER_SPACE,
    "SASRec-SCE": _TRANSFORMER_SPACE,
    "CREATE": {
        "alignment": ("choice", ["barlow", "bt-sr", "contrastive", "none"]),
        "sequence_encoder__dropout": _DROPOUT, "learning_rate": _LEARNING_RATE,
        "warmup_epochs": ("int", 0, 80, 10),
        "alignment_weight": ("log", 0.01, 0.5),
        "regularization": ("log", 1e-3, 3e-2),
        "graph_weight": ("float", 0.1, 1.0),
        "graph_last_frac": ("float", 0.2, 1.0),
    },
}
SPACES["CREATE-UltraGCN"] = SPACES["CREATE"]


def estimators():
    """The package's default models, plus CREATE on the BERT4Rec backbone and on UltraGCN (the
    paper's best branch, Table 4), and SASRec with scalable cross-entropy (the paper's SASRec
    baseline)."""
    return {**default_models(),
            "SASRec-SCE": SASRecRecommender(loss="sce"),
            "CREATE-BERT4Rec": CREATERecommender(sequence_encoder="bert4rec"),
            "CREATE-UltraGCN": CREATERecommender(graph_encoder="ultragcn")}


QUICK_SWEEPS = {
    "ALS": [("regularization", [0.01, 0.1])],
    "BPR": [],
    "PureSVD": [],
    "LightGCN": [],
    "UltraGCN": [],
    "SASRec": [],
    "CREATE": [("warmup_epochs", [0, 60]), ("alignment", ["barlow", "contrastive"])],
}
# the transformer models early-stop within one common budget of epochs (--budget), so that
# the comparison gives each the same chance to converge
SEQUENTIAL = ("SASRec", "SASRec-SCE", "CREATE-BERT4Rec", "CREATE", "CREATE-UltraGCN")

QUICK_SETS = {
    "UltraGCN": {"epochs": 10},
    "SASRec": {"epochs": 10},
    "SASRec-SCE": {"epochs": 10},
    "CREATE-BERT4Rec": {"epochs": 10, "warmup_epochs": 10},
    "CREATE": {"epochs": 10},
    "CREATE-UltraGCN": {"epochs": 10},
}

# the paper's Table 2 (its own protocol), NDCG@10 %
PAPER = {
    "amazon-beauty": {"SASRec": 1.87, "LightGCN": 0.93, "CREATE": 2.15},
    "movielens-1m": {"SASRec": 7.96, "CREATE": 8.99},
    "amazon-sports": {"SASRec": 1.48, "CREATE": 1.58},
}


def parse_model_options(items, split_values=False):
    """``MODEL.param=value`` (or ``=v1,v2`` with ``split_values``) into {model: {param: ...}}."""
    options = {}
    for item in items:
        key, _, value = item.partition("=")
        model, _, param = key.partition(".")
        if model not in SWEEPS or not param or not value:
            raise SystemExit(f"bad option {item!r}: expected MODEL.param=value with MODEL in "
                             f"{list(SWEEPS)}")
        parsed = [parse_value(v) for v in value.split(",")] if split_values else parse_value(value)
        options.setdefault(model, {})[param] = parsed
    return options


def fixed_params(names, budget, quick=False, sets=()):
    """Fixed parameters per model: the epoch budget, then ``--quick``'s, then ``--set``'s."""
    fixed = {name: {"epochs": budget} for name in names if name in SEQUENTIAL}
    for options in (QUICK_SETS if quick else {}, parse_model_options(sets)):
        for name, params in options.items():
            if name in names:
                fixed[name] = {**fixed.get(name, {}), **params}
    return fixed


def is_neural(estimator):
    return "trainer__early_stopping" in estimator.get_params()


class Tuner:
    """Validation scores of configurations of one estimator, each fitted once."""

    def __init__(self, name, estimator, train, catalog, seed, log):
        self.name, self.estimator, self.train = name, estimator, train
        self.catalog, self.seed, self.log = catalog, seed, log
        self.rows, self.fitted = [], {}
        if not is_neural(estimator):
            # the neural estimators make the same split themselves when early stopping
            self.inner, self.valid = temporal_validation_split(train)

    def evaluate(self, params):
        """Validation result of ``params``, fitting only configurations not seen before."""
        model = clone(self.estimator).set_params(**params)
        if "random_state" in model.get_params():
            model.set_params(random_state=self.seed)
        key = repr(sorted(model.get_params().items()))
        if key in self.fitted:
            return self.fitted[key]
        start = time.perf_counter()
        if is_neural(model):
            # the estimator's own 0.9 split of train is the protocol's validation split
            model.set_params(trainer__early_stopping=True).fit(self.train)
            score, epochs = float(np.nanmax(model.validation_scores_)), model.best_epoch_
        else:
            score, epochs = evaluate_model(model, self.inner, self.valid, self.catalog,
                                           ks=(10,))["ndcg@10"], None
        result = {"score": score, "epochs": epochs, "model": model,
                  "fit_s": time.perf_counter() - start}
        self.fitted[key] = result
        self.log(f"  {self.name} {dict(params) or 'defaults'}: validation NDCG@10 "
                 f"{100 * score:.2f} %" + (f" at epoch {epochs}" if epochs else ""))
        return result

    def _record(self, params, result, sweep=""):
        self.rows.append({"model": self.name, "sweep": sweep, "value": params.get(sweep, ""),
                          "params": dict(params), "val_ndcg@10": result["score"],
                          "best_epoch": result["epochs"], "fit_s": result["fit_s"]})

    def search(self, space, n_trials, storage):
        """An Optuna study of ``n_trials`` over ``space``; returns (best params, best result)."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            direction="maximize", study_name=self.name, storage=storage, load_if_exists=False,
            sampler=optuna.samplers.TPESampler(seed=self.seed))
        defaults = self.estimator.get_params()
        study.enqueue_trial({k: defaults[k] for k, spec in space.items()
                             if in_space(defaults[k], spec)}, skip_if_exists=True)
        results = {}

        def objective(trial):
            params = suggest(trial, space, self.estimator)
            result = self.evaluate(params)
            self._record(params, result, sweep=f"optuna trial {trial.number}")
            trial.set_user_attr("best_epoch", result["epochs"])
            results[trial.number] = (params, result)
            return result["score"]

        study.optimize(objective, n_trials=n_trials)
        self.log(f"  {self.name}: best trial {study.best_trial.number}, validation NDCG@10 "
                 f"{100 * study.best_value:.2f} %, {results[study.best_trial.number][0]}")
        return results[study.best_trial.number]

    def tune(self, sweeps):
        """Coordinate descent over ``sweeps``; returns (best params, best result)."""
        best_params = {}
        best = self.evaluate(best_params)
        self._record(best_params, best)
        for param, values in sweeps:
            current = clone(self.estimator).set_params(**best_params)
            if inactive(current, param):
                self.log(f"  {self.name}: {param} has no effect with {best_params or 'defaults'}"
                         "; sweep skipped")
                continue
            # the other parameters stay fixed within a sweep, so its rows form one curve
            fixed = {k: v for k, v in best_params.items() if k != param}
            for value in values:
                params = {**fixed, param: value}
                result = self.evaluate(params)
                self._record(params, result, sweep=param)
                if result["score"] > best["score"]:
                    best, best_params = result, params
        return best_params, best


def in_space(value, spec):
    """Whether ``value`` is a point of the search-space entry ``spec``."""
    kind, *args = spec
    if kind == "choice":
        return value in args[0]
    if kind == "int":
        return args[0] <= value <= args[1] and (value - args[0]) % args[2] == 0
    return args[0] <= value <= args[1]


def inactive(estimator, name):
    """Whether parameter ``name`` has no effect on ``estimator``: an option of a part it does
    not use, or an alignment setting without an alignment."""
    params = estimator.get_params()
    return name not in params or (
        name in ("alignment_weight", "alignment_batch_size") and params.get("alignment") == "none")


def suggest(trial, space, estimator):
    """One trial's parameters; choices come first, so that the parameters they make inactive
    (:func:`inactive`) are left out."""
    params = {}
    for name, (kind, *args) in sorted(space.items(), key=lambda kv: kv[1][0] != "choice"):
        if inactive(clone(estimator).set_params(**params), name):
            continue
        if kind == "choice":
            params[name] = trial.suggest_categorical(name, args[0])
        elif kind == "int":
            params[name] = trial.suggest_int(name, args[0], args[1], step=args[2])
        else:
            params[name] = trial.suggest_float(name, args[0], args[1], log=kind == "log")
    return params


def summary_table(results, paper):
    cols = [f"{m}@{k}" for k in KS for m in ("ndcg", "recall", "coverage")]
    lines = ["| model | " + " | ".join(cols) + " | epochs | paper NDCG@10 |",
             "|---" * (len(cols) + 3) + "|"]
    # rows in the paper's order, whatever order the models ran in
    order = {name: i for i, name in enumerate(SWEEPS)}
    groups = sorted(results.groupby("model", sort=False), key=lambda g: order[g[0]])
    for name, group in groups:
        cells = []
        for col in cols:
            values = 100 * group[col].to_numpy()
            std = f" ± {values.std(ddof=1):.2f}" if len(values) > 1 else ""
            cells.append(f"{values.mean():.2f}{std}")
        epochs = group["epochs"].iloc[0] if "epochs" in group else np.nan
        cells.append("" if pd.isna(epochs) else str(int(epochs)))
        cells.append(f"{paper[name]:.2f}" if name in paper else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gain_line(results):
    means = results.groupby("model")["ndcg@10"].mean()
    if not {"SASRec", "CREATE"} <= set(means.index):
        return ""
    per_seed = results.pivot_table(index="seed", columns="model", values="ndcg@10")
    wins = int((per_seed["CREATE"] > per_seed["SASRec"]).sum())
    gain = 100 * (means["CREATE"] / means["SASRec"] - 1)
    return (f"CREATE over SASRec, test NDCG@10: {gain:+.1f} % (CREATE higher on {wins} of "
            f"{len(per_seed)} seeds).")


def plot_sweeps(tuning, reference, path):
    import matplotlib.pyplot as plt

    part = tuning[(tuning.model == "CREATE") & (tuning.sweep != "")
                  & ~tuning.sweep.str.startswith("optuna")]
    sweeps = list(dict.fromkeys(part["sweep"]))
    if not sweeps:
        return
    fig, axes = plt.subplots(1, len(sweeps), figsize=(3.6 * len(sweeps), 3.2), squeeze=False)
    for ax, sweep in zip(axes[0], sweeps):
        rows = part[part.sweep == sweep]
        ax.plot([str(v) for v in rows["value"]], 100 * rows["val_ndcg@10"], marker="o",
                label="CREATE")
        if reference is not None:
            ax.axhline(100 * reference, color="grey", linestyle="--", label="SASRec")
        ax.set(title=sweep, ylabel="validation NDCG@10 (%)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_trials(tuning, path):
    """Validation NDCG@10 of every Optuna trial and the best so far, one line per model."""
    import matplotlib.pyplot as plt

    trials = tuning[tuning.sweep.str.startswith("optuna")]
    if trials.empty:
        return
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, (name, rows) in enumerate(trials.groupby("model", sort=False)):
        scores = 100 * rows["val_ndcg@10"].to_numpy()
        ax.plot(scores, marker="o", linestyle="", color=f"C{i}", alpha=0.5)
        ax.plot(np.maximum.accumulate(scores), color=f"C{i}", label=name)
    ax.set(xlabel="trial", ylabel="validation NDCG@10 (%)", title="Optuna studies")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(out, header, test_rows, tuning_rows, chosen, dataset):
    """Write the CSVs and the Markdown report; returns the report text."""
    results = pd.DataFrame(test_rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    results.to_csv(f"{out}.csv", index=False)
    if tuning_rows:
        pd.DataFrame(tuning_rows).to_csv(f"{out}-tuning.csv", index=False)
    lines = header + [summary_table(results, PAPER.get(dataset, {})), ""]
    gain = gain_line(results)
    if gain:
        lines += [gain, ""]
    lines += ["Chosen parameters (validation NDCG@10, first seed; epochs = early-stopping "
              "choice, retrained on train + validation):", ""]
    lines += [f"- {name}: {params or 'defaults'}" for name, params in chosen.items()]
    text = "\n".join(lines) + "\n"
    Path(f"{out}.md").write_text(text)
    return text


def write_figures(out, tuning_rows, curves_model):
    plt = pyplot()
    if plt is None:
        return
    from skcreate.apps.plotting import plot_training_curves

    if curves_model is not None:
        fig = plot_training_curves(curves_model)
        fig.savefig(f"{out}-curves.png", dpi=120)
        plt.close(fig)
    if tuning_rows:
        tuning = pd.DataFrame(tuning_rows)
        sasrec = tuning.loc[tuning.model == "SASRec", "val_ndcg@10"]
        plot_sweeps(tuning, sasrec.max() if len(sasrec) else None, f"{out}-sweeps.png")
        plot_trials(tuning, f"{out}-optuna.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser, "movielens-100k")
    parser.add_argument("--models", default=",".join(SWEEPS))
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="default 0 1 2 (0 with --quick)")
    parser.add_argument("--budget", type=int, default=20, metavar="EPOCHS",
                        help=f"epoch budget of the transformer models {list(SEQUENTIAL)}, the "
                             "same for all (default 20; --quick and --set override it)")
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.PARAM=VALUE",
                        help="fixed parameters (e.g. SASRec.dropout=0.5)")
    parser.add_argument("--sweep", action="append", default=[], metavar="MODEL.PARAM=V1,V2",
                        help="replace the model's default sweeps by these (repeatable)")
    parser.add_argument("--no-sweep", action="append", default=[], metavar="MODEL",
                        help="no parameter sweeps for MODEL (a neural model still early-stops "
                             "on validation to choose its epochs)")
    parser.add_argument("--no-tune", action="append", default=[], metavar="MODEL",
                        help="use MODEL's parameters as given, epochs included")
    parser.add_argument("--tuner", choices=("sweeps", "optuna"), default="sweeps",
                        help="coordinate descent over SWEEPS, or an Optuna study over SPACES")
    parser.add_argument("--trials", type=int, default=20,
                        help="Optuna trials per model (--tuner optuna; 3 with --quick)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="table2")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*unseen at fit.*")
    warnings.filterwarnings("ignore", message=".*no known item.*")

    names = args.models.split(",")
    unknown = set(names) - set(SWEEPS)
    if unknown:
        parser.error(f"unknown model(s) {sorted(unknown)}; choose from {list(SWEEPS)}")
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    sets = fixed_params(names, args.budget, args.quick, args.set)
    custom_sweeps = parse_model_options(args.sweep, split_values=True)

    def log(message):
        print(message, file=sys.stderr, flush=True)

    X = load_data(args.dataset, args.data_home)
    train_idx, test_idx = next(GlobalTemporalSplit(0.8).split(X))
    train, test = X.iloc[train_idx], X.iloc[test_idx]
    catalog = X["item_id"].nunique()
    log(f"{args.dataset}: {len(train)} train rows, {test['user_id'].nunique()} test users")

    test_rows, tuning_rows, chosen, curves_model = [], [], {}, None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.tuner == "optuna":
        # one run, one set of studies: a rerun starts them afresh
        Path(f"{out}-optuna.db").unlink(missing_ok=True)
    command = "python benchmarks/reproduce.py " + " ".join(map(shlex.quote, argv))
    started = time.perf_counter()

    def header(done):
        elapsed = f"{time.perf_counter() - started:.0f} s " + ("in total" if done else
                                                              "so far (run in progress)")
        return [f"# {args.dataset}: Table-2-style comparison", "", f"Command: `{command}`", "",
                f"Machine: {machine()}; {elapsed}.", "",
                f"Protocol: docs/protocol.md; {len(train)} train rows, "
                f"{test['user_id'].nunique()} warm test users, seeds {seeds}, metrics in %, "
                "mean ± std over seeds.", ""]

    models = estimators()
    for name in names:
        estimator = clone(models[name]).set_params(**sets.get(name, {}))
        sweeps = SWEEPS[name]
        if name in args.no_sweep:
            sweeps = []
        elif name in custom_sweeps:
            sweeps = list(custom_sweeps[name].items())
        elif args.quick:
            sweeps = QUICK_SWEEPS.get(name, sweeps)
        params, epochs = {}, None
        optuna_space = SPACES.get(name) if args.tuner == "optuna" else None
        if name not in args.no_tune and (sweeps or optuna_space or is_neural(estimator)):
            log(f"tuning {name}")
            tuner = Tuner(name, estimator, train, catalog, seeds[0], log)
            if optuna_space and name not in args.no_sweep:
                trials = 3 if args.quick and "--trials" not in argv else args.trials
                params, best = tuner.search(optuna_space, trials, f"sqlite:///{out}-optuna.db")
            else:
                params, best = tuner.tune(sweeps)
            epochs = best["epochs"]
            tuning_rows.extend(tuner.rows)
            if name == "CREATE":
                curves_model = best["model"]
        final_params = {**params}
        if epochs is not None:
            # retrain on train + validation for the epochs validation chose
            final_params["epochs"] = max(epochs, 1)
        chosen[name] = {**sets.get(name, {}), **final_params}
        for seed in seeds:
            model = clone(estimator).set_params(**final_params)
            if "random_state" in model.get_params():
                model.set_params(random_state=seed)
            row = {"model": name, "seed": seed, "params": chosen[name]}
            row.update(evaluate_model(model, train, test, catalog, ks=KS))
            test_rows.append(row)
            log(f"{name} seed {seed}: test NDCG@10 {100 * row['ndcg@10']:.2f} %, fit "
                f"{row['fit_s']:.0f} s")

        # a long run keeps what it has measured so far
        write_report(out, header(False), test_rows, tuning_rows, chosen, args.dataset)
    print(write_report(out, header(True), test_rows, tuning_rows, chosen, args.dataset))
    write_figures(out, tuning_rows, curves_model)


if __name__ == "__main__":
    main()
