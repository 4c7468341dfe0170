import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skcreate.data.metrics import coverage_at_k, evaluate, make_scorer, ndcg_at_k, recall_at_k
from skcreate.data.model_selection import GlobalTemporalSplit
from skcreate.data.preprocessing import IdFilter

LOG2_3 = np.log2(3)


def recs_of(rows):
    """Recommendations frame from {user: [items best first]}."""
    users, items, ranks = [], [], []
    for user, listed in rows.items():
        users += [user] * len(listed)
        items += listed
        ranks += list(range(1, len(listed) + 1))
    return pd.DataFrame({"user_id": users, "item_id": items, "rank": ranks})


def targets_of(pairs):
    return pd.DataFrame(pairs, columns=["user_id", "item_id"])


def test_ndcg_single_target_rank_three():
    recs = recs_of({1: [7, 8, 9]})
    assert ndcg_at_k(recs, targets_of([(1, 9)])) == pytest.approx(0.5)
    assert ndcg_at_k(recs, targets_of([(1, 7)])) == pytest.approx(1.0)


def test_ndcg_two_relevant_items():
    recs = recs_of({1: [7, 8, 9, 10]})
    dcg = 1.0 + 0.5
    idcg = 1.0 + 1 / LOG2_3
    assert ndcg_at_k(recs, targets_of([(1, 7), (1, 9)])) == pytest.approx(dcg / idcg)
    # more relevant items than k: the ideal list has only k positions
    assert ndcg_at_k(recs, targets_of([(1, 7), (1, 8), (1, 10)]), k=2) == pytest.approx(1.0)


def test_ndcg_cutoff_and_missing_users():
    recs = recs_of({1: [7, 8, 9], 3: [1, 2]})
    targets = targets_of([(1, 9), (2, 7)])
    assert ndcg_at_k(recs, targets, k=2) == 0.0
    # user 2 has no recommendations: it counts 0; user 3 is not a target user: ignored
    assert ndcg_at_k(recs, targets, k=3) == pytest.approx(0.25)


def test_rank_column_optional_and_ranks_respected():
    recs = recs_of({1: [7, 8, 9]})
    targets = targets_of([(1, 9)])
    assert ndcg_at_k(recs.drop(columns="rank"), targets) == pytest.approx(0.5)
    # the rank column wins over row order
    shuffled = recs.iloc[::-1]
    assert ndcg_at_k(shuffled, targets) == pytest.approx(0.5)
    assert ndcg_at_k(shuffled.drop(columns="rank"), targets) == pytest.approx(1.0)


def test_duplicates_count_once():
    recs = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [9, 8, 9], "rank": [3, 1, 2]})
    targets = targets_of([(1, 9), (1, 9)])
    assert ndcg_at_k(recs, targets) == pytest.approx(1 / LOG2_3)
    assert recall_at_k(recs, targets) == pytest.approx(1.0)


def test_recall():
    recs = recs_of({1: [7, 8, 9], 2: [1, 2, 3]})
    targets = targets_of([(1, 8), (1, 9), (2, 3), (3, 1)])
    assert recall_at_k(recs, targets, k=2) == pytest.approx((0.5 + 0 + 0) / 3)
    assert recall_at_k(recs, targets, k=3) == pytest.approx((1 + 1 + 0) / 3)


def test_string_ids_and_custom_columns():
    recs = pd.DataFrame({"u": ["a", "a"], "i": ["x", "y"], "rank": [1, 2]})
    targets = pd.DataFrame({"u": ["a"], "i": ["y"]})
    assert ndcg_at_k(recs, targets, user_col="u", item_col="i") == pytest.approx(1 / LOG2_3)


