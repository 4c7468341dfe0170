"""Top-K metrics for next-item recommendation and scorers for scikit-learn model selection.

Recommendations are frames with a user column, an item column and a ``rank`` column (1 = best;
without ``rank``, row order within each user is the rank), as returned by the estimators'
``recommend``. Ranks are positions: whole numbers >= 1, distinct within a user (two rows at rank 1
would put two items in one slot and lift NDCG above 1, so they are an error); gaps are allowed. An
item listed twice for a user counts once, at its better rank. Targets are frames of relevant
(user, item) pairs, usually each user's last interaction
(:func:`skcreate.data.model_selection.split_history_target`). Relevance is binary and metrics
are means over the users of ``targets``; a target user without recommendations scores 0.
All values are fractions in [0, 1], not percentages.
"""

import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from skcreate.data.interactions import as_frame, check_column_roles, check_interactions, check_k
from skcreate.data.model_selection import split_history_target

__all__ = ["ndcg_at_k", "recall_at_k", "coverage_at_k", "evaluate", "make_scorer"]

_METRICS = ("ndcg", "recall", "coverage")


class _Recommendations:
    """Validated recommendations: user and item ids and a float rank per row (may be empty)."""

    def __init__(self, recommendations, user_col, item_col):
        recommendations = as_frame(recommendations, "recommendations")
        # the rank column holds ranks: as an id column it would be read as both
        check_column_roles(user_col, item_col, reserved=("rank",))
        missing = [c for c in (user_col, item_col) if c not in recommendations.columns]
        if missing:
            raise ValueError(
                f"recommendations is missing column(s) {missing}; columns present: "
                f"{list(recommendations.columns)}. Set user_col/item_col to map other names."
            )
        if len(recommendations):
            check_interactions(recommendations, user_col, item_col, name="recommendations",
                               require_time=False)
        self.users = recommendations[user_col].array
        self.items = recommendations[item_col].array
        if "rank" in recommendations.columns:
            if list(recommendations.columns).count("rank") > 1:
                raise ValueError("recommendations has several columns named 'rank'; keep one.")
            rank = recommendations["rank"]
            if not pd.api.types.is_numeric_dtype(rank) or pd.api.types.is_bool_dtype(rank):
                raise TypeError(
                    f"recommendations['rank'] must be numeric, got dtype {rank.dtype}.")
            self.rank = rank.to_numpy(dtype=float)
            # isfinite also rejects NaN and inf, which equals its floor
            if not np.isfinite(self.rank).all() or (self.rank < 1).any() \
                    or (self.rank != np.floor(self.rank)).any():
                raise ValueError("recommendations['rank'] must hold whole-number ranks >= 1 "
                                 "(1 = best) without missing values.")
            _check_distinct_ranks(recommendations, user_col, self.rank)
        else:
            # no rank column: the row order within each user is the ranking
            self.rank = recommendations.groupby(user_col, sort=False).cumcount() \
                .to_numpy(dtype=float) + 1.0


def _check_distinct_ranks(recommendations, user_col, rank):
    users = pd.factorize(recommendations[user_col])[0]
    repeated = pd.DataFrame({"user": users, "rank": rank}).duplicated().to_numpy()
    if repeated.any():
        first = np.flatnonzero(repeated)[0]
        raise ValueError(
            f"recommendations['rank'] repeats a rank within a user in {int(repeated.sum())} "
            f"row(s); first at row {recommendations.index[[first]].tolist()[0]!r} (user "
            f"{recommendations[user_col].iloc[[first]].tolist()[0]!r}, rank {rank[first]:g}). "
            "Ranks are positions, distinct within each user; drop the rank column to rank by row "
            "order."
        )


