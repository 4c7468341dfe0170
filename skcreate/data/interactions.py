"""Validation and encoding of interaction frames.

Every component of skcreate goes through this module, so splits, sequences and graphs agree on one
ordering rule: within a user, by timestamp, ties broken by row order (stable sort).

What a frame may hold: ids of any hashable type, plain or categorical, compared by equality
(``1`` and ``1.0`` are one id, ``1`` and ``"1"`` two; booleans beside numbers are an error, since
``True == 1``); timestamps numeric or datetime64 of any unit, naive or tz-aware (tz-aware ones are
ordered by the instant they denote). The index and extra columns are ignored; duplicate index
labels are fine. Anything else is an error naming the column.

Frames may come as pandas or polars frames (eager or lazy), pyarrow tables or parquet paths;
only the needed columns of the last three are read or converted to pandas.
"""

import math
import numbers
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd


__all__ = ["as_frame", "check_interactions", "check_column_roles", "check_k", "check_bool",
           "time_values", "time_order", "Interactions"]

#: The row layout of item sequences, :class:`~skcreate.nn.ItemTable`'s too: row 0 pads, the
#: item of code ``c`` is row ``c + FIRST_ITEM_ROW``
PADDING_ROW, FIRST_ITEM_ROW = 0, 1


def as_frame(X, name="X"):
    """Pandas view of ``X``; a polars frame is converted at the boundary."""
    if isinstance(X, pd.DataFrame):
        return X
    if type(X).__module__.split(".")[0] == "polars":
        return X.to_pandas()
    raise TypeError(
        f"{name} must be a pandas (or polars) DataFrame of interactions, got {type(X).__name__}"
        "; fit and recommend also take a pyarrow Table or a parquet path."
    )


def _is_from(X, package):
    return type(X).__module__.split(".")[0] == package


def _check_columns(available, columns, name):
    available = list(available)
    missing = [c for c in columns if c not in available]
    if missing:
        raise ValueError(
            f"{name} is missing column(s) {missing}; columns present: {available}. "
            "Set user_col/item_col/time_col to map other names."
        )
    # a repeated name selects several columns where one is read: say which, not fail later
    repeated = [c for c in columns if available.count(c) > 1]
    if repeated:
        raise ValueError(f"{name} has duplicate column name(s) {repeated}; rename or drop the "
                         "copies so that each of user_col/item_col/time_col names one column.")


def check_column_roles(user_col, item_col, time_col=None, reserved=()):
    """Check that the column parameters name different columns, none of them ``reserved``.

    Parameters
    ----------
    user_col, item_col : hashable
        The column parameters.
    time_col : hashable, optional
        The time column parameter; None where no time column is read.
    reserved : sequence of str
        Names the caller writes itself (a recommender's ``score`` and ``rank``), which
        ``user_col`` and ``item_col`` may not take.

    Raises
    ------
    ValueError
        Naming the parameters and their values.
    """
    roles = {"user_col": user_col, "item_col": item_col}
    if time_col is not None:
        roles["time_col"] = time_col
    if len(set(roles.values())) < len(roles):
        names = list(roles)
        raise ValueError(f"{', '.join(names[:-1])} and {names[-1]} must name different "
                         "columns, got " + ", ".join(f"{k}={v!r}" for k, v in roles.items())
                         + ".")
    clashing = [f"{key}={value!r}" for key, value in roles.items()
                if key != "time_col" and value in reserved]
    if clashing:
        raise ValueError(f"user_col and item_col may not be {' or '.join(map(repr, reserved))}, "
                         f"the columns recommendations add; got {', '.join(clashing)}. Rename "
                         "the column in the frame and set the parameter to the new name.")


def _needed_columns(X, columns, name):
    """A new pandas frame of ``columns`` of ``X``, converting or reading those columns only.

    A pandas frame is copied (the caller's frame is never touched); a polars frame (eager or
    lazy), a pyarrow table or a parquet file gives up only the needed columns, so extra
    columns cost nothing and the whole frame is never copied into pandas.
    """
    if isinstance(X, (str, os.PathLike)):
        if not os.fspath(X).lower().endswith(".parquet"):
            raise ValueError(f"{name}: only parquet files are read by path, got {X!r}; read "
                             "other files with skcreate.data.datasets.load_interactions.")
        import pyarrow.parquet as pq

        _check_columns(pq.read_schema(X).names, columns, name)
        return pq.read_table(X, columns=columns).to_pandas()
    if _is_from(X, "polars") and hasattr(X, "collect_schema"):
        _check_columns(X.collect_schema().names(), columns, name)
        selected = X.select(columns)
        if hasattr(selected, "collect"):
            selected = selected.collect()
        return selected.to_pandas()
    if _is_from(X, "pyarrow") and hasattr(X, "column_names"):
        _check_columns(X.column_names, columns, name)
        return X.select(columns).to_pandas()
    X = as_frame(X, name)
    _check_columns(X.columns, columns, name)
    return X.loc[:, columns]


