"""Fit several recommenders on one global temporal split and tabulate their test metrics."""

import time

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..estimators.baselines import (PopRandomRecommender, PopularRecommender, PureSVDRecommender,
                        RandomRecommender)
from ..estimators.create import CREATERecommender
from ..estimators.graph import LightGCNRecommender, UltraGCNRecommender
from ..estimators.matrix_factorization import ALSRecommender, BPRRecommender
from ..data.metrics import evaluate
from ..data.model_selection import GlobalTemporalSplit, split_history_target
from ..estimators.sequential import SASRecRecommender

__all__ = ["evaluate_model", "compare", "default_models", "quick_models", "format_table"]

#: Epochs of SASRec and CREATE (joint) and CREATE's warm-up in :func:`quick_models`.
QUICK_EPOCHS = 5
QUICK_WARMUP_EPOCHS = 20


def default_models(random_state=0, epochs=None):
    """The recommenders of the paper's comparison, with skcreate's defaults.

    Parameters
    ----------
    random_state : int
        Seed of every model.
    epochs : int, optional
        Override the epochs of the neural models (for quick runs).

    Returns
    -------
    dict of str to estimator
    """
    neural = {} if epochs is None else {"epochs": epochs}
    return {
        "Random": RandomRecommender(random_state=random_state),
        "PopRnd": PopRandomRecommender(random_state=random_state),
        "Popular": PopularRecommender(),
        "PureSVD": PureSVDRecommender(random_state=random_state),
        "ALS": ALSRecommender(random_state=random_state),
        "BPR": BPRRecommender(random_state=random_state),
        "LightGCN": LightGCNRecommender(random_state=random_state, **neural),
        "UltraGCN": UltraGCNRecommender(random_state=random_state, **neural),
        "SASRec": SASRecRecommender(random_state=random_state, **neural),
        "CREATE": CREATERecommender(random_state=random_state, **neural),
    }


def quick_models(random_state=0):
    """A first look in about a minute on 2 cores: popularity, ALS, SASRec and CREATE.

    SASRec and CREATE train for :data:`QUICK_EPOCHS` epochs (CREATE after
    :data:`QUICK_WARMUP_EPOCHS` graph-only warm-up epochs) instead of their defaults, so their
    scores are below those of :func:`default_models`.

    Parameters
    ----------
    random_state : int
        Seed of every model.

    Returns
    -------
    dict of str to estimator

    Examples
    --------
    >>> from skcreate.apps.comparison import quick_models
    >>> list(quick_models())
    ['Popular', 'ALS', 'SASRec', 'CREATE']
    >>> quick_models()["CREATE"].epochs
    5
    """
    return {
        "Popular": PopularRecommender(),
        "ALS": ALSRecommender(random_state=random_state),
        "SASRec": SASRecRecommender(epochs=QUICK_EPOCHS, random_state=random_state),
        "CREATE": CREATERecommender(warmup_epochs=QUICK_WARMUP_EPOCHS, epochs=QUICK_EPOCHS,
                                    random_state=random_state),
    }


def evaluate_model(model, train, test, catalog, ks=(10, 100)):
    """Fit ``model`` on ``train`` and score next-item prediction on ``test``.

    Parameters
    ----------
    model : skcreate recommender
        Fitted in place.
    train : pandas.DataFrame
    test : pandas.DataFrame
        All interactions of the test users; each user's last one is the target.
    catalog : int or iterable
        Catalogue for coverage (all items of the data set).
    ks : tuple of int

    Returns
    -------
    dict
        Metrics (fractions), ``fit_s``, ``epochs`` and ``s_per_epoch`` (neural models: mean
        training seconds of an epoch, CREATE's joint epochs only),
        ``recommend_s`` and ``users_per_s`` (k = max(ks)).
    """
    history, targets = split_history_target(
        test, getattr(model, "user_col", "user_id"), getattr(model, "item_col", "item_id"),
        getattr(model, "time_col", "timestamp"))
    start = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - start
    row = {}
    start = time.perf_counter()
    recs = model.recommend(history, k=max(ks))
    recommend_s = time.perf_counter() - start
    n_users = history[getattr(model, "user_col", "user_id")].nunique()
    row.update(evaluate(recs, targets, catalog, ks=ks))
    row.update(fit_s=fit_s, recommend_s=recommend_s, users_per_s=n_users / recommend_s)
    if hasattr(model, "epoch_seconds_") and model.n_epochs_:
        # the last n_epochs_ are the model's own epochs (CREATE's warm-up comes first)
        row["epochs"] = model.n_epochs_
        row["s_per_epoch"] = float(np.mean(model.epoch_seconds_[-model.n_epochs_:]))
    return row


def compare(X, models, quantile=0.8, ks=(10, 100), seeds=(0,), log=None):
    """Evaluate ``models`` on the global temporal split of ``X``, over several seeds.

    Parameters
    ----------
    X : pandas.DataFrame
        Interactions with columns ``user_id``, ``item_id``, ``timestamp``.
    models : dict of str to estimator
        Estimators (cloned for every seed; ``random_state`` set to the seed when they have it).
    quantile : float
        Test threshold quantile.
    ks : tuple of int
    seeds : sequence of int
    log : callable, optional
        Called with a line of progress per fitted model.

    Returns
    -------
    pandas.DataFrame
        One row per (model, seed), with ``test_users``: the number of users the metrics rest on.
    """
    train_idx, test_idx = next(GlobalTemporalSplit(quantile).split(X))
    train, test = X.iloc[train_idx], X.iloc[test_idx]
    test_users = test["user_id"].nunique()
    catalog = X["item_id"].nunique()
    rows = []
    for name, model in models.items():
        for seed in seeds:
            est = clone(model)
            if "random_state" in est.get_params():
                est.set_params(random_state=seed)
            row = {"model": name, "seed": seed, "test_users": test_users}
            row.update(evaluate_model(est, train, test, catalog, ks))
            rows.append(row)
            if log:
                log(f"{name} seed={seed}: ndcg@{ks[0]}={row[f'ndcg@{ks[0]}']:.4f} "
                    f"fit {row['fit_s']:.1f}s")
    return pd.DataFrame(rows)


def format_table(results, ks=(10, 100)):
    """Markdown table of mean (± std over seeds) metrics in percent, plus fit seconds."""
    metric_cols = [f"{m}@{k}" for k in ks for m in ("ndcg", "recall", "coverage")]
    grouped = results.groupby("model", sort=False)
    lines = ["| model | " + " | ".join(metric_cols) + " | fit s |",
             "|---" * (len(metric_cols) + 2) + "|"]
    for name, group in grouped:
        cells = []
        for col in metric_cols:
            values = 100 * group[col].to_numpy()
            cell = f"{values.mean():.2f}"
            if len(values) > 1:
                cell += f" ± {values.std(ddof=1):.2f}"
            cells.append(cell)
        cells.append(f"{np.mean(group['fit_s']):.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