def test_coverage():
    recs = recs_of({1: [7, 8, 9], 2: [7, 10, 11]})
    assert coverage_at_k(recs, k=1, catalog=10) == pytest.approx(0.1)
    assert coverage_at_k(recs, k=2, catalog=10) == pytest.approx(0.3)
    assert coverage_at_k(recs, k=2, catalog=pd.Index([7, 8, 10, 12])) == pytest.approx(0.75)
    # items outside the catalogue are not counted; duplicates in the catalogue are ignored
    assert coverage_at_k(recs, k=3, catalog=[7, 8, 8, 9, 12]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="catalog"):
        coverage_at_k(recs, k=2)
    with pytest.raises(ValueError, match="catalog"):
        coverage_at_k(recs, k=2, catalog=2)
    with pytest.raises(ValueError, match="catalog"):
        coverage_at_k(recs, k=2, catalog="abc")
    with pytest.raises(ValueError, match="catalog"):
        coverage_at_k(recs, k=2, catalog=[])


def test_evaluate_keys_and_values():
    recs = recs_of({1: list(range(20)), 2: list(range(5, 25))})
    targets = targets_of([(1, 12), (2, 5)])
    result = evaluate(recs, targets, catalog=100, ks=(10, 20))
    assert list(result) == ["ndcg@10", "recall@10", "coverage@10",
                            "ndcg@20", "recall@20", "coverage@20"]
    for k in (10, 20):
        assert result[f"ndcg@{k}"] == ndcg_at_k(recs, targets, k=k)
        assert result[f"recall@{k}"] == recall_at_k(recs, targets, k=k)
        assert result[f"coverage@{k}"] == coverage_at_k(recs, k=k, catalog=100)
    assert result["recall@10"] == 0.5 and result["recall@20"] == 1.0
    assert list(evaluate(recs, targets, catalog=100, ks=5)) == ["ndcg@5", "recall@5",
                                                                "coverage@5"]


def test_empty_recommendations_score_zero():
    recs = pd.DataFrame({"user_id": [], "item_id": [], "rank": []})
    targets = targets_of([(1, 2)])
    assert ndcg_at_k(recs, targets) == 0.0
    assert coverage_at_k(recs, catalog=5) == 0.0


def test_input_errors():
    recs = recs_of({1: [7, 8, 9]})
    targets = targets_of([(1, 9)])
    for bad_k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k must be"):
            ndcg_at_k(recs, targets, k=bad_k)
    with pytest.raises(ValueError, match=r"recommendations is missing column\(s\) \['item_id'\]"):
        recall_at_k(recs.drop(columns="item_id"), targets)
    with pytest.raises(ValueError, match=r"targets is missing column\(s\) \['user_id'\]"):
        ndcg_at_k(recs, targets.drop(columns="user_id"))
    with pytest.raises(ValueError, match="rank"):
        ndcg_at_k(recs.assign(rank=[1, np.nan, 3]), targets)
    with pytest.raises(ValueError, match="rank"):
        ndcg_at_k(recs.assign(rank=[0, 1, 2]), targets)
    with pytest.raises(ValueError, match="ks"):
        evaluate(recs, targets, catalog=10, ks=(10, 0))
    with pytest.warns(UserWarning, match="same user ids"):
        assert ndcg_at_k(recs.assign(user_id="1"), targets) == 0.0


class ShiftRecommender(BaseEstimator):
    """Recommends, after a history ending in item i, the items i+1+shift, i+2+shift, ..."""

    def __init__(self, shift=0, user_col="user_id", item_col="item_id", time_col="timestamp"):
        self.shift = shift
        self.user_col = user_col
        self.item_col = item_col
        self.time_col = time_col

    def fit(self, X, y=None):
        self.item_ids_ = pd.Index(np.arange(X[self.item_col].max() + 10))
        return self

    def recommend(self, histories=None, k=10):
        last = histories.sort_values(self.time_col, kind="stable") \
            .groupby(self.user_col)[self.item_col].last()
        return pd.DataFrame({
            self.user_col: np.repeat(last.index.to_numpy(), k),
            self.item_col: (np.repeat(last.to_numpy(), k) + np.tile(np.arange(1, k + 1), len(last))
                            + self.shift),
            "score": np.tile(-np.arange(k, dtype=float), len(last)),
            "rank": np.tile(np.arange(1, k + 1), len(last)),
        })

    def score(self, X, y=None):
        return make_scorer("ndcg", k=10)(self, X)


