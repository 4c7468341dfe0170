"""RecommenderPipeline: targets of the default score come from the unfiltered frame."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skcreate import GlobalTemporalSplit, PopularRecommender
from skcreate.metrics import make_scorer
from skcreate.pipeline import RecommenderPipeline, make_pipeline
from skcreate.preprocessing import IdFilter, MinInteractionsFilter
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
