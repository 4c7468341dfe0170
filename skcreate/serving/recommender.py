"""A recommender that serves an export on onnxruntime, without torch, scikit-learn or
implicit."""

import numpy as np
import pandas as pd

from ..data.interactions import check_column_roles, check_k
from ..data.recommendations import encode_histories, top_k_frames
from .format import ExportError, decode_ids, read_sidecar

__all__ = ["ExportedRecommender", "load"]


def load(path, providers=None, session_options=None):
    """Load an export (see :meth:`skcreate.estimators.base.BaseRecommender.export`).

    Parameters
    ----------
    path : str or path-like
        The ONNX file; its sidecar ``<path>.json`` is read beside it.
    providers : list of str, optional
        onnxruntime execution providers, in order of preference; default CPU only. Pass
        ``["CUDAExecutionProvider", "CPUExecutionProvider"]`` for a GPU (with
        ``onnxruntime-gpu`` installed).
    session_options : onnxruntime.SessionOptions, optional
        Threads and graph optimisations of the session.

    Returns
    -------
    ExportedRecommender
    """
    return ExportedRecommender(path, providers, session_options)


class ExportedRecommender:
    """An exported model behind the estimators' ``recommend`` contract.

    Built by :func:`load`. ``recommend(histories, k)`` returns the frame the estimator returns
    for the same histories: items unseen at fit are ignored with a warning, users unseen at fit
    are served from their history, users without a known item get the most popular items
    (with a warning), and with ``filter_seen`` a user's history items are left out.

    Attributes
    ----------
    item_ids_ : pandas.Index
        The catalogue; item code ``c`` is ``item_ids_[c]``.
    n_items_ : int
    filter_seen_ : bool
    user_col, item_col, time_col : hashable
        Column names of the histories, the estimator's.
    estimator_ : str
        Class name of the exported estimator.
    params_ : dict
        Its parameters, as its model file stores them.
    session_ : onnxruntime.InferenceSession
    """

    #: users per call of the session: bounds memory to batch * n_items floats
    batch_size = 1024
    #: users per frame of :meth:`iter_recommend`
    chunk_size = 16 * 1024

    def __init__(self, path, providers=None, session_options=None):
        import onnxruntime

        sidecar = read_sidecar(path)
        try:
            self.session_ = onnxruntime.InferenceSession(
                str(path), sess_options=session_options,
                providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:
            raise ExportError(f"onnxruntime cannot load {path}: {exc}") from None
        inputs = sorted(node.name for node in self.session_.get_inputs())
        if inputs != sorted(sidecar["inputs"]):
            raise ExportError(f"{path} takes inputs {inputs}, its sidecar says "
                              f"{sorted(sidecar['inputs'])}.")
        self.item_ids_ = decode_ids(sidecar["item_ids"])
        self.user_ids_ = (None if sidecar["user_ids"] is None
                          else decode_ids(sidecar["user_ids"]))
        if len(self.item_ids_) != sidecar["n_items"]:
            raise ExportError(f"{path}'s sidecar lists {len(self.item_ids_)} item ids for "
                              f"{sidecar['n_items']} items.")
        columns = sidecar["columns"]
        self.user_col, self.item_col, self.time_col = (columns["user"], columns["item"],
                                                       columns["time"])
        self.n_items_ = sidecar["n_items"]
        self.filter_seen_ = sidecar["filter_seen"]
        self.context_ = sidecar["context"]
        self.estimator_ = sidecar["estimator"]
        self.params_ = sidecar["params"]

    def __repr__(self):
        return f"ExportedRecommender({self.estimator_}, n_items={self.n_items_})"

    def recommend(self, histories, k=10):
        """Top-k recommendations for users given their histories.

        Parameters
        ----------
        histories : pandas.DataFrame, polars.DataFrame, pyarrow.Table or parquet path
            Interactions of the users to serve, with the estimator's columns: their whole
            context (an export holds no fitted histories).
        k : int, default=10
            Number of items per user; a catalogue smaller than ``k`` is returned whole.

        Returns
        -------
        pandas.DataFrame
            Columns ``user_col, item_col, score, rank``, sorted by user then rank, as the
            estimator's ``recommend``.
        """
        frames = list(self.iter_recommend(histories, k))
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, ignore_index=True)

    def iter_recommend(self, histories, k=10, chunk_size=None):
        """:meth:`recommend` as a stream of frames, one per chunk of users."""
        if histories is None:
            raise ValueError("an export holds no fitted histories: pass the users' histories.")
        check_column_roles(self.user_col, self.item_col, self.time_col,
                           reserved=("score", "rank"))
        k = min(check_k(k), self.n_items_)
        chunk_size = self.chunk_size if chunk_size is None else check_k(chunk_size,
                                                                         "chunk_size")
        data = encode_histories(histories, self.user_col, self.item_col, self.time_col,
                                self.item_ids_, stacklevel=4)
        chunks = ((rows, *self._top_k(data, rows, k)) for rows in
                  np.array_split(np.arange(data.n_users),
                                 range(chunk_size, data.n_users, chunk_size)))
        yield from top_k_frames(chunks, data.user_ids, self.item_ids_, k, self.user_col,
                                self.item_col)

    def _top_k(self, data, rows, k):
        """Top-k codes and scores of ``rows``, in batches of similar history lengths."""
        order = np.argsort(data.lengths[rows], kind="stable")
        codes = np.empty((len(rows), k), dtype=np.int64)
        values = np.empty((len(rows), k), dtype=np.float32)
        for first in range(0, len(rows), self.batch_size):
            part = order[first:first + self.batch_size]
            codes[part], values[part] = self.session_.run(["items", "scores"],
                                                          self._feeds(data, rows[part], k))
        return codes, values

    def _feeds(self, data, rows, k):
        """The session's inputs for users ``rows`` of ``data``."""
        # seen items are filtered over the whole history; otherwise the context is enough
        width = self.context_ if self.context_ is not None and not self.filter_seen_ else None
        feeds = {"history": data.last_items(width or max(1, int(data.lengths[rows].max())),
                                            rows),
                 "k": np.array([k], dtype=np.int64)}
        if self.user_ids_ is not None:
            feeds["users"] = self.user_ids_.get_indexer(data.user_ids[rows]).astype(np.int64)
        return feeds
