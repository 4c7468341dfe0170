"""`implicit` ALS and BPR under the skcreate fit / recommend / score contract."""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from threadpoolctl import threadpool_limits

with warnings.catch_warnings():
    # implicit imports tqdm.auto, which warns in every Jupyter kernel without ipywidgets
    warnings.filterwarnings("ignore", message="IProgress not found")
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from implicit.recommender_base import ModelFitError

from .base import BaseRecommender
from ..nn.scoring import EmbeddingScorer, LeastSquaresScorer

__all__ = ["ALSRecommender", "BPRRecommender"]


def _grow(factors, n_rows, new):
    """``factors`` followed by ``new((n_rows - len(factors), width), dtype)`` rows."""
    shape = (n_rows - len(factors), factors.shape[1])
    return np.ascontiguousarray(np.concatenate([factors, new(shape, dtype=factors.dtype)]))


class _ImplicitRecommender(BaseRecommender):
    # implicit takes threads as an unsigned count: -3 asks OpenMP for 2**32 - 3 threads
    _parameter_constraints = {
        **BaseRecommender._parameter_constraints,
        "n_factors": [Interval(Integral, 1, None, closed="left")],
        "regularization": [Interval(Real, 0, np.inf, closed="left")],
        "iterations": [Interval(Integral, 1, None, closed="left")],
        "num_threads": [Interval(Integral, 0, None, closed="left")],
    }
    # parameters whose size can make implicit's updates overflow, per subclass
    _step_params = ()

    def _fit(self, data):
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        # implicit runs its own threads; a multi-threaded BLAS underneath only oversubscribes
        with threadpool_limits(1, "blas"):
            model = self._make_model(seed)
            try:
                model.fit(data.to_csr(), show_progress=False)
            except ModelFitError as exc:
                values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._step_params)
                raise ValueError(f"{type(self).__name__} diverged ({exc}) with {values}: use "
                                 "smaller values.") from exc
        self.model_ = model
        self.item_factors_ = np.asarray(model.item_factors)
        self.user_factors_ = np.asarray(model.user_factors)

    # rebuilt from the saved factors by _restore, so a model file holds no implicit object
    _restored_attributes = ("model_",)

    def _restore(self, state_dict):
        # implicit checks the BLAS threads when a model is made, as in _fit
        with threadpool_limits(1, "blas"):
            model = self._make_model(0)
        model.user_factors = self.user_factors_
        model.item_factors = self.item_factors_
        self.model_ = model

    def _partial_fit(self, data, touched, epochs):
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        users, items = self._grown_factors(data.n_users, data.n_items, seed)
        with threadpool_limits(1, "blas"):
            model = self._make_model(seed)
            model.user_factors, model.item_factors = users, items
            self._sweep(model, data.to_csr(), touched, epochs or self.iterations)
        self.model_ = model
        self.user_factors_ = np.asarray(model.user_factors)
        self.item_factors_ = np.asarray(model.item_factors)

    def _grown_factors(self, n_users, n_items, seed):
        """The fitted factors with rows for new users and items (subclasses initialise
        them)."""
        raise NotImplementedError

    def _score(self, data, rows):
        users = self._user_factors(data, rows)
        return torch.as_tensor(users) @ torch.as_tensor(self.item_factors_).T


class ALSRecommender(_ImplicitRecommender):
    """Implicit-feedback ALS (Hu, Koren & Volinsky, 2008) from the `implicit` package.

    Every history passed to ``recommend`` is folded in exactly: the user factor is recomputed by
    one least-squares step against the fitted item factors (``implicit``'s
    ``recalculate_user``), so users unseen at fit are served like the others.

    Parameters
    ----------
    n_factors : int, default=64
        Latent dimension.
    regularization : float, default=0.01
        L2 penalty.
    alpha : float, default=1.0
        Confidence scale of observed interactions.
    iterations : int, default=15
        ALS sweeps.
    filter_seen : bool, default=True
        Exclude each user's history items.
    random_state : int, RandomState instance or None, default=None
        Seeds the factor initialisation.
    num_threads : int, default=0
        Threads of `implicit` (0 = all cores). The result does not depend on it: each user's
        and item's least-squares solve is independent of the others.
    user_col, item_col, time_col : str
        Column names of the interaction frames.

    Attributes
    ----------
    item_factors_ : numpy.ndarray, shape (n_items, n_factors)
    user_factors_ : numpy.ndarray, shape (n_users, n_factors)
        Factors of the users seen at fit.
    model_ : implicit.cpu.als.AlternatingLeastSquares
        The fitted `implicit` model.

    Examples
    --------
    >>> from skcreate.data.datasets import make_interactions
    >>> from skcreate.estimators.matrix_factorization import ALSRecommender
    >>> df = make_interactions(n_users=80, n_items=40, random_state=0)
    >>> als = ALSRecommender(n_factors=8, iterations=3, random_state=0).fit(df)
    >>> als.recommend(df[df.user_id == 0], k=5)["rank"].tolist()
    [1, 2, 3, 4, 5]
    """

    _parameter_constraints = {
        **_ImplicitRecommender._parameter_constraints,
        "alpha": [Interval(Real, 0, np.inf, closed="neither")],
    }
    _step_params = ("alpha", "regularization")

    def __init__(self, n_factors=64, regularization=0.01, alpha=1.0, iterations=15,
                 filter_seen=True, random_state=None, num_threads=0, user_col="user_id",
                 item_col="item_id", time_col="timestamp"):
        self.n_factors = n_factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.filter_seen = filter_seen
        self.random_state = random_state
        self.num_threads = num_threads
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    def _make_model(self, seed):
        return AlternatingLeastSquares(
            factors=self.n_factors, regularization=self.regularization, alpha=self.alpha,
            iterations=self.iterations, num_threads=self.num_threads, random_state=seed)

    _free_params = _ImplicitRecommender._free_params | {"iterations", "num_threads"}

    def _grown_factors(self, n_users, n_items, seed):
        # new rows start at zero: a zero item adds nothing to a user's solve until its own
        # factors are solved from its users
        return (_grow(self.user_factors_, n_users, np.zeros),
                _grow(self.item_factors_, n_items, np.zeros))

    def _sweep(self, model, user_items, touched, sweeps):
        """ALS sweeps over the touched users and their items only (``implicit``'s
        ``partial_fit_users`` / ``partial_fit_items``)."""
        items = np.unique(user_items[touched].indices)
        item_users = user_items.T.tocsr()[items]
        for _ in range(sweeps):
            model.partial_fit_users(touched, user_items[touched])
            model.partial_fit_items(items, item_users)
        # the users' last solve sees their items' final factors
        model.partial_fit_users(touched, user_items[touched])

    def _serving_scorer(self):
        # the fitted model's values: set_params after fit changes nothing it serves
        return LeastSquaresScorer(self.item_factors_, self.model_.regularization,
                                  self.model_.alpha), None

    def _user_factors(self, data, rows):
        with threadpool_limits(1, "blas"):
            return self.model_.recalculate_user(np.arange(len(rows)), data.to_csr(rows))