def check_k(k, name="k"):
    """Validate a cut-off: an integer >= 1."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {k!r}.")
    return int(k)


def check_positive(value, name):
    """Validate a factor: a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(value)


def check_bool(value, name):
    """Validate a switch: True or False (numpy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def _first_rows(mask, index, n=5):
    return index[np.flatnonzero(mask)[:n]].tolist()


def check_interactions(X, user_col="user_id", item_col="item_id", time_col="timestamp",
                       name="X", require_time=True):
    """Validate an interactions frame and return its id and time columns.

    The caller's frame is never modified: the result is a new frame holding only the needed
    columns, with the caller's row order and index.

    Parameters
    ----------
    X : pandas.DataFrame, polars.DataFrame or LazyFrame, pyarrow.Table, or parquet path
        One row per event; of a polars frame, a table or a file only the needed columns are
        read.
    user_col, item_col, time_col : str
        Column names.
    name : str
        How the frame is called in error messages.
    require_time : bool
        Whether ``time_col`` must be present.

    Returns
    -------
    pandas.DataFrame
        Columns ``user_col``, ``item_col`` (and ``time_col``), in the input's row order.

    Raises
    ------
    TypeError
        If ``X`` is not a data frame, ids are unhashable or timestamps are not numeric/datetime.
    ValueError
        If a column is missing or its name is repeated, the column parameters name the same
        column, the frame is empty, or ids/timestamps contain missing values.
    """
    columns = [user_col, item_col] + ([time_col] if require_time else [])
    check_column_roles(user_col, item_col, time_col if require_time else None)
    out = _needed_columns(X, columns, name)
    if len(out) == 0:
        raise ValueError(f"{name} is empty: at least one interaction is needed.")
    for col in columns:
        isna = out[col].isna().to_numpy()
        if isna.any():
            raise ValueError(
                f"{name}[{col!r}] has {int(isna.sum())} missing value(s); first offending rows: "
                f"{_first_rows(isna, out.index)}."
            )
    for col in (user_col, item_col):
        if out[col].dtype == object:
            _check_object_ids(out[col], f"{name}[{col!r}]")
    if require_time:
        t = out[time_col]
        if not (pd.api.types.is_numeric_dtype(t) or pd.api.types.is_datetime64_any_dtype(t)) \
                or pd.api.types.is_bool_dtype(t):
            raise TypeError(
                f"{name}[{time_col!r}] must be numeric or datetime64, got dtype {t.dtype}; "
                "convert text dates with pandas.to_datetime."
            )
    return out


def _check_object_ids(column, label):
    """Ids of an object column must be hashable, and not booleans beside numbers."""
    try:
        pd.unique(column)
    except TypeError as exc:
        raise TypeError(f"{label} holds unhashable ids ({exc}).") from None
    kinds = column.map(type)
    is_bool = kinds.map(lambda kind: issubclass(kind, (bool, np.bool_)))
    is_number = ~is_bool & kinds.map(lambda kind: issubclass(kind, numbers.Number))
    if is_bool.any() and is_number.any():
        examples = ", ".join(
            f"row {_first_rows(mask, column.index, 1)[0]!r}: {column.iloc[mask.argmax()]!r}"
            for mask in (is_bool.to_numpy(), is_number.to_numpy()))
        raise TypeError(
            f"{label} mixes booleans and numbers ({examples}); True equals 1 and False equals "
            "0, so two ids would merge. Convert them, e.g. with .astype(str)."
        )


def time_values(times):
    """Timestamps as a sortable numpy array.

    Datetimes become int64 counts of the column's own unit since the epoch (UTC for tz-aware
    columns): converting to nanoseconds would wrap dates outside 1677-2262 around.
    """
    if pd.api.types.is_datetime64_any_dtype(times):
        if getattr(times.dt, "tz", None) is not None:
            times = times.dt.tz_convert(None)
        return times.to_numpy(dtype=f"datetime64[{times.dt.unit}]").view("int64")
    return times.to_numpy()


def time_order(users, times):
    """Positions that sort rows by user, then time, ties kept in row order.

    Parameters
    ----------
    users : array-like of int
        Encoded user of each row.
    times : array-like
        Sortable timestamps.

    Returns
    -------
    numpy.ndarray of int
    """
    # lexsort is stable, so equal (user, time) keep their row order
    return np.lexsort((np.asarray(times), np.asarray(users)))


def _factorize_sorted(values):
    """Codes and sorted unique ids, so that codes never depend on row order.

    Ids of types that do not compare with each other (``1.5`` and ``"a"``) are sorted by type
    name, then by value within a type.
    """
    try:
        return pd.factorize(values, sort=True)
    except TypeError:
        codes, uniques = pd.factorize(values)
    order = sorted(range(len(uniques)), key=lambda j: (type(uniques[j]).__name__, uniques[j]))
    position = np.empty(len(order), dtype=np.intp)
    position[order] = np.arange(len(order))
    return position[codes], uniques.take(order)


def _grown(ids, more):
    """``ids`` followed by the ids of ``more`` it lacks, in ``more``'s order."""
    new = more[ids.get_indexer(more) < 0]
    if len(new) == 0:
        return ids
    # appending categoricals of other categories (or ints to strs) gives an object index,
    # whose lookups compare by equality as every id map's do
    return ids.append(new)


