"""Non-personalised and linear baselines of the paper's Table 2."""

from numbers import Integral

import numpy as np
import scipy.sparse.linalg as spla
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from .base import BaseRecommender
from ..nn.scoring import EmbeddingScorer, PopularityScorer

__all__ = ["PopularRecommender", "RandomRecommender", "PopRandomRecommender",
           "PureSVDRecommender"]


class PopularRecommender(BaseRecommender):
    """Recommends the items with the most interactions at fit.

    Parameters
    ----------
    filter_seen : bool, default=True
        Exclude each user's history items.
    user_col, item_col, time_col : str
        Column names of the interaction frames.

    Attributes
    ----------
    item_ids_ : pandas.Index
        Catalogue (original item ids).
    item_popularity_ : numpy.ndarray of int
        Interactions per item at fit.

    Examples
    --------
    >>> from skcreate.data.datasets import make_interactions
    >>> from skcreate.estimators.baselines import PopularRecommender
    >>> df = make_interactions(n_users=50, n_items=200, random_state=0)
    >>> recs = PopularRecommender().fit(df).recommend(k=5)
    >>> bool(recs.groupby("user_id").size().eq(5).all())
    True

    Seen items are filtered, so a user with fewer than ``k`` unseen items left gets fewer rows;
    a catalogue of 200 items leaves every user here at least 5.
    """

    def __init__(self, filter_seen=True, user_col="user_id", item_col="item_id",
                 time_col="timestamp"):
        self.filter_seen = filter_seen
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    def _fit(self, data):
        pass

    def _partial_fit(self, data, touched, epochs):
        pass  # the popularity is recomputed from all interactions

    def _score(self, data, rows):
        return torch.as_tensor(self.item_popularity_, dtype=torch.float32).repeat(len(rows), 1)

    def _serving_scorer(self):
        return PopularityScorer(self.item_popularity_), None


class _SeededRecommender(BaseRecommender):
    """Draws scores from a generator re-seeded at every call, so results repeat."""

    def _fit(self, data):
        self.seed_ = int(check_random_state(self.random_state).randint(2**31 - 1))

    def _partial_fit(self, data, touched, epochs):
        pass  # the draws cover the grown catalogue with the fitted seed

    def _serving_scorer(self):
        raise TypeError(f"{type(self).__name__} cannot be exported: its scores are random draws, "
                        "not a function of the history.")

    def _generator(self, rows):
        # the first row makes batches independent while keeping calls reproducible
        return torch.Generator().manual_seed(self.seed_ + int(rows[0]))


class RandomRecommender(_SeededRecommender):
    """Recommends items uniformly at random.

    Parameters
    ----------
    filter_seen : bool, default=True
        Exclude each user's history items.
    random_state : int, RandomState instance or None, default=None
        Seed; the same seed gives the same recommendations.
    user_col, item_col, time_col : str
        Column names of the interaction frames.

    Attributes
    ----------
    seed_ : int
        Seed drawn at fit from ``random_state``.

    Examples
    --------
    >>> from skcreate.data.datasets import make_interactions
    >>> from skcreate.estimators.baselines import RandomRecommender
    >>> df = make_interactions(n_users=50, n_items=200, random_state=0)
    >>> len(RandomRecommender(random_state=0).fit(df).recommend(k=3)) == 3 * 50
    True
    """

    def __init__(self, filter_seen=True, random_state=None, user_col="user_id",
                 item_col="item_id", time_col="timestamp"):
        self.filter_seen = filter_seen
        self.random_state = random_state
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    def _score(self, data, rows):
        return torch.rand(len(rows), self.n_items_, generator=self._generator(rows))


