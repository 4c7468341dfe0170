"""RecommenderPipeline: targets of the default score come from the unfiltered frame."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skcreate import GlobalTemporalSplit, PopularRecommender
from skcreate.data.metrics import make_scorer
from skcreate.estimators.pipeline import RecommenderPipeline, make_pipeline
from skcreate.data.preprocessing import IdFilter, MinInteractionsFilter
from test_metrics import ShiftRecommender


class ScoredShift(ShiftRecommender):
    def score(self, X, y=None):
        return make_scorer()(self, X)


# user 1's target, item 9, is what the filter removes
X = pd.DataFrame({"user_id": [1, 1, 1, 1, 2, 2, 2],
                  "item_id": [1, 2, 3, 9, 10, 11, 13],
                  "timestamp": [1, 2, 3, 4, 1, 2, 3]})


def test_score_keeps_the_raw_target():
    steps = [("drop", IdFilter(items=[9], exclude=True)), ("rec", ScoredShift())]
    ours = RecommenderPipeline(steps).fit(X)
    # history 1, 2, 3 -> items 4, 5, ...: target 9 at rank 6; user 2: target 13 at rank 2
    expected = (1 / np.log2(7) + 1 / np.log2(3)) / 2
    assert ours.score(X) == pytest.approx(expected)
    assert ours.score(X) == make_scorer()(ours, X)
    # scikit-learn's Pipeline scores user 1 on item 3, an event of the fitted history
    theirs = Pipeline(clone(ours).steps).fit(X)
    assert theirs.score(X) == pytest.approx((1 + 1 / np.log2(3)) / 2)


def test_make_pipeline_names_steps_and_clones():
    pipe = make_pipeline(MinInteractionsFilter(2, 1), PopularRecommender())
    assert isinstance(pipe, RecommenderPipeline)
    assert [name for name, _ in pipe.steps] == ["mininteractionsfilter", "popularrecommender"]
    copy = clone(pipe)
    assert type(copy) is RecommenderPipeline
    assert copy.get_params()["mininteractionsfilter__min_user_interactions"] == 2
    with pytest.raises(TypeError, match="sample_weight"):
        pipe.fit(X).score(X, sample_weight=np.ones(len(X)))


def test_grid_search_default_scoring_is_make_scorer(ml100k):
    pipe = make_pipeline(MinInteractionsFilter(5, 5), PopularRecommender())
    grid = {"mininteractionsfilter__min_item_interactions": [5, 50]}
    cv = GlobalTemporalSplit(quantile=[0.8, 0.9])
    default = GridSearchCV(pipe, grid, cv=cv).fit(ml100k)
    explicit = GridSearchCV(pipe, grid, cv=cv, scoring=make_scorer()).fit(ml100k)
    np.testing.assert_allclose(default.cv_results_["mean_test_score"],
                               explicit.cv_results_["mean_test_score"])


def test_recommend_filters_histories_like_fit_data():
    pipe = RecommenderPipeline([("drop", IdFilter(items=[9], exclude=True)),
                                ("rec", ScoredShift())]).fit(X)
    # user 1's last event, item 9, is filtered: its last kept item is 3, so 4, 5, ...
    recs = pipe.recommend(X, k=2)
    assert recs.groupby("user_id").item_id.apply(list).to_dict() == {1: [4, 5], 2: [14, 15]}
    assert recs.equals(pipe[-1].recommend(IdFilter(items=[9], exclude=True).fit_transform(X),
                                          k=2))


def test_recommend_counts_users_the_steps_remove(ml100k):
    pipe = make_pipeline(MinInteractionsFilter(40, 5), PopularRecommender()).fit(ml100k)
    removed = pipe[0].removed_users_[:3]
    kept = pipe[0].users_[:2]
    histories = ml100k[ml100k.user_id.isin(removed.append(kept))]
    with pytest.warns(UserWarning, match=r"removed every history row of 3 of 5 user\(s\)"):
        recs = pipe.recommend(histories, k=4)
    assert set(recs.user_id) == set(kept)
    with pytest.raises(ValueError, match=r"removed every row of histories \(3 user\(s\)\)"):
        pipe.recommend(ml100k[ml100k.user_id.isin(removed)], k=4)
    # None serves the users of the transformed fit data
    assert set(pipe.recommend(k=1).user_id) == set(pipe[0].users_)


def test_recommend_of_a_one_step_pipeline_and_before_fit():
    pipe = make_pipeline(PopularRecommender())
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        pipe.recommend(X)
    pd.testing.assert_frame_equal(pipe.fit(X).recommend(X, k=3),
                                  PopularRecommender().fit(X).recommend(X, k=3))


def test_without_a_final_recommender_there_is_no_recommend_or_score():
    pipe = make_pipeline(MinInteractionsFilter(1, 1)).fit(X)
    # scikit-learn's rule (like predict after a transformer), not a raw error from the last step
    for method in ("recommend", "score"):
        assert not hasattr(pipe, method)
        with pytest.raises(AttributeError, match=f"This 'RecommenderPipeline' has no attribute "
                                                 f"'{method}'"):
            getattr(pipe, method)(X)
    assert len(pipe.transform(X)) == len(X)


def test_recommend_names_histories_in_its_errors():
    pipe = make_pipeline(MinInteractionsFilter(1, 1), PopularRecommender()).fit(X)
    # the first step used to report these as problems of "X"
    with pytest.raises(ValueError, match=r"^histories is empty"):
        pipe.recommend(X.iloc[:0])
    with pytest.raises(ValueError, match=r"^histories is missing column\(s\) \['user_id'\]"):
        pipe.recommend(X.drop(columns="user_id"))