class BPRRecommender(_ImplicitRecommender):
    """Bayesian Personalised Ranking (Rendle et al., 2009) from the `implicit` package.

    `implicit` cannot fold a history into BPR. Users seen at fit are served with their fitted
    factors (their fitted history defines them, whatever history is passed); users unseen at
    fit get the mean of their history items' factors, an approximation documented here
    rather than a least-squares fold-in.

    Parameters
    ----------
    n_factors : int, default=64
        Latent dimension (an item bias is added by `implicit`).
    learning_rate : float, default=0.01
        SGD step size.
    regularization : float, default=0.01
        L2 penalty.
    iterations : int, default=100
        Epochs of SGD.
    filter_seen : bool, default=True
        Exclude each user's history items.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and sampling.
    num_threads : int, default=1
        Threads of `implicit`'s lock-free SGD (0 = all cores). More threads are faster, but
        their updates interleave differently on every run, so a seed no longer fixes the result.
    user_col, item_col, time_col : str
        Column names of the interaction frames.

    Attributes
    ----------
    item_factors_ : numpy.ndarray, shape (n_items, n_factors + 1)
        Item factors, last column the item bias.
    user_factors_ : numpy.ndarray, shape (n_users, n_factors + 1)
        User factors, last column 1.
    model_ : implicit.cpu.bpr.BayesianPersonalizedRanking
        The fitted `implicit` model.

    Examples
    --------
    >>> from skcreate.data.datasets import make_interactions
    >>> from skcreate.estimators.matrix_factorization import BPRRecommender
    >>> df = make_interactions(n_users=80, n_items=40, random_state=0)
    >>> bpr = BPRRecommender(n_factors=8, iterations=5, random_state=0).fit(df)
    >>> bpr.item_factors_.shape
    (40, 9)
    """

    _parameter_constraints = {
        **_ImplicitRecommender._parameter_constraints,
        "learning_rate": [Interval(Real, 0, np.inf, closed="neither")],
    }
    _step_params = ("learning_rate", "regularization")

    def __init__(self, n_factors=64, learning_rate=0.01, regularization=0.01, iterations=100,
                 filter_seen=True, random_state=None, num_threads=1, user_col="user_id",
                 item_col="item_id", time_col="timestamp"):
        self.n_factors = n_factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.filter_seen = filter_seen
        self.random_state = random_state
        self.num_threads = num_threads
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    def _make_model(self, seed):
        return BayesianPersonalizedRanking(
            factors=self.n_factors, learning_rate=self.learning_rate,
            regularization=self.regularization, iterations=self.iterations,
            num_threads=self.num_threads, random_state=seed)

    _free_params = _ImplicitRecommender._free_params | {"iterations", "num_threads",
                                                        "learning_rate"}

    def _grown_factors(self, n_users, n_items, seed):
        # implicit's initialisation for the new rows: uniform / n_factors, item bias 0 and the
        # users' bias column 1
        rng = np.random.default_rng(seed)

        def init(shape, bias):
            rows = ((rng.random(shape) - 0.5) / self.n_factors).astype(np.float32)
            rows[:, -1] = bias
            return rows

        return (_grow(self.user_factors_, n_users, lambda shape, dtype: init(shape, 1.0)),
                _grow(self.item_factors_, n_items, lambda shape, dtype: init(shape, 0.0)))

    def _sweep(self, model, user_items, touched, iterations):
        """SGD epochs over the touched users' interactions (new and old)."""
        keep = np.zeros(user_items.shape[0], dtype=np.float32)
        keep[touched] = 1.0
        model.iterations = iterations
        model.fit(sp.diags(keep) @ user_items, show_progress=False)

    def _serving_scorer(self):
        return (EmbeddingScorer(self.item_factors_, self.user_factors_, bias_column=True),
                self.interactions_.user_ids)

    def _user_factors(self, data, rows):
        fitted = self.interactions_.user_ids.get_indexer(data.user_ids[rows])
        history = data.to_csr(rows)
        counts = np.asarray(history.sum(axis=1))
        folded = (history @ self.item_factors_) / np.maximum(counts, 1)
        folded[:, -1] = 1.0  # the user side of implicit's item-bias column
        known = fitted >= 0
        folded[known] = self.user_factors_[fitted[known]]
        return folded.astype(np.float32)