class PopRandomRecommender(_SeededRecommender):
    """Samples items at random with probability proportional to their popularity (PopRnd).

    Sampling without replacement uses the Gumbel-top-k trick: the top k of
    ``log(popularity) + Gumbel noise`` is a popularity-weighted sample of k distinct items.

    Parameters
    ----------
    filter_seen : bool, default=True
        Exclude each user's history items.
    random_state : int, RandomState instance or None, default=None
        Seed; the same seed gives the same recommendations.
    user_col, item_col, time_col : str
        Column names of the interaction frames.

    Attributes
    ----------
    seed_ : int
        Seed drawn at fit from ``random_state``.

    Examples
    --------
    >>> from skcreate.data.datasets import make_interactions
    >>> from skcreate.estimators.baselines import PopRandomRecommender
    >>> df = make_interactions(n_users=50, n_items=30, random_state=0)
    >>> recs = PopRandomRecommender(random_state=0).fit(df).recommend(k=3)
    >>> list(recs.columns)
    ['user_id', 'item_id', 'score', 'rank']
    """

    def __init__(self, filter_seen=True, random_state=None, user_col="user_id",
                 item_col="item_id", time_col="timestamp"):
        self.filter_seen = filter_seen
        self.random_state = random_state
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    def _score(self, data, rows):
        log_pop = torch.log(torch.as_tensor(self.item_popularity_, dtype=torch.float32))
        uniform = torch.rand(len(rows), self.n_items_, generator=self._generator(rows))
        return log_pop - torch.log(-torch.log(uniform.clamp_min(1e-12)))


class PureSVDRecommender(BaseRecommender):
    """PureSVD (Cremonesi et al., 2010): truncated SVD of the binary user-item matrix.

    Scores for a history ``x`` are ``x V V^T`` with ``V`` the top right singular vectors, so any
    history is folded in without refitting.

    Parameters
    ----------
    n_factors : int, default=64
        Rank of the decomposition.
    filter_seen : bool, default=True
        Exclude each user's history items.
    random_state : int, RandomState instance or None, default=None
        Seeds the ARPACK start vector.
    user_col, item_col, time_col : str
        Column names of the interaction frames.

    Attributes
    ----------
    item_factors_ : numpy.ndarray, shape (n_items, n_factors)
        Right singular vectors.

    Examples
    --------
    >>> from skcreate.data.datasets import make_interactions
    >>> from skcreate.estimators.baselines import PureSVDRecommender
    >>> df = make_interactions(n_users=80, n_items=40, random_state=0)
    >>> PureSVDRecommender(n_factors=8, random_state=0).fit(df).item_factors_.shape
    (40, 8)
    """

    _parameter_constraints = {
        **BaseRecommender._parameter_constraints,
        "n_factors": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, n_factors=64, filter_seen=True, random_state=None, user_col="user_id",
                 item_col="item_id", time_col="timestamp"):
        self.n_factors = n_factors
        self.filter_seen = filter_seen
        self.random_state = random_state
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    def _fit(self, data):
        max_rank = min(data.n_users, data.n_items) - 1
        if max_rank < 1:
            raise ValueError(
                f"PureSVD needs at least 2 users and 2 items to factorise, got {data.n_users} "
                f"user(s) and {data.n_items} item(s).")
        if self.n_factors > max_rank:
            raise ValueError(
                f"n_factors must be in [1, {max_rank}] (min(n_users, n_items) - 1), "
                f"got {self.n_factors}.")
        rng = check_random_state(self.random_state)
        matrix = data.to_csr().astype(np.float64)
        v0 = rng.uniform(-1, 1, min(matrix.shape))
        _, _, vt = spla.svds(matrix, k=self.n_factors, v0=v0)
        self.item_factors_ = np.ascontiguousarray(vt.T, dtype=np.float32)

    def _score(self, data, rows):
        factors = torch.as_tensor(self.item_factors_)
        users = data.to_csr(rows) @ self.item_factors_
        return torch.as_tensor(users) @ factors.T

    def _serving_scorer(self):
        return EmbeddingScorer(self.item_factors_, fold="sum"), None

    def _partial_fit(self, data, touched, epochs):
        # a truncated SVD costs about one pass over the interactions: recompute it on all
        self._fit(data)