@dataclass
class Interactions:
    """Encoded, time-ordered interactions: a CSR-like layout of per-user sequences.

    Attributes
    ----------
    user_ids : pandas.Index
        Original user ids; user ``u`` is row ``u``.
    item_ids : pandas.Index
        Original item ids of the catalogue; item code ``i`` in ``0..n_items-1``.
    indptr : numpy.ndarray of int64, shape (n_users + 1,)
        User ``u``'s events are ``items[indptr[u]:indptr[u + 1]]``, oldest first.
    items : numpy.ndarray of int64
        Item codes, aligned with ``times``.
    times : numpy.ndarray
        Timestamps aligned with ``items``.
    """

    user_ids: pd.Index
    item_ids: pd.Index
    indptr: np.ndarray
    items: np.ndarray
    times: np.ndarray

    @classmethod
    def from_frame(cls, frame, user_col, item_col, time_col, item_ids=None):
        """Encode a validated frame.

        Parameters
        ----------
        frame : pandas.DataFrame
            Output of :func:`check_interactions`.
        user_col, item_col, time_col : str
            Column names.
        item_ids : pandas.Index, optional
            A fitted catalogue: items outside it are dropped. By default the catalogue is built
            from ``frame`` (sorted unique ids).

        Returns
        -------
        Interactions
        n_unknown : int
            Number of rows whose item is outside ``item_ids``.
        """
        user_codes, user_ids = _factorize_sorted(frame[user_col])
        if item_ids is None:
            item_codes, item_ids = _factorize_sorted(frame[item_col])
        else:
            item_codes = item_ids.get_indexer(frame[item_col])
        times = time_values(frame[time_col])
        order = time_order(user_codes, times)
        user_codes, item_codes, times = user_codes[order], item_codes[order], times[order]
        known = item_codes >= 0
        n_unknown = int((~known).sum())
        if n_unknown:
            user_codes, item_codes, times = user_codes[known], item_codes[known], times[known]
        counts = np.bincount(user_codes, minlength=len(user_ids))
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        data = cls(pd.Index(user_ids), pd.Index(item_ids), indptr,
                   item_codes.astype(np.int64), times)
        return data, n_unknown

    @property
    def n_users(self):
        return len(self.user_ids)

    @property
    def n_items(self):
        return len(self.item_ids)

    @property
    def lengths(self):
        return np.diff(self.indptr)

    @property
    def row_users(self):
        """User code of every event, aligned with ``items``."""
        return np.repeat(np.arange(self.n_users), self.lengths)

    def to_csr(self, rows=None):
        """Binary user-item matrix, shape (len(rows), n_items), float32.

        Repeated (user, item) events count once.

        Parameters
        ----------
        rows : array-like of int, optional
            Users to include, in this order; all by default.
        """
        # imported here: serving encodes histories with this module and needs no scipy
        import scipy.sparse as sp

        rows = np.arange(self.n_users) if rows is None else np.asarray(rows)
        positions, indptr = self._gather(rows)
        matrix = sp.csr_matrix(
            (np.ones(len(positions), dtype=np.float32), self.items[positions], indptr),
            shape=(len(rows), self.n_items),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return matrix

    def last_items(self, max_len, rows=None):
        """Left-padded sequences of the last ``max_len`` items, as rows of the item table.

        Returns
        -------
        numpy.ndarray of int64, shape (len(rows), width)
            :class:`~skcreate.nn.ItemTable` rows (item code + 1), most recent item in the last
            column, padding (``0``) before. ``width`` is ``max_len``, or the longest of these
            histories when shorter (at least 1): columns that would be padding in every row
            are left out, so a huge ``max_len`` costs no memory.
        """
        rows = np.arange(self.n_users) if rows is None else np.asarray(rows)
        lengths = np.minimum(self.lengths[rows], max_len)
        ends = self.indptr[rows + 1]
        max_len = max(1, int(lengths.max(initial=0)))
        out = np.full((len(rows), max_len), PADDING_ROW, dtype=np.int64)
        row_of = np.repeat(np.arange(len(rows)), lengths)
        back = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        # back counts 0..len-1 from the oldest kept event; place it so the newest is last
        col = max_len - np.repeat(lengths, lengths) + back
        src = np.repeat(ends - lengths, lengths) + back
        out[row_of, col] = self.items[src] + FIRST_ITEM_ROW
        return out

    def append(self, other):
        """These interactions followed by ``other``'s, on grown id maps.

        Users and items first seen in ``other`` get the next codes (in ``other``'s order,
        which sorts its ids), so every existing code keeps its user or item. Within a user,
        events stay ordered by time, an event of ``self`` before one of ``other`` at equal
        times.

        Parameters
        ----------
        other : Interactions
            Encoded on its own id maps; its timestamps must compare with these.

        Returns
        -------
        Interactions
        """
        user_ids = _grown(self.user_ids, other.user_ids)
        item_ids = _grown(self.item_ids, other.item_ids)
        users = np.concatenate([self.row_users,
                                user_ids.get_indexer(other.user_ids)[other.row_users]])
        items = np.concatenate([self.items, item_ids.get_indexer(other.item_ids)[other.items]])
        times = np.concatenate([self.times, other.times])
        order = time_order(users, times)
        counts = np.bincount(users, minlength=len(user_ids))
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return Interactions(user_ids, item_ids, indptr, items[order].astype(np.int64),
                            times[order])

    def recent(self, last_n=None, last_frac=None):
        """Each user's most recent events only: the last ``last_n``, or the last
        ``ceil(last_frac * length)`` (at least one), or all when both are None."""
        lengths = self.lengths
        keep = lengths
        if last_n is not None:
            keep = np.minimum(keep, last_n)
        if last_frac is not None:
            keep = np.minimum(keep, np.maximum(np.ceil(last_frac * lengths), 1).astype(np.int64))
        back = self.indptr[1:][self.row_users] - np.arange(len(self.items))
        mask = back <= keep[self.row_users]
        indptr = np.concatenate([[0], np.cumsum(keep)]).astype(np.int64)
        return Interactions(self.user_ids, self.item_ids, indptr, self.items[mask],
                            self.times[mask])

    def graph(self, last_n=None, last_frac=None):
        """The training graph: each user's recent events only (:meth:`recent`).

        Returns
        -------
        user_items : scipy.sparse.csr_matrix, shape (n_users, n_items)
            Binary user-item matrix of the kept events.
        edges : tuple of numpy.ndarray of int64
            (user codes, item codes) of its distinct edges.
        """
        user_items = self.recent(last_n, last_frac).to_csr()
        coo = user_items.tocoo()
        return user_items, (coo.row.astype(np.int64), coo.col.astype(np.int64))

    def _gather(self, rows):
        """Event positions of the given users, concatenated, and the matching indptr."""
        lengths = self.lengths[rows]
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # each user's slice start, shifted to its place in the output, without a Python loop
        offsets = np.repeat(self.indptr[rows] - indptr[:-1], lengths)
        return np.arange(indptr[-1]) + offsets, indptr