class _Hits:
    """Recommended relevant items of the target users.

    Attributes
    ----------
    users : numpy.ndarray of int
        Target-user code of each hit; one hit per distinct relevant (user, item) recommended, at
        its best rank.
    rank : numpy.ndarray of float
        Rank of each hit.
    n_relevant : numpy.ndarray of int
        Distinct relevant items of each target user (indexed by code).
    """

    def __init__(self, recs, targets, user_col, item_col):
        truth = check_interactions(targets, user_col, item_col, name="targets",
                                   require_time=False)
        # integer codes of the target users and items make (user, item) pairs int64 keys
        t_users, user_ids = pd.factorize(truth[user_col])
        t_items, item_ids = pd.factorize(truth[item_col])
        n_items = len(item_ids)
        t_keys = np.unique(t_users.astype(np.int64) * n_items + t_items)
        self.n_relevant = np.bincount(t_keys // n_items, minlength=len(user_ids))
        r_users = pd.Index(user_ids).get_indexer(recs.users)
        r_items = pd.Index(item_ids).get_indexer(recs.items)
        if len(r_users) and (r_users < 0).all():
            warnings.warn("No target user appears in recommendations: every score is 0. Check "
                          "that both frames use the same user ids (and id types).", UserWarning,
                          stacklevel=3)
        r_keys = r_users.astype(np.int64) * n_items + r_items
        hit = (r_users >= 0) & (r_items >= 0) & np.isin(r_keys, t_keys)
        keys, rank = r_keys[hit], recs.rank[hit]
        # an item listed twice for a user counts once, at its best rank
        by_rank = np.argsort(rank, kind="stable")
        _, first = np.unique(keys[by_rank], return_index=True)
        keep = by_rank[first]
        self.users, self.rank = keys[keep] // n_items, rank[keep]

    def _per_user(self, k, gains):
        top = self.rank <= k
        return np.bincount(self.users[top], weights=gains[top], minlength=len(self.n_relevant))

    def ndcg(self, k):
        dcg = self._per_user(k, 1.0 / np.log2(self.rank + 1.0))
        ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
        return float(np.mean(dcg / ideal[np.minimum(self.n_relevant, k) - 1]))

    def recall(self, k):
        found = self._per_user(k, np.ones(len(self.rank)))
        return float(np.mean(found / self.n_relevant))


def _coverage(recs, catalog, k):
    """Coverage at ``k`` of validated recommendations (:class:`_Recommendations`)."""
    if catalog is None:
        raise ValueError("coverage needs catalog: the number of items or the item ids of the "
                         "whole catalogue.")
    items = pd.unique(recs.items[recs.rank <= k])
    if isinstance(catalog, numbers.Integral) and not isinstance(catalog, bool):
        if catalog < 1:
            raise ValueError(f"catalog must be a positive number of items, got {catalog!r}.")
        if len(items) > catalog:
            raise ValueError(f"The top-{k} lists hold {len(items)} distinct items, more than "
                             f"catalog={catalog} items.")
        return len(items) / int(catalog)
    if isinstance(catalog, (str, bytes)) or not np.iterable(catalog):
        raise ValueError("catalog must be an int (number of items) or an iterable of item ids, "
                         f"got {catalog!r}.")
    catalog = pd.Index(catalog if isinstance(catalog, (pd.Index, pd.Series, np.ndarray))
                       else list(catalog)).unique()
    if len(catalog) == 0:
        raise ValueError("catalog is empty.")
    if catalog.hasnans:
        # a missing id is no item: counting it would lower every coverage
        raise ValueError("catalog holds missing ids (None or NaN); drop them.")
    # recommended items outside the catalogue do not count
    return float((catalog.get_indexer(items) >= 0).sum() / len(catalog))


def ndcg_at_k(recommendations, targets, k=10, user_col="user_id", item_col="item_id"):
    """Normalised discounted cumulative gain at ``k`` with binary relevance.

    ``DCG = sum(1 / log2(rank + 1))`` over the relevant items ranked in the top ``k``;
    ``IDCG`` is the same sum over ``min(|relevant|, k)`` positions. With one target per user,
    NDCG is ``1 / log2(rank + 1)`` if the target is in the top ``k``, else 0.

    Parameters
    ----------
    recommendations : pandas.DataFrame
        Columns ``user_col``, ``item_col`` and optionally ``rank`` (1 = best; without it the
        row order within each user is the ranking).
    targets : pandas.DataFrame
        Relevant (user, item) pairs, one or more per user.
    k : int, default=10
        Cut-off.
    user_col, item_col : str, default="user_id", "item_id"
        Column names in both frames.

    Returns
    -------
    float
        Mean over the users of ``targets``; users without recommendations count 0.

    Examples
    --------
    >>> import pandas as pd
    >>> from skcreate.data.metrics import ndcg_at_k
    >>> recs = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [7, 8, 9], "rank": [1, 2, 3]})
    >>> targets = pd.DataFrame({"user_id": [1, 2], "item_id": [9, 7]})
    >>> ndcg_at_k(recs, targets, k=10)  # user 1: 1/log2(4) = 0.5, user 2: 0
    0.25
    """
    k = check_k(k)
    recs = _Recommendations(recommendations, user_col, item_col)
    return _Hits(recs, targets, user_col, item_col).ndcg(k)


def recall_at_k(recommendations, targets, k=10, user_col="user_id", item_col="item_id"):
    """Recall at ``k``: share of each user's relevant items found in its top ``k``.

    Equals HitRate@k when each user has one target.

    Parameters
    ----------
    recommendations : pandas.DataFrame
        Columns ``user_col``, ``item_col`` and optionally ``rank`` (see :func:`ndcg_at_k`).
    targets : pandas.DataFrame
        Relevant (user, item) pairs, one or more per user.
    k : int, default=10
        Cut-off.
    user_col, item_col : str, default="user_id", "item_id"
        Column names in both frames.

    Returns
    -------
    float
        Mean over the users of ``targets``; users without recommendations count 0.

    Examples
    --------
    >>> import pandas as pd
    >>> from skcreate.data.metrics import recall_at_k
    >>> recs = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [7, 8, 9]})
    >>> targets = pd.DataFrame({"user_id": [1, 1], "item_id": [8, 9]})
    >>> recall_at_k(recs, targets, k=2)
    0.5
    """
    k = check_k(k)
    recs = _Recommendations(recommendations, user_col, item_col)
    return _Hits(recs, targets, user_col, item_col).recall(k)


def coverage_at_k(recommendations, k=10, *, catalog=None, user_col="user_id",
                  item_col="item_id"):
    """Catalogue coverage at ``k``: distinct items in all users' top ``k`` / catalogue size.

    Parameters
    ----------
    recommendations : pandas.DataFrame
        Columns ``user_col``, ``item_col`` and optionally ``rank`` (see :func:`ndcg_at_k`).
    k : int, default=10
        Cut-off.
    catalog : int or iterable of item ids
        Required (keyword-only). Either the number of items of the catalogue, or its item ids
        (for instance a fitted estimator's ``item_ids_``); with ids, recommended items outside
        the catalogue are not counted.
    user_col, item_col : str, default="user_id", "item_id"
        Column names.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    ValueError
        If ``catalog`` is missing, empty, holds missing ids, or is smaller than the number of
        distinct recommended items.

    Examples
    --------
    >>> import pandas as pd
    >>> from skcreate.data.metrics import coverage_at_k
    >>> recs = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [7, 8, 7, 9]})
    >>> coverage_at_k(recs, k=1, catalog=10)
    0.1
    >>> coverage_at_k(recs, k=2, catalog=[7, 8, 9, 10])
    0.75
    """
    k = check_k(k)
    return _coverage(_Recommendations(recommendations, user_col, item_col), catalog, k)


def evaluate(recommendations, targets, catalog, ks=(10, 100), user_col="user_id",
             item_col="item_id"):
    """NDCG, recall and coverage at several cut-offs.

    Parameters
    ----------
    recommendations : pandas.DataFrame
        Columns ``user_col``, ``item_col`` and optionally ``rank`` (see :func:`ndcg_at_k`);
        should hold at least ``max(ks)`` items per user.
    targets : pandas.DataFrame
        Relevant (user, item) pairs.
    catalog : int or iterable of item ids
        Catalogue for coverage (see :func:`coverage_at_k`).
    ks : int or sequence of int, default=(10, 100)
        Cut-offs.
    user_col, item_col : str, default="user_id", "item_id"
        Column names.

    Returns
    -------
    dict
        ``{"ndcg@10": ..., "recall@10": ..., "coverage@10": ..., "ndcg@100": ...}``, floats
        (fractions, not percent).

    Examples
    --------
    >>> import pandas as pd
    >>> from skcreate.data.metrics import evaluate
    >>> recs = pd.DataFrame({"user_id": [1, 1], "item_id": [7, 8], "rank": [1, 2]})
    >>> targets = pd.DataFrame({"user_id": [1], "item_id": [7]})
    >>> evaluate(recs, targets, catalog=4, ks=(1,))
    {'ndcg@1': 1.0, 'recall@1': 1.0, 'coverage@1': 0.25}
    """
    ks = [check_k(k, "ks") for k in np.atleast_1d(np.asarray(ks, dtype=object))]
    if not ks:
        raise ValueError("ks must hold at least one cut-off.")
    recs = _Recommendations(recommendations, user_col, item_col)
    hits = _Hits(recs, targets, user_col, item_col)
    out = {}
    for k in ks:
        out[f"ndcg@{k}"] = hits.ndcg(k)
        out[f"recall@{k}"] = hits.recall(k)
        out[f"coverage@{k}"] = _coverage(recs, catalog, k)
    return out


def _history_and_targets(X, user_col, item_col, time_col):
    """Next-item targets of ``X`` with their histories, under the scorer's rules.

    A user with a single interaction has no history to predict its target from: such users are
    left out, with a warning that counts them, and an error says so when no user remains. A
    target with an identical row (same user, item, time) in its history is a duplicated event:
    it is kept, with a warning, since filtering seen items makes it a sure miss.
    """
    history, targets = split_history_target(X, user_col, item_col, time_col)
    has_history = targets[user_col].isin(history[user_col]).to_numpy()
    if not has_history.any():
        raise ValueError(
            f"No user of X has two or more interactions, so none can be scored: each user's last "
            f"interaction is the target and the earlier ones its history ({len(targets)} user(s) "
            "with a single interaction)."
        )
    if not has_history.all():
        warnings.warn(
            f"{int((~has_history).sum())} of {len(targets)} user(s) in X have a single "
            "interaction: with no history to predict the target from, they are left out of the "
            "score.", UserWarning, stacklevel=4)
        targets = targets[has_history]
    event = [user_col, item_col, time_col]
    duplicated = pd.MultiIndex.from_frame(targets[event]).isin(
        pd.MultiIndex.from_frame(history[event]))
    if duplicated.any():
        warnings.warn(
            f"{int(duplicated.sum())} target(s) repeat a row of their user's history exactly "
            "(same item and time: duplicate rows); with filter_seen=True such a target is "
            "filtered as seen and scores 0. Drop duplicate rows first (X.drop_duplicates).",
            UserWarning, stacklevel=4)
    return history, targets


class _RecommenderScorer:
    """``scorer(estimator, X, y=None)``: next-item metric of ``estimator.recommend`` on ``X``."""

    def __init__(self, metric, k):
        self.metric = metric
        self.k = k

    def __call__(self, estimator, X, y=None):
        final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
        if not hasattr(final, "recommend"):
            raise TypeError(f"{self!r} scores recommenders (estimators with a recommend "
                            f"method), got {type(final).__name__}.")
        user_col = getattr(final, "user_col", "user_id")
        item_col = getattr(final, "item_col", "item_id")
        time_col = getattr(final, "time_col", "timestamp")
        # targets come from the raw frame: a preprocessing step may filter the history (and
        # drop whole users) but must never turn an earlier, trained-on event into a target
        history, targets = _history_and_targets(X, user_col, item_col, time_col)
        if final is not estimator:
            kept = X
            for _, step in estimator.steps[:-1]:
                if step is not None and step != "passthrough":
                    history, kept = step.transform(history), step.transform(kept)
            targets = targets[targets[user_col].isin(kept[user_col])]
            estimator = final
        recommended = estimator.recommend(history, k=self.k)
        # recommend may name its columns after the estimator's or use the default names
        rec_user = user_col if user_col in recommended.columns else "user_id"
        rec_item = item_col if item_col in recommended.columns else "item_id"
        recs = _Recommendations(recommended, rec_user, rec_item)
        if self.metric == "coverage":
            if not hasattr(estimator, "item_ids_"):
                raise AttributeError(
                    f"{type(estimator).__name__} has no fitted item_ids_: coverage needs the "
                    "catalogue of the fitted estimator.")
            return _coverage(recs, estimator.item_ids_, self.k)
        targets = targets[[user_col, item_col]].set_axis([rec_user, rec_item], axis=1)
        hits = _Hits(recs, targets, rec_user, rec_item)
        return hits.ndcg(self.k) if self.metric == "ndcg" else hits.recall(self.k)

    def __repr__(self):
        return f"make_scorer(metric={self.metric!r}, k={self.k})"


def make_scorer(metric="ndcg", k=10):
    """Scorer(s) for ``scoring=`` in scikit-learn model selection (``GridSearchCV`` etc.).

    The scorer splits the evaluation frame ``X`` into history and targets with
    :func:`~skcreate.data.model_selection.split_history_target` (each user's last interaction is the
    target), calls ``estimator.recommend(history, k=k)`` and returns the metric. Users of ``X``
    with a single interaction have no history and are left out with a warning that counts them
    (a ``ValueError`` when no user has two interactions); a target that repeats a history row
    exactly (duplicate rows) is kept and counted in a warning. Column names come
    from the estimator's ``user_col``/``item_col``/``time_col`` attributes when present. For a
    :class:`~sklearn.pipeline.Pipeline`, ``X`` first goes through ``transform`` of all steps but
    the last, and the last step recommends. Coverage uses the fitted ``item_ids_`` of the
    recommender as catalogue.

    Parameters
    ----------
    metric : {"ndcg", "recall", "coverage"} or list of them, default="ndcg"
        Metric(s) to compute.
    k : int or list of int, default=10
        Cut-off(s).

    Returns
    -------
    callable or dict
        ``scorer(estimator, X, y=None) -> float`` when ``metric`` and ``k`` are single values,
        otherwise ``{"ndcg@10": scorer, ...}`` with one scorer per (metric, k), for
        multi-metric search (then set ``refit`` to one of the keys).

    Examples
    --------
    >>> from skcreate.data.metrics import make_scorer
    >>> make_scorer("recall", k=20)
    make_scorer(metric='recall', k=20)
    >>> sorted(make_scorer(["ndcg", "coverage"], k=[10, 100]))
    ['coverage@10', 'coverage@100', 'ndcg@10', 'ndcg@100']
    """
    if not isinstance(metric, str) and not np.iterable(metric):
        raise ValueError(f"metric must be one of {list(_METRICS)} or a list of them, got "
                         f"{metric!r}.")
    metrics = [metric] if isinstance(metric, str) else list(metric)
    ks = [k] if np.ndim(k) == 0 else list(k)
    if not metrics or not ks:
        raise ValueError("make_scorer needs at least one metric and one k.")
    for m in metrics:
        if m not in _METRICS:
            raise ValueError(f"Unknown metric {m!r}; valid metrics are {list(_METRICS)}.")
    ks = [check_k(value) for value in ks]
    if isinstance(metric, str) and np.ndim(k) == 0:
        return _RecommenderScorer(metric, ks[0])
    return {f"{m}@{value}": _RecommenderScorer(m, value) for m in metrics for value in ks}
