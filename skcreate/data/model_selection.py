"""Splitters for next-item evaluation on interaction frames.

The main splitter is :class:`GlobalTemporalSplit`, the global temporal protocol of "Time to
split" (Gusak et al. 2025) in the variant of the CREATE authors: one global time threshold T
separates the past from the future, so every training interaction is at or before T and every test
target after it.
:class:`LeaveLastOutSplit` reproduces the leave-last-out protocol of much prior work for comparison.

All splitters order events within a user by timestamp with ties kept in row order
(:func:`skcreate.data.interactions.time_order`), the rule every estimator uses to build its
sequences.
"""

import numbers
from collections.abc import Hashable

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

from skcreate.data.interactions import as_frame, check_interactions, time_order, time_values

__all__ = [
    "GlobalTemporalSplit",
    "LeaveLastOutSplit",
    "global_temporal_split",
    "split_history_target",
    "temporal_validation_split",
]


def _validate_params(splitter):
    """Check a splitter's parameters against its ``_parameter_constraints``, as an
    estimator's are at fit (scikit-learn's declarations)."""
    constraints = splitter._parameter_constraints
    validate_parameter_constraints(constraints, {name: getattr(splitter, name)
                                                 for name in constraints},
                                   caller_name=type(splitter).__name__)


def _check_quantile(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a float strictly between 0 and 1, got {value!r}.")
    return float(value)


def _check_quantiles(quantile):
    """The quantiles of ``quantile`` (a float or a non-empty sequence of floats) as a list."""
    if isinstance(quantile, (str, bytes)):
        raise ValueError(f"quantile must be a float in (0, 1) or a sequence of them, got "
                         f"{quantile!r}.")
    if np.ndim(quantile) == 0:
        return [_check_quantile(quantile, "quantile")]
    values = list(np.asarray(quantile, dtype=object).ravel())
    if not values:
        raise ValueError("quantile must not be an empty sequence.")
    values = [_check_quantile(q, f"quantile (element {j} of {quantile!r})")
              for j, q in enumerate(values)]
    # a repeated quantile repeats its fold, which would weigh double in a cross-validated mean
    repeated = sorted({q for q in values if values.count(q) > 1})
    if repeated:
        raise ValueError(f"quantile must not repeat a value, got {quantile!r} (repeated: "
                         f"{repeated}).")
    return values


def _check_single_quantile(value, name):
    """The split functions make one split: a sequence would silently use its first quantile."""
    if np.ndim(value) != 0:
        raise ValueError(f"{name} must be a single float in (0, 1), got {value!r}.")


class _UserSequences:
    """Per-user time order of a validated frame, computed once per split call."""

    def __init__(self, frame, user_col, time_col):
        self.codes, uniques = pd.factorize(frame[user_col])
        self.times = time_values(frame[time_col])
        self.order = time_order(self.codes, self.times)
        self.counts = np.bincount(self.codes, minlength=len(uniques))
        self.indptr = np.concatenate([[0], np.cumsum(self.counts)])
        self.sorted_times = self.times[self.order]

    def nth_time(self, n):
        """Time of each user's ``n``-th event (0-based) and whether the user has one."""
        has = self.counts > n
        positions = np.minimum(self.indptr[:-1] + n, len(self.times) - 1)
        return self.sorted_times[positions], has

    def last_time(self):
        return self.sorted_times[self.indptr[1:] - 1]

    def position_from_end(self):
        """For every row (caller's order), how many of its user's events come after it."""
        rank = np.empty(len(self.order), dtype=np.int64)
        rank[self.order] = np.arange(len(self.order)) - np.repeat(self.indptr[:-1], self.counts)
        return self.counts[self.codes] - 1 - rank


class GlobalTemporalSplit(BaseCrossValidator):
    """Global temporal split: train on the past, test on users active after a time threshold.

    The evaluation protocol (``docs/protocol.md``), for each quantile ``q``
    (one fold each):

    1. drop users with fewer than ``min_user_interactions`` interactions;
    2. ``T = numpy.quantile(timestamps of the remaining rows, q)``;
    3. train rows = rows with ``timestamp <= T`` of users whose second interaction is at or before
       ``T``;
    4. test users = train users whose last interaction is after ``T`` (with
       ``warm_users_only=False`` also the cold users: users outside train with at least two
       interactions); test rows = *all* interactions of the test users, so a scorer sees the whole
       history before the target (the last interaction, see :func:`split_history_target`).

    Within a user, events are ordered by timestamp with ties in row order, as everywhere in
    skcreate.

    Parameters
    ----------
    quantile : float or sequence of float, default=0.8
        Distinct quantile(s) in (0, 1) of all timestamps giving the threshold ``T``; one fold per
        value.
    min_user_interactions : int, default=3
        Users with fewer interactions are left out of train and test.
    warm_users_only : bool, default=True
        Test only users that have training rows. When False, cold users (no training rows, at least
        two interactions) are tested too.
    user_col, item_col, time_col : str, default="user_id", "item_id", "timestamp"
        Column names.

    See Also
    --------
    global_temporal_split : train/validation/test frames in one call.
    LeaveLastOutSplit : the leave-last-out protocol of prior work.

    Examples
    --------
    >>> import pandas as pd
    >>> from skcreate.data.model_selection import GlobalTemporalSplit
    >>> X = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 2, 3, 3, 3],
    ...                   "item_id": [1, 2, 3, 1, 3, 4, 2, 3, 4],
    ...                   "timestamp": [1, 2, 9, 3, 4, 5, 6, 7, 8]})
    >>> cv = GlobalTemporalSplit(quantile=0.75)
    >>> cv.thresholds(X)
    [np.float64(7.0)]
    >>> train, test = next(cv.split(X))
    >>> train.tolist(), test.tolist()
    ([0, 1, 3, 4, 5, 6, 7], [0, 1, 2, 6, 7, 8])
    """

    # quantile (a float or a sequence of them) is checked by _check_quantiles
    _parameter_constraints: dict = {
        "min_user_interactions": [Interval(numbers.Integral, 1, None, closed="left")],
        "warm_users_only": ["boolean"],
        "user_col": [Hashable], "item_col": [Hashable], "time_col": [Hashable],
    }

    def __init__(self, quantile=0.8, min_user_interactions=3, warm_users_only=True,
                 user_col="user_id", item_col="item_id", time_col="timestamp"):
        self.quantile = quantile
        self.min_user_interactions = min_user_interactions
        self.warm_users_only = warm_users_only
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of folds: the number of quantiles.

        Parameters
        ----------
        X, y, groups : object
            Ignored, present for API compatibility.

        Returns
        -------
        int
        """
        return len(_check_quantiles(self.quantile))

    def _validate(self, X):
        _validate_params(self)
        quantiles = _check_quantiles(self.quantile)
        frame = check_interactions(X, self.user_col, self.item_col, self.time_col)
        return quantiles, frame

    def _folds(self, X):
        """Yield ``(quantile, T, train_mask, test_mask)`` per fold, masks in the caller's order."""
        quantiles, frame = self._validate(X)
        seq = _UserSequences(frame, self.user_col, self.time_col)
        kept_user = seq.counts >= self.min_user_interactions
        kept_times = seq.times[kept_user[seq.codes]]
        if len(kept_times) == 0:
            raise ValueError(
                f"No user has at least min_user_interactions={self.min_user_interactions} "
                "interactions: nothing to split."
            )
        second_time, has_second = seq.nth_time(1)
        last_time = seq.last_time()
        for q in quantiles:
            threshold = np.quantile(kept_times, q)
            train_user = kept_user & has_second & (second_time <= threshold)
            train_mask = train_user[seq.codes] & (seq.times <= threshold)
            test_user = train_user & (last_time > threshold)
            if not self.warm_users_only:
                # a cold user's second event is after T, so its target is after T too
                test_user |= kept_user & ~train_user & has_second
            if not train_mask.any():
                raise ValueError(
                    f"quantile={q} (T={threshold}) leaves no train rows: no user with at least "
                    f"{self.min_user_interactions} interactions has its second interaction at or "
                    "before T. Use a larger quantile."
                )
            if not test_user.any():
                raise ValueError(
                    f"quantile={q} (T={threshold}) leaves no test users: no eligible user has an "
                    "interaction after T. Use a smaller quantile."
                )
            yield q, threshold, train_mask, test_user[seq.codes]

    def split(self, X, y=None, groups=None):
        """Generate positional train/test indices, one pair per quantile.

        Parameters
        ----------
        X : pandas.DataFrame
            Interactions with ``user_col``, ``item_col`` and ``time_col``.
        y, groups : object
            Ignored, present for API compatibility.

        Yields
        ------
        train : numpy.ndarray of int
            Positions of the training rows, ascending.
        test : numpy.ndarray of int
            Positions of all rows of the test users, ascending.

        Raises
        ------
        ValueError
            For invalid parameters, or when a fold has no train rows or no test users.
        """
        for _, _, train_mask, test_mask in self._folds(X):
            yield np.flatnonzero(train_mask), np.flatnonzero(test_mask)

    def thresholds(self, X):
        """The time threshold ``T`` of each fold.

        Parameters
        ----------
        X : pandas.DataFrame
            Interactions, as for :meth:`split`.

        Returns
        -------
        list
            One threshold per quantile: a float for numeric timestamps, a ``pandas.Timestamp``
            (rounded to the column's unit, in its time zone) for datetime columns.

        Examples
        --------
        >>> import pandas as pd
        >>> X = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3],
        ...                   "timestamp": [10, 20, 30]})
        >>> GlobalTemporalSplit(quantile=[0.5, 0.75]).thresholds(X)
        [np.float64(20.0), np.float64(25.0)]
        """
        quantiles, frame = self._validate(X)
        seq = _UserSequences(frame, self.user_col, self.time_col)
        times = seq.times[(seq.counts >= self.min_user_interactions)[seq.codes]]
        if len(times) == 0:
            raise ValueError(
                f"No user has at least min_user_interactions={self.min_user_interactions} "
                "interactions: no threshold."
            )
        out = [np.quantile(times, q) for q in quantiles]
        column = frame[self.time_col]
        if pd.api.types.is_datetime64_any_dtype(column):
            # the inverse of time_values: counts of the column's unit, UTC when tz-aware
            tz, unit = column.dt.tz, column.dt.unit
            out = [pd.Timestamp(np.datetime64(int(round(t)), unit)) for t in out]
            if tz is not None:
                out = [t.tz_localize("UTC").tz_convert(tz) for t in out]
        return out


class LeaveLastOutSplit(BaseCrossValidator):
    """Leave-last-out split, the protocol of much prior work (one fold).

    Every eligible user's last ``n_last`` events (stable time order) are held out: train = all
    other events of those users; test rows = all events of those users, the last one being the
    target. A user is eligible with at least ``min_user_interactions`` and more than ``n_last``
    interactions. Unlike :class:`GlobalTemporalSplit`, train may contain events that happen after
    other users' targets.

    Parameters
    ----------
    n_last : int, default=1
        Number of most recent events held out per user.
    min_user_interactions : int, default=3
        Users with fewer interactions are left out of train and test.
    user_col, item_col, time_col : str, default="user_id", "item_id", "timestamp"
        Column names.

    Examples
    --------
    >>> import pandas as pd
    >>> from skcreate.data.model_selection import LeaveLastOutSplit
    >>> X = pd.DataFrame({"user_id": [1, 2, 1, 1, 2], "item_id": [1, 2, 3, 4, 5],
    ...                   "timestamp": [3, 1, 1, 2, 2]})
    >>> train, test = next(LeaveLastOutSplit(min_user_interactions=2).split(X))
    >>> train.tolist(), test.tolist()
    ([1, 2, 3], [0, 1, 2, 3, 4])
    """

    _parameter_constraints: dict = {
        "n_last": [Interval(numbers.Integral, 1, None, closed="left")],
        "min_user_interactions": [Interval(numbers.Integral, 1, None, closed="left")],
        "user_col": [Hashable], "item_col": [Hashable], "time_col": [Hashable],
    }

    def __init__(self, n_last=1, min_user_interactions=3, user_col="user_id",
                 item_col="item_id", time_col="timestamp"):
        self.n_last = n_last
        self.min_user_interactions = min_user_interactions
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of folds (always 1).

        Parameters
        ----------
        X, y, groups : object
            Ignored, present for API compatibility.

        Returns
        -------
        int
        """
        return 1

    def split(self, X, y=None, groups=None):
        """Generate the positional train/test indices of the single fold.

        Parameters
        ----------
        X : pandas.DataFrame
            Interactions with ``user_col``, ``item_col`` and ``time_col``.
        y, groups : object
            Ignored, present for API compatibility.

        Yields
        ------
        train : numpy.ndarray of int
            Positions of the training rows, ascending.
        test : numpy.ndarray of int
            Positions of all rows of the test users, ascending.
        """
        _validate_params(self)
        n_last, min_n = int(self.n_last), int(self.min_user_interactions)
        frame = check_interactions(X, self.user_col, self.item_col, self.time_col)
        seq = _UserSequences(frame, self.user_col, self.time_col)
        eligible = ((seq.counts >= min_n) & (seq.counts > n_last))[seq.codes]
        if not eligible.any():
            raise ValueError(
                f"No user has at least max(min_user_interactions={min_n}, n_last + 1="
                f"{n_last + 1}) interactions: nothing to split."
            )
        train = eligible & (seq.position_from_end() >= n_last)
        yield np.flatnonzero(train), np.flatnonzero(eligible)


def temporal_validation_split(X, quantile=0.9, **kwargs):
    """Split fit data into an inner train part and validation users, by one global threshold.

    The validation split of the protocol: :class:`GlobalTemporalSplit` at ``quantile`` applied
    to the data a model is fitted on. The neural estimators' early stopping and
    ``benchmarks/`` tuning both use it.

    Parameters
    ----------
    X : pandas.DataFrame
        Interactions; never modified.
    quantile : float, default=0.9
        Quantile of ``X``'s timestamps for the validation threshold.
    **kwargs
        Further parameters of :class:`GlobalTemporalSplit`.

    Returns
    -------
    train : pandas.DataFrame
        Inner train rows (at or before the threshold).
    validation : pandas.DataFrame
        All rows of the validation users; their last row is the validation target.

    Examples
    --------
    >>> import pandas as pd
    >>> from skcreate.data.model_selection import temporal_validation_split
    >>> X = pd.DataFrame({"user_id": [1] * 5 + [2] * 5,
    ...                   "item_id": [1, 2, 3, 4, 5, 2, 3, 4, 5, 6],
    ...                   "timestamp": [1, 2, 3, 7, 10, 1, 2, 3, 4, 9]})
    >>> train, validation = temporal_validation_split(X, quantile=0.8)
    >>> len(train), validation["user_id"].unique().tolist()
    (8, [1, 2])
    """
    _check_single_quantile(quantile, "quantile")
    X = as_frame(X)
    train, validation = next(GlobalTemporalSplit(quantile, **kwargs).split(X))
    return X.iloc[train], X.iloc[validation]


def global_temporal_split(X, quantile=0.8, validation_quantile=0.9, **kwargs):
    """Split interactions into train, validation and test frames by global time thresholds.

    The test split is :class:`GlobalTemporalSplit` with ``quantile`` on ``X``. The same split
    with ``validation_quantile`` is then applied inside that outer train: its train rows are
    returned as ``train`` and all outer-train rows of its test users as ``validation``.

    For the final model (retrained on train + validation), the outer train is::

        outer_train = X.iloc[next(GlobalTemporalSplit(quantile).split(X))[0]]

    (pass the same keyword arguments as here).

    Parameters
    ----------
    X : pandas.DataFrame
        Interactions; never modified.
    quantile : float, default=0.8
        Quantile of all timestamps for the test threshold.
    validation_quantile : float, default=0.9
        Quantile of the outer train's timestamps for the validation threshold.
    **kwargs
        Further parameters of :class:`GlobalTemporalSplit` (``min_user_interactions``,
        ``warm_users_only``, ``user_col``, ``item_col``, ``time_col``), used for both splits.

    Returns
    -------
    train : pandas.DataFrame
        Inner train rows (at or before the validation threshold).
    validation : pandas.DataFrame
        All outer-train rows of the validation users; their last row is the validation target.
    test : pandas.DataFrame
        All rows of the test users; their last row is the test target.

    All three hold rows of ``X`` with its columns and index, in ``X``'s row order.

    Examples
    --------
    >>> import pandas as pd
    >>> from skcreate.data.model_selection import global_temporal_split
    >>> X = pd.DataFrame({"user_id": [1] * 5 + [2] * 5,
    ...                   "item_id": [1, 2, 3, 4, 5, 2, 3, 4, 5, 6],
    ...                   "timestamp": [1, 2, 3, 7, 10, 1, 2, 3, 4, 9]})
    >>> train, validation, test = global_temporal_split(X, quantile=0.8, validation_quantile=0.9)
    >>> len(train), len(validation), len(test)
    (7, 4, 10)
    >>> validation["user_id"].unique().tolist()
    [1]
    """
    _check_single_quantile(quantile, "quantile")
    _check_single_quantile(validation_quantile, "validation_quantile")
    X = as_frame(X)
    outer_train, test = next(GlobalTemporalSplit(quantile, **kwargs).split(X))
    train, validation = temporal_validation_split(X.iloc[outer_train], validation_quantile,
                                                  **kwargs)
    return train, validation, X.iloc[test]


def split_history_target(X, user_col="user_id", item_col="item_id", time_col="timestamp"):
    """Split interactions into each user's last event (target) and the earlier events (history).

    Parameters
    ----------
    X : pandas.DataFrame
        Interactions; never modified.
    user_col, item_col, time_col : str, default="user_id", "item_id", "timestamp"
        Column names.

    Returns
    -------
    history : pandas.DataFrame
        All rows but each user's last one, in ``X``'s row order.
    targets : pandas.DataFrame
        One row per user: its last event by timestamp, ties broken by row order (the later row
        wins), in ``X``'s row order. A user with a single event has a target and no history.

    Both frames keep ``X``'s columns and index.

    Examples
    --------
    >>> import pandas as pd
    >>> from skcreate.data.model_selection import split_history_target
    >>> X = pd.DataFrame({"user_id": [1, 1, 2, 1], "item_id": [5, 6, 7, 8],
    ...                   "timestamp": [1, 3, 2, 3]})
    >>> history, targets = split_history_target(X)
    >>> history.index.tolist(), targets.index.tolist()
    ([0, 1], [2, 3])
    """
    X = as_frame(X)
    frame = check_interactions(X, user_col, item_col, time_col)
    is_target = _UserSequences(frame, user_col, time_col).position_from_end() == 0
    return X.iloc[np.flatnonzero(~is_target)], X.iloc[np.flatnonzero(is_target)]
