"""A Pipeline whose ``score`` takes next-item targets from the raw evaluation frame."""

import warnings

from sklearn.pipeline import Pipeline
from sklearn.pipeline import make_pipeline as _sklearn_make_pipeline
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ..data.interactions import as_frame, check_interactions
from ..data.metrics import make_scorer

__all__ = ["RecommenderPipeline", "make_pipeline"]


def _final_estimator_recommends(pipeline):
    """``recommend`` and ``score`` exist only when the last step recommends (sklearn's rule)."""
    return hasattr(pipeline._final_estimator, "recommend")


class RecommenderPipeline(Pipeline):
    """:class:`sklearn.pipeline.Pipeline` of interaction filters and a final recommender.

    scikit-learn's ``Pipeline.score`` transforms the evaluation frame before the recommender
    picks each user's last interaction as the target: a filter that drops a user's real target
    turns an earlier event, possibly one the model trained on, into the target. Here ``score``
    is :func:`~skcreate.data.metrics.make_scorer`'s NDCG@10, which takes the targets from the raw
    frame and filters only the histories, so ``GridSearchCV`` with its default scoring ranks
    configurations by the same metric as ``scoring=make_scorer()``.

    Parameters
    ----------
    steps : list of (str, estimator)
        As in :class:`sklearn.pipeline.Pipeline`; the last step is a recommender.
    transform_input, memory, verbose
        As in :class:`sklearn.pipeline.Pipeline`.

    Examples
    --------
    >>> from skcreate import PopularRecommender
    >>> from skcreate.data.datasets import make_interactions
    >>> from skcreate.estimators.pipeline import make_pipeline
    >>> from skcreate.data.preprocessing import MinInteractionsFilter
    >>> X = make_interactions(n_users=200, n_items=50, random_state=0)
    >>> pipe = make_pipeline(MinInteractionsFilter(5, 5), PopularRecommender()).fit(X)
    >>> 0 <= pipe.score(X) <= 1
    True
    """

    @available_if(_final_estimator_recommends)
    def recommend(self, histories=None, k=10):
        """Top-k recommendations of the final recommender, histories filtered like fit data.

        ``histories`` goes through ``transform`` of every step but the last, as the fit data
        did, and the final recommender serves what remains: a filter that dropped rare items
        at fit drops them from the context too. Users whose every row the steps remove (for
        instance users removed by :class:`~skcreate.data.preprocessing.MinInteractionsFilter`
        at fit) get no recommendations, counted in a warning; a ``ValueError`` says so when no row
        remains.

        Parameters
        ----------
        histories : pandas.DataFrame, optional
            Interactions of the users to serve. ``None`` serves every user of the transformed
            fit data from its fitted history.
        k : int, default=10
            Number of items per user.

        Returns
        -------
        pandas.DataFrame
            As the final recommender's ``recommend``.
        """
        final = self._final_estimator
        check_is_fitted(final)
        if histories is None or len(self.steps) == 1:
            return final.recommend(histories, k=k)
        histories = as_frame(histories, "histories")
        user_col = getattr(final, "user_col", "user_id")
        # the steps would name the frame "X" in their errors
        check_interactions(histories, user_col, getattr(final, "item_col", "item_id"),
                           getattr(final, "time_col", "timestamp"), name="histories")
        kept = self[:-1].transform(histories)
        users = histories[user_col].drop_duplicates()
        if len(kept) == 0:
            raise ValueError(f"The pipeline's steps removed every row of histories "
                             f"({len(users)} user(s)): no user is left to serve.")
        n_lost = int((~users.isin(kept[user_col])).sum())
        if n_lost:
            warnings.warn(f"The pipeline's steps removed every history row of {n_lost} of "
                          f"{len(users)} user(s); they get no recommendations.", UserWarning,
                          stacklevel=2)
        return final.recommend(kept, k=k)

    @available_if(_final_estimator_recommends)
    def score(self, X, y=None, **params):
        """NDCG@10 of next-item prediction on ``X`` (targets from the unfiltered ``X``).

        Parameters
        ----------
        X : pandas.DataFrame
            Interactions of the users to evaluate; each user's last one is the target.
        y : None
            Ignored.
        **params
            Not supported; present for the signature of ``Pipeline.score``.

        Returns
        -------
        float
        """
        if params:
            raise TypeError(f"RecommenderPipeline.score takes no extra parameters, got "
                            f"{sorted(params)}.")
        return make_scorer("ndcg", 10)(self, X)


def make_pipeline(*steps, memory=None, transform_input=None, verbose=False):
    """Build a :class:`RecommenderPipeline` with step names derived from the classes.

    Parameters
    ----------
    *steps : estimators
        Filters, then the recommender.
    memory, transform_input, verbose
        As in :func:`sklearn.pipeline.make_pipeline`.

    Returns
    -------
    RecommenderPipeline
    """
    pipe = _sklearn_make_pipeline(*steps, memory=memory, transform_input=transform_input,
                                  verbose=verbose)
    return RecommenderPipeline(pipe.steps, memory=memory, transform_input=transform_input,
                               verbose=verbose)