SMALL = pd.DataFrame({"user_id": [1, 1, 1, 1, 2, 2, 2],
                      "item_id": [1, 2, 3, 4, 10, 11, 13],
                      "timestamp": [1, 2, 3, 4, 1, 2, 3]})


def test_make_scorer_with_fake_estimator():
    est = ShiftRecommender().fit(SMALL)
    # user 1: target 4 at rank 1; user 2: target 13 at rank 2
    assert make_scorer()(est, SMALL) == pytest.approx((1 + 1 / LOG2_3) / 2)
    assert make_scorer("recall", k=1)(est, SMALL) == pytest.approx(0.5)
    # recommended items {4, 5, 12, 13} of a 23-item catalogue
    assert make_scorer("coverage", k=2)(est, SMALL) == pytest.approx(4 / 23)
    assert est.score(SMALL) == make_scorer()(est, SMALL)
    assert repr(make_scorer("recall", 5)) == "make_scorer(metric='recall', k=5)"


def test_make_scorer_uses_estimator_columns():
    X = SMALL.set_axis(["u", "i", "t"], axis=1)
    est = ShiftRecommender(user_col="u", item_col="i", time_col="t").fit(X)
    assert make_scorer()(est, X) == pytest.approx((1 + 1 / LOG2_3) / 2)


def test_make_scorer_with_pipeline():
    pipe = Pipeline([("drop", IdFilter(users=[2], exclude=True)),
                     ("rec", ShiftRecommender())]).fit(SMALL)
    assert make_scorer()(pipe, SMALL) == pytest.approx(1.0)
    # the recommender was fitted on user 1 only: a 14-item catalogue
    assert make_scorer("coverage", k=1)(pipe, SMALL) == pytest.approx(1 / 14)


def test_make_scorer_lists_give_dicts():
    scorers = make_scorer(["ndcg", "recall"], k=[1, 2])
    assert list(scorers) == ["ndcg@1", "ndcg@2", "recall@1", "recall@2"]
    est = ShiftRecommender().fit(SMALL)
    assert scorers["recall@2"](est, SMALL) == pytest.approx(1.0)
    assert list(make_scorer(["coverage"], k=5)) == ["coverage@5"]
    assert list(make_scorer("ndcg", k=[5, 10])) == ["ndcg@5", "ndcg@10"]


def test_make_scorer_errors():
    with pytest.raises(ValueError, match=r"Unknown metric 'map'.*'ndcg', 'recall', 'coverage'"):
        make_scorer("map")
    with pytest.raises(ValueError, match="k must be"):
        make_scorer("ndcg", k=0)
    with pytest.raises(ValueError, match="k must be"):
        make_scorer(["ndcg"], k=[10, 0])

    class NoCatalog(ShiftRecommender):
        def fit(self, X, y=None):
            return self

    with pytest.raises(AttributeError, match="item_ids_"):
        make_scorer("coverage")(NoCatalog().fit(SMALL), SMALL)


def test_grid_search_with_temporal_cv():
    # every user consumes consecutive items, so shift=0 is the perfect model
    rng = np.random.default_rng(0)
    n_users, length = 30, 6
    X = pd.DataFrame({
        "user_id": np.repeat(np.arange(n_users), length),
        "item_id": (rng.integers(0, 50, n_users)[:, None] + np.arange(length)).ravel(),
        "timestamp": (rng.integers(0, 100, n_users)[:, None] + 10 * np.arange(length)).ravel(),
    })
    search = GridSearchCV(ShiftRecommender(), {"shift": [1, 0]},
                          cv=GlobalTemporalSplit(quantile=[0.6, 0.7]),
                          scoring=make_scorer(["ndcg", "recall"], k=[1, 3]), refit="ndcg@1")
    search.fit(X)
    assert search.best_params_ == {"shift": 0}
    assert search.cv_results_["mean_test_recall@3"].tolist() == [0.0, 1.0]
    default = GridSearchCV(ShiftRecommender(), {"shift": [1, 0]}, cv=GlobalTemporalSplit()).fit(X)
    assert default.best_params_ == {"shift": 0}


def test_tied_ranks_are_an_error_not_an_ndcg_above_one():
    # two relevant items both at rank 1 used to give NDCG@1 = 2
    recs = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [7, 8, 7], "rank": [1, 1, 1]})
    targets = targets_of([(1, 7), (1, 8), (2, 7)])
    for metric in (ndcg_at_k, recall_at_k):
        with pytest.raises(ValueError, match=r"repeats a rank within a user in 1 row\(s\); "
                                             r"first at row 1 \(user 1, rank 1\)"):
            metric(recs, targets, k=1)
    with pytest.raises(ValueError, match="repeats a rank"):
        evaluate(recs.assign(user_id=1), targets, catalog=10, ks=(1,))
    # without the rank column the row order ranks them: 7 at 1, 8 at 2
    assert ndcg_at_k(recs.drop(columns="rank"), targets, k=1) == pytest.approx(1.0)
    assert ndcg_at_k(recs.drop(columns="rank"), targets, k=2) == pytest.approx(1.0)


def test_fractional_ranks_rejected():
    # ranks 1 and 1.5 would both fit in the top 2 ahead of an ideal list's second slot
    recs = pd.DataFrame({"user_id": [1, 1], "item_id": [7, 8], "rank": [1.0, 1.5]})
    with pytest.raises(ValueError, match="whole-number ranks"):
        ndcg_at_k(recs, targets_of([(1, 7), (1, 8)]), k=2)
    assert ndcg_at_k(recs.assign(rank=[1.0, 3.0]), targets_of([(1, 8)]), k=3) == \
        pytest.approx(0.5)


@pytest.mark.filterwarnings("ignore:No target user appears")
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6)), min_size=1, max_size=30),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6)), min_size=1, max_size=10),
       st.integers(1, 8), st.randoms(use_true_random=False))
def test_metrics_stay_in_unit_interval(pairs, truth, k, rnd):
    # any recommendation list (repeated items, gaps in ranks, users without targets)
    recs = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    recs["rank"] = recs.groupby("user_id").cumcount() + 1
    recs["rank"] += recs.groupby("user_id")["rank"].transform(lambda r: rnd.randint(0, 2) * r)
    recs = recs.sample(frac=1, random_state=rnd.randint(0, 100))
    targets = pd.DataFrame(truth, columns=["user_id", "item_id"])
    out = evaluate(recs, targets, catalog=7, ks=(k,))
    assert all(0.0 <= value <= 1.0 for value in out.values())


def test_single_interaction_users_are_left_out_with_a_count():
    lone = pd.DataFrame({"user_id": [3, 4, 5], "item_id": [1, 2, 3], "timestamp": [9, 9, 9]})
    est = ShiftRecommender().fit(SMALL)
    with pytest.warns(UserWarning, match=r"3 of 5 user\(s\) in X have a single interaction"):
        value = make_scorer()(est, pd.concat([SMALL, lone], ignore_index=True))
    # the same as scoring users 1 and 2 alone, not dragged towards 0 by users 3-5
    assert value == pytest.approx(make_scorer()(est, SMALL))
    with pytest.raises(ValueError, match=r"No user of X has two or more interactions.*3 user"):
        make_scorer("recall", k=5)(est, lone)


def test_score_of_real_estimator_ignores_one_event_users(synthetic):
    from skcreate import PopularRecommender

    model = PopularRecommender().fit(synthetic)
    normal = synthetic[synthetic.user_id < 50]
    rng = np.random.default_rng(0)
    lone = pd.DataFrame({"user_id": np.arange(1000, 1150),
                         "item_id": rng.choice(synthetic.item_id.unique(), 150),
                         "timestamp": 10**6})
    with pytest.warns(UserWarning, match=r"150 of 200 user\(s\)"):
        mixed = model.score(pd.concat([normal, lone]))
    assert mixed == pytest.approx(model.score(normal))
    with pytest.raises(ValueError, match="No user of X has two or more interactions"):
        model.score(lone)


def test_duplicated_target_rows_are_counted_in_a_warning():
    doubled = pd.concat([SMALL, SMALL.iloc[[3]]], ignore_index=True)
    est = ShiftRecommender().fit(SMALL)
    with pytest.warns(UserWarning, match=r"1 target\(s\) repeat a row of their user's history "
                                         r"exactly"):
        make_scorer()(est, doubled)
    # a repeat at another time is a new event, not a duplicate row
    later = pd.concat([SMALL, SMALL.iloc[[3]].assign(timestamp=5)], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_scorer()(est, later)


def test_infinite_rank_duplicate_rank_column_and_rank_as_id_column():
    recs = recs_of({1: [7, 8, 9]})
    targets = targets_of([(1, 9)])
    # inf equals its floor, so it passed as a whole-number rank and silently never counted
    with pytest.raises(ValueError, match="whole-number ranks"):
        ndcg_at_k(recs.assign(rank=[1, 2, np.inf]), targets)
    # two rank columns gave a raw AttributeError
    with pytest.raises(ValueError, match="several columns named 'rank'"):
        ndcg_at_k(pd.concat([recs, recs[["rank"]]], axis=1), targets)
    # the ids read as ranks gave a misleading "repeats a rank" error
    with pytest.raises(ValueError, match="user_col and item_col may not be 'rank'.*"
                                         "user_col='rank'"):
        recall_at_k(recs.assign(u=recs.user_id), targets.assign(rank=1), user_col="rank")


def test_catalog_with_missing_ids_is_an_error():
    # NaN used to count as a catalogue item, lowering coverage
    for missing in (np.nan, None):
        with pytest.raises(ValueError, match="catalog holds missing ids"):
            coverage_at_k(recs_of({1: [7, 8]}), k=2, catalog=[7, 8, missing])


def test_make_scorer_metric_type_and_non_recommenders():
    for metric in (None, 5):
        with pytest.raises(ValueError, match=r"metric must be one of \['ndcg'"):
            make_scorer(metric)
    pipe = Pipeline([("filter", IdFilter(users=[1]))]).fit(SMALL)
    # used to fail deep inside with "'IdFilter' object has no attribute 'recommend'"
    with pytest.raises(TypeError, match="scores recommenders .* got IdFilter"):
        make_scorer()(pipe, SMALL)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6)), min_size=1, max_size=30),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6)), min_size=1, max_size=10),
       st.integers(1, 6), st.randoms(use_true_random=False))
def test_recall_and_coverage_grow_with_k_and_ignore_row_order(pairs, truth, k, rnd):
    recs = pd.DataFrame(pairs, columns=["user_id", "item_id"])
    recs["rank"] = recs.groupby("user_id").cumcount() + 1
    targets = pd.DataFrame(truth, columns=["user_id", "item_id"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = evaluate(recs, targets, catalog=7, ks=(k, k + 1))
        shuffled = evaluate(recs.sample(frac=1, random_state=rnd.randint(0, 100)), targets,
                            catalog=7, ks=(k, k + 1))
    assert shuffled == out
    assert out[f"recall@{k + 1}"] >= out[f"recall@{k}"]
    assert out[f"coverage@{k + 1}"] >= out[f"coverage@{k}"]
