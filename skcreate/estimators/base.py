"""The fit / recommend / score contract shared by every recommender."""

import numbers
from collections.abc import Hashable

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..data.interactions import (Interactions, check_column_roles, check_interactions,
                                 check_k)
from ..data.metrics import make_scorer
from ..data.recommendations import encode_histories, top_k_frames

__all__ = ["BaseRecommender"]


class BaseRecommender(BaseEstimator):
    """Base class of skcreate recommenders.

    Subclasses implement ``_fit(data)``, which learns from encoded
    :class:`~skcreate.data.interactions.Interactions`, and ``_score(data, rows)``, which returns a
    ``(len(rows), n_items)`` tensor of scores for users ``rows`` of ``data`` given their
    histories. The base class validates and encodes frames, masks seen items, takes the top k in
    batches and maps codes back to the original ids.

    Users whose history holds no item of the fitted catalogue are served by popularity (with a
    warning), since no model can personalise an empty history.

    Parameters are validated at ``fit`` against ``_parameter_constraints`` (scikit-learn's
    declarations; parameters a subclass does not declare are left to its ``_check_params``) and
    take effect there: ``set_params`` after ``fit`` changes nothing a fitted model serves until
    the next ``fit``. The exception are ``user_col``, ``item_col`` and ``time_col``, which name
    the columns of whatever frame is passed and are read at every call; they must name three
    different columns, and ``user_col``/``item_col`` may not be ``"score"`` or ``"rank"``, the
    columns that ``recommend`` adds.
    """

    # users scored per batch in recommend: bounds memory to batch * n_items floats
    _recommend_batch_size = 1024
    # users per chunk of recommend's output (a multiple of the batch size): bounds the top-k
    # arrays and frame pieces in flight to chunk * k rows
    _recommend_chunk_size = 16 * 1024
    # score a chunk's users in order of history length, so that a batch holds sequences of
    # similar lengths and pads little (sequence models; scores do not depend on the batch)
    _batch_by_length = False

    _parameter_constraints: dict = {
        "filter_seen": ["boolean"],
        "random_state": ["random_state"],
        "user_col": [Hashable],
        "item_col": [Hashable],
        "time_col": [Hashable],
    }

    #: parameter -> :class:`~skcreate.nn.registry.Shortcuts` of the parts the estimator takes
    #: as objects; a part's options are its own parameters, reached as ``<parameter>__<option>``
    _parts: dict = {}

    def get_params(self, deep=True):
        """Parameters of this estimator and, with ``deep``, of its parts.

        A part given by name (``alignment="barlow"``) shows the parameters of the default
        instance the name stands for, so that ``alignment__barlow_lambda`` can be read, set
        and tuned without constructing the part first.
        """
        params = super().get_params(deep=deep)
        if deep:
            for name, shortcuts in self._parts.items():
                value = params[name]
                # an unknown name is refused at fit; here it has no options to show
                part = shortcuts.resolve(value) if shortcuts.is_name(value) and \
                    value in shortcuts.defaults else None
                if part is not None:
                    params.update((f"{name}__{key}", v)
                                  for key, v in part.get_params(deep=False).items())
        return params

    def set_params(self, **params):
        """Set parameters, a part's options as ``<parameter>__<option>``.

        Setting an option of a part given by name first replaces the name by its default
        instance (``alignment__barlow_lambda=0.01`` turns ``"barlow"`` into
        ``BarlowTwins(barlow_lambda=0.01)``); the name is kept when only it is set.
        """
        for name, shortcuts in self._parts.items():
            nested = [key for key in params if key.startswith(name + "__")]
            value = params.get(name, getattr(self, name, None))
            if nested and shortcuts.is_name(value):
                shortcuts.check(name, value)
                part = shortcuts.make(value)
                if part is None:
                    raise ValueError(f"{nested[0]}: {name}={value!r} is no part and has no "
                                     f"options; pass {name} as a part object instead.")
                params = {**params, name: part}
        return super().set_params(**params)

    def _validate_parts(self):
        """Check each part parameter and the part's own options (a ValueError naming both)."""
        for name, shortcuts in self._parts.items():
            shortcuts.check(name, getattr(self, name))
            part = shortcuts.resolve(getattr(self, name))
            if part is not None:
                try:
                    part._validate_params()
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None

    def fit(self, X, y=None):
        """Fit the recommender on interactions.

        Parameters
        ----------
        X : pandas.DataFrame
            Interactions with columns ``user_col``, ``item_col``, ``time_col``.
        y : None
            Ignored, present for API consistency.

        Returns
        -------
        self

        Notes
        -----
        ``fit`` is all or nothing: when it raises (bad parameters or data, a diverged loss,
        a propagated ``KeyboardInterrupt``), every fitted attribute is removed, those of an
        earlier successful fit included, so that ``recommend`` and ``save`` raise
        :class:`~sklearn.exceptions.NotFittedError` rather than serve a half-fitted model.
        """
        try:
            self._fit_all(X)
        except BaseException:
            # a failed fit means not fitted (scikit-learn's convention): no mix of new sizes
            # and old curves, no diverged weights to serve or save
            self._remove_fitted_attributes()
            raise
        return self

    def partial_fit(self, X, y=None, epochs=None, replay=0.0):
        """Update the fitted model with new interactions.

        The new events extend the fitted interactions (``interactions_``): users and items
        first seen get new codes after the existing ones, whose ids, rows and codes never
        change, and become recommendable. Each model then learns from them in the way that
        suits it (see its ``_partial_fit``): the neural ones continue training from their
        fitted weights, optimiser state included, on the histories the new events extend;
        ALS re-solves the factors of the users and items they touch, BPR continues its SGD on
        those users; PureSVD and the baselines recompute from all interactions. On an
        unfitted estimator ``partial_fit`` is ``fit``.

        Parameters
        ----------
        X : pandas.DataFrame
            The new interactions, with the fitted columns and times of the fitted kind. They
            are added to the fitted ones as they are: an event passed again counts twice.
        y : None
            Ignored.
        epochs : int, optional
            Epochs (ALS sweeps, BPR iterations) of the update; by default a third of the
            neural models' ``epochs`` (at least 1), ALS's and BPR's ``iterations``.
        replay : float, default=0.0
            Share of the users without new events whose histories join the update too (a
            sample drawn from ``random_state``): training on the new events alone shifts a
            model towards the users who have them and forgets the others; replaying some of
            the others counters it, at a cost in proportion. 1.0 trains on every user.
            Models that recompute from all interactions ignore it.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If a parameter that defines the fitted model (a width, a part, a graph rule)
            changed since ``fit``, the times are of another kind, or ``X`` is invalid: the
            model is then left as it was.
        """
        return self._update(X, epochs, replay)

    def _update(self, X, epochs, replay, **options):
        """partial_fit, with a model's own ``options`` of ``_partial_fit``."""
        if not hasattr(self, "interactions_"):
            return self.fit(X)
        if epochs is not None:
            epochs = check_k(epochs, "epochs")
        if isinstance(replay, bool) or not isinstance(replay, numbers.Real) \
                or not 0 <= replay <= 1:
            raise ValueError(f"replay must be a share in [0, 1], got {replay!r}.")
        self._check_column_roles()
        self._check_unchanged_params()
        frame = check_interactions(X, self.user_col, self.item_col, self.time_col)
        self._check_time_kind(frame[self.time_col])
        new, _ = Interactions.from_frame(frame, self.user_col, self.item_col, self.time_col)
        data = self.interactions_.append(new)
        touched = np.unique(data.user_ids.get_indexer(new.user_ids))
        if replay > 0:
            others = np.setdiff1d(np.arange(data.n_users), touched)
            rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31))
            drawn = rng.choice(others, int(round(replay * len(others))), replace=False)
            touched = np.union1d(touched, drawn)
        self._partial_fit(data, touched, epochs, **options)
        self.interactions_ = data
        self.item_ids_ = data.item_ids
        self.n_items_ = data.n_items
        self.item_popularity_ = np.bincount(data.items, minlength=data.n_items)
        return self

    #: parameters that may change between fit and partial_fit: how training runs, not what
    #: the fitted model is
    _free_params = frozenset({"filter_seen", "random_state", "user_col", "item_col",
                              "time_col"})

    def _fitted_params(self):
        """What partial_fit compares: every parameter that defines the model, as its repr."""
        params = self.get_params(deep=True)
        for name, shortcuts in self._parts.items():
            # a part by its class: its options are compared one by one, and a name
            # ("lightgcn") equals the instance it stands for
            part = shortcuts.resolve(params[name]) if shortcuts.is_name(params[name]) \
                and params[name] in shortcuts.defaults else params[name]
            params[name] = type(part).__name__ if part is not None else None
        return {name: repr(value) for name, value in params.items()
                if not self._is_free(name)}

    def _is_free(self, name):
        return name in self._free_params or name.split("__")[0] in self._free_params

    def _check_unchanged_params(self):
        fitted = getattr(self, "fit_params_", None)
        if fitted is None:  # a model file from before partial_fit
            return
        now = self._fitted_params()
        # a model saved before a parameter became free still records it
        changed = sorted(name for name in fitted.keys() | now.keys()
                         if not self._is_free(name) and fitted.get(name) != now.get(name))
        if changed:
            detail = ", ".join(f"{name} {fitted.get(name)} at fit, now {now.get(name)}"
                               for name in changed[:3])
            raise ValueError(f"partial_fit continues the fitted model, whose parameters "
                             f"changed since fit ({detail}); set them back or refit with fit.")

    def _check_time_kind(self, times):
        fitted = getattr(self, "time_dtype_", None)
        kind = "datetime" if pd.api.types.is_datetime64_any_dtype(times) else "numeric"
        if fitted is None:
            return
        fitted_kind = "datetime" if fitted.startswith("datetime") else "numeric"
        if kind != fitted_kind or (kind == "datetime" and str(times.dtype) != fitted):
            raise ValueError(f"X[{self.time_col!r}] holds times of dtype {times.dtype}, the "
                             f"fitted ones were {fitted}: convert them to {fitted} first.")

    def _partial_fit(self, data, touched, epochs):
        """Learn from ``data`` (the fitted interactions and the new ones, grown id maps), the
        users ``touched`` having new events (subclasses; the base attributes are set after)."""
        raise NotImplementedError

    def _remove_fitted_attributes(self):
        # fitted attributes end with "_" (scikit-learn's convention); dunders are Python's
        for name in [name for name in vars(self)
                     if name.endswith("_") and not name.startswith("__")]:
            delattr(self, name)

    def _fit_all(self, X):
        """Validate, encode and fit; may raise with attributes half set (``fit`` clears them)."""
        self._validate_params()
        self._validate_parts()
        self._check_column_roles()
        self._check_params()
        frame = check_interactions(X, self.user_col, self.item_col, self.time_col)
        data, _ = Interactions.from_frame(frame, self.user_col, self.item_col, self.time_col)
        self.filter_seen_ = bool(self.filter_seen)
        self.fit_params_ = self._fitted_params()
        self.time_dtype_ = str(frame[self.time_col].dtype)
        self.interactions_ = data
        self.item_ids_ = data.item_ids
        self.n_items_ = data.n_items
        self.item_popularity_ = np.bincount(data.items, minlength=data.n_items)
        self._fit(data)

    def _encode_histories(self, histories):
        if histories is None:
            return self.interactions_
        return encode_histories(histories, self.user_col, self.item_col, self.time_col,
                                self.item_ids_, stacklevel=5)

    def recommend(self, histories=None, k=10):
        """Top-k recommendations for users given their histories.

        Parameters
        ----------
        histories : pandas.DataFrame, polars.DataFrame, pyarrow.Table or parquet path, optional
            Interactions of the users to serve: their whole context. Users need not have been
            seen at fit. ``None`` serves every user seen at fit from their fitted history.
        k : int, default=10
            Number of items per user; a catalogue smaller than ``k`` is returned whole.

        Returns
        -------
        pandas.DataFrame
            Columns ``user_col, item_col, score, rank`` (rank 1..k, original ids), sorted by user
            then rank. With ``filter_seen=True`` a user's history items are excluded, so a user
            who has seen all but fewer than ``k`` items gets fewer rows.

        See Also
        --------
        iter_recommend : the same rows in chunks of users, for memory bounded by the chunk.
        """
        frames = list(self.iter_recommend(histories, k))
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, ignore_index=True)

    def iter_recommend(self, histories=None, k=10, chunk_size=None):
        """:meth:`recommend` as a stream of frames, one per chunk of users.

        Working memory is bounded by the chunk (``chunk_size * k`` output rows and one batch
        of scores), whatever the number of users served, so millions of users can be served
        to a file or a database piece by piece.

        Parameters
        ----------
        histories, k
            As in :meth:`recommend`.
        chunk_size : int, optional
            Users per frame; default 16,384.

        Yields
        ------
        pandas.DataFrame
            The rows of :meth:`recommend` for the next chunk of users, in user order; the
            frames' index continues from one frame to the next.
        """
        check_is_fitted(self, "interactions_")
        # the column parameters are read at every call: set_params may have changed them
        self._check_column_roles()
        k = min(check_k(k), self.n_items_)
        chunk_size = (self._recommend_chunk_size if chunk_size is None
                      else check_k(chunk_size, "chunk_size"))
        data = self._encode_histories(histories)
        yield from top_k_frames(self._iter_top_k(data, k, chunk_size), data.user_ids,
                                self.item_ids_, k, self.user_col, self.item_col)

    def _top_k(self, data, k):
        """Top-k item codes and scores, shape (n_users, k) each; -inf marks no item."""
        chunks = list(self._iter_top_k(data, k))
        return (np.concatenate([codes for _, codes, _ in chunks]),
                np.concatenate([values for _, _, values in chunks]))

    def _iter_top_k(self, data, k, chunk_size=None):
        """``(rows, codes, values)`` per chunk of consecutive users, top-k as in ``_top_k``."""
        chunk_size = chunk_size or self._recommend_chunk_size
        batch = self._recommend_batch_size
        # a whole number of batches per chunk keeps the batches those of an unchunked pass
        chunk_size = max(batch, chunk_size - chunk_size % batch)
        popularity = torch.as_tensor(self.item_popularity_, dtype=torch.float32)
        for start in range(0, data.n_users, chunk_size):
            rows = np.arange(start, min(start + chunk_size, data.n_users))
            order = np.arange(len(rows))
            if self._batch_by_length:
                order = np.argsort(data.lengths[rows], kind="stable")
            codes = np.empty((len(rows), k), dtype=np.int64)
            values = np.empty((len(rows), k), dtype=np.float32)
            for first in range(0, len(rows), batch):
                part = order[first:first + batch]
                codes[part], values[part] = self._batch_top_k(data, rows[part], k, popularity)
            yield rows, codes, values

    def _batch_top_k(self, data, rows, k, popularity):
        """Top-k of one batch of users, on the scores' device; only the result is copied."""
        known = data.lengths[rows] > 0
        with torch.no_grad():
            if known.all():
                scores = self._score(data, rows).float()
            else:
                scores = popularity.repeat(len(rows), 1)
                if known.any():
                    part = self._score(data, rows[known]).float()
                    scores = scores.to(part.device)
                    scores[torch.as_tensor(known, device=part.device)] = part
            if self.filter_seen_:
                seen = data.to_csr(rows).tocoo()
                scores[torch.as_tensor(seen.row, device=scores.device),
                       torch.as_tensor(seen.col, device=scores.device)] = -torch.inf
            top = torch.topk(scores, k, dim=1)
        return top.indices.cpu().numpy(), top.values.cpu().numpy()

    def score(self, X, y=None):
        """NDCG@10 of next-item prediction on ``X``.

        For each user of ``X`` the last interaction is the target and all earlier rows are the
        history. This makes ``GridSearchCV(est, grid, cv=GlobalTemporalSplit())`` work as is.
        Users with a single interaction have no history to predict from: they are left out,
        with a warning that counts them, and a ``ValueError`` is raised when no user of ``X`` has
        two interactions. A target that repeats a history row exactly (duplicate rows) is a
        sure miss with ``filter_seen=True``: it is kept and counted in a warning.

        Parameters
        ----------
        X : pandas.DataFrame
            Interactions of the users to evaluate.
        y : None
            Ignored.

        Returns
        -------
        float
        """
        return make_scorer("ndcg", 10)(self, X)

    def save(self, path):
        """Write the fitted model to ``path`` without pickle; read it with :func:`skcreate.load`.

        The file is a zip of a JSON manifest (versions, class, parameters, fitted scalars and
        curves), the fitted arrays and id mappings (``.npz``) and, for neural models, the
        torch weights; see :mod:`skcreate.apps.persistence`.

        Parameters
        ----------
        path : str or path-like
        """
        from .saving import save

        save(self, path)

    def export(self, path, format="onnx"):
        """Write the fitted model as an ONNX graph and its sidecar, served without torch by
        :func:`skcreate.serving.load`.

        The graph maps a batch of histories to the top-k items and their scores (batch size,
        history length and ``k`` chosen at each call), applying the estimator's rules: seen
        items filtered, popularity for histories without a known item, fitted user rows for
        the users seen at fit where the model keeps them. The sidecar ``<path>.json`` holds
        the id maps, columns, parameters and the graph's SHA-256. Needs the ``serving`` extra
        (``pip install skcreate[serving]``).

        Parameters
        ----------
        path : str or path-like
            The ONNX file to write (``.onnx`` by convention); ``<path>.json`` is written
            beside it. Existing files are replaced.
        format : {"onnx"}, default="onnx"

        Raises
        ------
        TypeError
            If the model's scores cannot be a fixed graph (random baselines).
        ValueError
            If ``format`` is unknown or ids or column names cannot be written to JSON.

        Examples
        --------
        >>> from skcreate.data.datasets import make_interactions
        >>> from skcreate.estimators.baselines import PureSVDRecommender
        >>> df = make_interactions(n_users=80, n_items=40, random_state=0)
        >>> est = PureSVDRecommender(n_factors=8, random_state=0).fit(df)
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "puresvd.onnx")
        >>> est.export(path)
        >>> sorted(os.listdir(os.path.dirname(path)))
        ['puresvd.onnx', 'puresvd.onnx.json']
        """
        from .exporting import export

        export(self, path, format)

    def _serving_scorer(self):
        """``(scorer, user_ids)``: a :mod:`skcreate.nn.scoring` network of the fitted model
        (subclasses), and the ids of the fitted users whose rows it keeps (or None)."""
        raise TypeError(f"{type(self).__name__} cannot be exported.")

    def _restore(self, state_dict):
        """Rebuild what :func:`skcreate.apps.persistence.load` does not store (subclasses)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X is a frame of interactions (ids and times), never a numeric 2-D array
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.target_tags.required = False
        return tags

    def _check_column_roles(self):
        # recommend writes "score" and "rank" beside the id columns
        check_column_roles(self.user_col, self.item_col, self.time_col,
                           reserved=("score", "rank"))

    def _check_params(self):
        """Validate the constructor parameters (subclasses); runs before anything is set."""

    def _fit(self, data):
        raise NotImplementedError

    def _score(self, data, rows):
        raise NotImplementedError
