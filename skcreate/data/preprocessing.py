"""Transformers on interaction frames, usable as Pipeline steps before a recommender.

Each transformer returns a new frame holding a subset of the caller's rows, with all its columns
and its index, in its row order; the caller's frame is never modified.
"""

import numbers
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from skcreate.data.interactions import as_frame, check_interactions, time_order, time_values

__all__ = ["MinInteractionsFilter", "DropConsecutiveRepeats", "IdFilter"]


def _rows(X, keep):
    """The rows of ``X`` where ``keep`` is True, as a new frame."""
    return X.iloc[np.flatnonzero(keep)]


class _InteractionTransformer(TransformerMixin, BaseEstimator):
    """Shared tags: the input is a frame of (possibly string) ids, not a numeric matrix."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags


class MinInteractionsFilter(_InteractionTransformer):
    """Keep users and items with enough interactions (k-core filtering).

    ``fit`` learns the users and items to keep from the fitted frame: with ``iterate=True`` it
    removes rows of rare users and rare items repeatedly until every remaining user has at least
    ``min_user_interactions`` rows and every remaining item at least ``min_item_interactions``
    (the k-core); with ``iterate=False`` it applies both thresholds once, on the original counts.
    ``transform`` keeps the rows whose item was kept and drops the rows of users seen at fit but
    removed; users new at transform time are kept (their history still serves recommendations).
    ``fit_transform`` on a frame therefore returns exactly its k-core.

    Parameters
    ----------
    min_user_interactions : int, default=5
        Minimum number of rows per user.
    min_item_interactions : int, default=5
        Minimum number of rows per item.
    iterate : bool, default=True
        Iterate to the fixed point (the k-core) or filter once.
    user_col, item_col : str, default="user_id", "item_id"
        Column names.

    Attributes
    ----------
    users_ : pandas.Index
        Users kept at fit.
    items_ : pandas.Index
        Items kept at fit; ``transform`` drops every other item.
    removed_users_ : pandas.Index
        Users seen at fit and removed; ``transform`` drops their rows.
    n_iter_ : int
        Filtering rounds done at fit.

    Examples
    --------
    >>> import pandas as pd
    >>> from skcreate.data.preprocessing import MinInteractionsFilter
    >>> X = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [1, 2, 1, 2, 1]})
    >>> MinInteractionsFilter(2, 2).fit_transform(X).index.tolist()
    [0, 1, 2, 3]
    """

    def __init__(self, min_user_interactions=5, min_item_interactions=5, iterate=True,
                 user_col="user_id", item_col="item_id"):
        self.min_user_interactions = min_user_interactions
        self.min_item_interactions = min_item_interactions
        self.iterate = iterate
        self.user_col = user_col
        self.item_col = item_col

    def fit(self, X, y=None):
        """Learn the users and items to keep.

        Parameters
        ----------
        X : pandas.DataFrame
            Interactions with ``user_col`` and ``item_col``.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        for name in ("min_user_interactions", "min_item_interactions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        if not isinstance(self.iterate, (bool, np.bool_)):
            raise ValueError(f"iterate must be a bool, got {self.iterate!r}.")
        frame = check_interactions(as_frame(X), self.user_col, self.item_col,
                                   require_time=False)
        users, user_ids = pd.factorize(frame[self.user_col])
        items, item_ids = pd.factorize(frame[self.item_col])
        alive = np.ones(len(frame), dtype=bool)
        n_iter = 0
        while True:
            n_iter += 1
            user_ok = np.bincount(users[alive], minlength=len(user_ids)) \
                >= self.min_user_interactions
            item_ok = np.bincount(items[alive], minlength=len(item_ids)) \
                >= self.min_item_interactions
            kept = alive & user_ok[users] & item_ok[items]
            if not self.iterate or kept.sum() == alive.sum():
                break
            alive = kept
        if not kept.any():
            raise ValueError(
                f"No interaction survives min_user_interactions={self.min_user_interactions} and "
                f"min_item_interactions={self.min_item_interactions}: lower the thresholds."
            )
        self.users_ = pd.Index(user_ids[user_ok])
        self.items_ = pd.Index(item_ids[item_ok])
        self.removed_users_ = pd.Index(user_ids[~user_ok])
        self.n_iter_ = n_iter
        return self

    def transform(self, X):
        """Keep the rows of kept items, dropping users removed at fit.

        Parameters
        ----------
        X : pandas.DataFrame
            Interactions with ``user_col`` and ``item_col``; never modified.

        Returns
        -------
        pandas.DataFrame
            Rows of ``X`` (all columns, original index and order).
        """
        check_is_fitted(self, "items_")
        X = as_frame(X)
        frame = check_interactions(X, self.user_col, self.item_col, require_time=False)
        known = frame[self.item_col].isin(self.items_).to_numpy()
        if not known.any():
            # usually ids of another type than at fit (1 vs "1"): every row would go unnoticed
            warnings.warn(
                f"No item of X[{self.item_col!r}] is among the {len(self.items_)} items kept at "
                "fit, so every row is dropped; check that the ids have the same type as at fit.",
                UserWarning, stacklevel=3)  # past scikit-learn's set_output wrapper
        keep = known & ~frame[self.user_col].isin(self.removed_users_).to_numpy()
        return _rows(X, keep)


class DropConsecutiveRepeats(_InteractionTransformer):
    """Drop an event when the same user's previous event is the same item.

    Events are ordered within a user by timestamp, ties in row order (the skcreate rule).
    Stateless: ``fit`` only validates.

    Parameters
    ----------
    user_col, item_col, time_col : str, default="user_id", "item_id", "timestamp"
        Column names.

    Examples
    --------
    >>> import pandas as pd
    >>> from skcreate.data.preprocessing import DropConsecutiveRepeats
    >>> X = pd.DataFrame({"user_id": [1, 1, 1, 1], "item_id": [5, 5, 6, 5],
    ...                   "timestamp": [1, 2, 3, 4]})
    >>> DropConsecutiveRepeats().fit_transform(X)["item_id"].tolist()
    [5, 6, 5]
    """

    def __init__(self, user_col="user_id", item_col="item_id", time_col="timestamp"):
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    def fit(self, X, y=None):
        """Validate ``X``; nothing is learned.

        Parameters
        ----------
        X : pandas.DataFrame
            Interactions with ``user_col``, ``item_col`` and ``time_col``.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        check_interactions(as_frame(X), self.user_col, self.item_col, self.time_col)
        return self

    def transform(self, X):
        """Drop consecutive repeats.

        Parameters
        ----------
        X : pandas.DataFrame
            Interactions; never modified.

        Returns
        -------
        pandas.DataFrame
            The remaining rows of ``X`` (all columns, original index and order).
        """
        X = as_frame(X)
        frame = check_interactions(X, self.user_col, self.item_col, self.time_col)
        users = pd.factorize(frame[self.user_col])[0]
        items = pd.factorize(frame[self.item_col])[0]
        order = time_order(users, time_values(frame[self.time_col]))
        users, items = users[order], items[order]
        repeat = np.zeros(len(order), dtype=bool)
        repeat[1:] = (users[1:] == users[:-1]) & (items[1:] == items[:-1])
        keep = np.ones(len(order), dtype=bool)
        keep[order[repeat]] = False
        return _rows(X, keep)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


class IdFilter(_InteractionTransformer):
    """Keep (or drop) the rows of listed users and items.

    Stateless: ``fit`` only validates.

    Parameters
    ----------
    users : list-like of user ids, optional
        Users to keep (or drop with ``exclude=True``); None = no condition on users.
    items : list-like of item ids, optional
        Items to keep (or drop with ``exclude=True``); None = no condition on items.
    exclude : bool, default=False
        False keeps the rows whose user is in ``users`` and item in ``items``; True drops the
        rows whose user is in ``users`` or item in ``items``.
    user_col, item_col : str, default="user_id", "item_id"
        Column names.

    Examples
    --------
    >>> import pandas as pd
    >>> from skcreate.data.preprocessing import IdFilter
    >>> X = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 6, 5]})
    >>> IdFilter(items=[5]).fit_transform(X).index.tolist()
    [0, 2]
    >>> IdFilter(users=[1], exclude=True).fit_transform(X).index.tolist()
    [2]
    """

    def __init__(self, users=None, items=None, exclude=False, user_col="user_id",
                 item_col="item_id"):
        self.users = users
        self.items = items
        self.exclude = exclude
        self.user_col = user_col
        self.item_col = item_col

    def _id_lists(self):
        out = []
        for name in ("users", "items"):
            value = getattr(self, name)
            if value is None:
                out.append(None)
                continue
            # an iterator would be used up by fit, leaving transform an empty list
            if isinstance(value, (str, bytes, Iterator)) or not np.iterable(value):
                raise ValueError(f"{name} must be None or a list-like of ids (not a string or a "
                                 f"one-pass iterator), got {value!r}.")
            out.append(pd.Index(value if isinstance(value, (pd.Index, pd.Series, np.ndarray))
                                else list(value)))
        if not isinstance(self.exclude, (bool, np.bool_)):
            raise ValueError(f"exclude must be a bool, got {self.exclude!r}.")
        return out

    def fit(self, X, y=None):
        """Validate the parameters and ``X``; nothing is learned.

        Parameters
        ----------
        X : pandas.DataFrame
            Interactions with ``user_col`` and ``item_col``.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        self._id_lists()
        check_interactions(as_frame(X), self.user_col, self.item_col, require_time=False)
        return self

    def transform(self, X):
        """Filter the rows by id.

        Parameters
        ----------
        X : pandas.DataFrame
            Interactions; never modified.

        Returns
        -------
        pandas.DataFrame
            The selected rows of ``X`` (all columns, original index and order).
        """
        users, items = self._id_lists()
        X = as_frame(X)
        frame = check_interactions(X, self.user_col, self.item_col, require_time=False)
        listed = [frame[col].isin(ids).to_numpy()
                  for col, ids in ((self.user_col, users), (self.item_col, items))
                  if ids is not None]
        if not listed:
            return _rows(X, np.ones(len(frame), dtype=bool))
        if self.exclude:
            return _rows(X, ~np.logical_or.reduce(listed))
        return _rows(X, np.logical_and.reduce(listed))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags
