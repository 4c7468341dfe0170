"""From histories to recommendation frames: the steps every recommender shares around its
scores (the estimators' and the exported models' alike)."""

import warnings

import numpy as np
import pandas as pd

from .interactions import Interactions, check_interactions

__all__ = ["encode_histories", "top_k_frames"]


def encode_histories(histories, user_col, item_col, time_col, item_ids, stacklevel=2):
    """Validate and encode ``histories`` on a fitted catalogue ``item_ids``.

    Items outside the catalogue are dropped with a warning that counts them, and users none of
    whose items is known with another: they are served by popularity.

    Returns
    -------
    Interactions
    """
    frame = check_interactions(histories, user_col, item_col, time_col, name="histories")
    data, n_unknown = Interactions.from_frame(frame, user_col, item_col, time_col,
                                              item_ids=item_ids)
    if n_unknown:
        warnings.warn(
            f"{n_unknown} interaction(s) in histories have items unseen at fit; they were "
            "ignored as context and cannot be recommended.", UserWarning, stacklevel=stacklevel)
    warn_empty(data, stacklevel + 1)
    return data


def warn_empty(data, stacklevel=2):
    """Warn about the users of encoded ``data`` without a known item."""
    empty = data.lengths == 0
    if empty.any():
        warnings.warn(
            f"{int(empty.sum())} user(s) have no history item from the fitted catalogue; "
            "they are served by popularity.", UserWarning, stacklevel=stacklevel)


def top_k_frames(chunks, user_ids, item_ids, k, user_col, item_col):
    """Frames of ``user_col, item_col, score, rank`` from ``(rows, codes, values)`` chunks.

    ``codes`` and ``values`` have shape (len(rows), k); a value of ``-inf`` marks no item and
    its row is left out. The frames' index continues from one frame to the next.
    """
    ranks = np.arange(1, k + 1)
    offset = 0
    for rows, codes, values in chunks:
        keep = np.isfinite(values).ravel()
        n_rows = int(keep.sum())
        yield pd.DataFrame({
            user_col: user_ids.take(np.repeat(rows, k)[keep]),
            item_col: item_ids.take(codes.ravel()[keep]),
            "score": values.ravel()[keep],
            "rank": np.tile(ranks, len(rows))[keep],
        }, index=pd.RangeIndex(offset, offset + n_rows))
        offset += n_rows
