"""The fit / recommend / score contract, checked on every estimator."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_html_repr

from skcreate import (ALSRecommender, BPRRecommender, CREATERecommender, GraphRecommender,
                      LightGCNRecommender, PopRandomRecommender, PopularRecommender,
                      PureSVDRecommender, RandomRecommender, SASRecRecommender,
                      UltraGCNRecommender)
from skcreate.nn import Component, SASRecEncoder, UltraGCNEncoder

SMALL = {"n_factors": 8}
NEURAL = {"n_factors": 8, "epochs": 2, "batch_size": 64}
ESTIMATORS = [
    PopularRecommender(),
    RandomRecommender(random_state=0),
    PopRandomRecommender(random_state=0),
    PureSVDRecommender(random_state=0, **SMALL),
    ALSRecommender(random_state=0, iterations=3, num_threads=1, **SMALL),
    BPRRecommender(random_state=0, iterations=5, num_threads=1, **SMALL),
    LightGCNRecommender(random_state=0, n_layers=2, **NEURAL),
    UltraGCNRecommender(random_state=0, n_negatives=4, **NEURAL),
    GraphRecommender(UltraGCNEncoder(n_factors=8, n_negatives=4), random_state=0, epochs=2,
                     batch_size=64),
    SASRecRecommender(random_state=0, max_len=10, **NEURAL),
    CREATERecommender(random_state=0, sequence_encoder=SASRecEncoder(max_len=10), warmup_epochs=1,
                      **NEURAL),
]
IDS = [type(e).__name__ for e in ESTIMATORS]


def fit(est, frame):
    return clone(est).fit(frame)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_recommend_contract(est, synthetic):
    model = fit(est, synthetic)
    recs = model.recommend(k=5)
    assert list(recs.columns) == ["user_id", "item_id", "score", "rank"]
    # original ids, k rows per user, ranks 1..k, sorted by user then rank
    assert set(recs.item_id) <= set(synthetic.item_id)
    assert recs.groupby("user_id").size().eq(5).all()
    assert recs.user_id.nunique() == synthetic.user_id.nunique()
    assert recs.equals(recs.sort_values(["user_id", "rank"]))
    assert recs.groupby("user_id")["rank"].apply(list).map([1, 2, 3, 4, 5].__eq__).all()
    assert recs.groupby("user_id")["score"].apply(lambda s: s.is_monotonic_decreasing).all()
    # no seen items
    seen = synthetic.merge(recs, on=["user_id", "item_id"])
    assert seen.empty


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_same_seed_same_output_and_pickle_round_trip(est, synthetic):
    a = fit(est, synthetic)
    b = fit(est, synthetic)
    history = synthetic[synthetic.user_id < 20]
    recs = a.recommend(history, k=7)
    pd.testing.assert_frame_equal(recs, b.recommend(history, k=7))
    restored = pickle.loads(pickle.dumps(a))
    pd.testing.assert_frame_equal(recs, restored.recommend(history, k=7))


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_sklearn_api(est):
    cloned = clone(est)
    # a part passed as an object is cloned too: equal by class and parameters (the deep ones)
    assert {k: (type(v), v.get_params()) if isinstance(v, Component) else v
            for k, v in cloned.get_params().items()} == \
        {k: (type(v), v.get_params()) if isinstance(v, Component) else v
         for k, v in est.get_params().items()}
    assert repr(cloned).startswith(type(est).__name__)
    assert type(est).__name__ in estimator_html_repr(est)
    cloned.set_params(filter_seen=False)
    assert cloned.filter_seen is False and est.filter_seen is True
    with pytest.raises(NotFittedError):
        cloned.recommend(k=3)
    with pytest.raises(ValueError, match="Invalid parameter 'nonsense'"):
        cloned.set_params(nonsense=1)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_unseen_users_and_items(est, synthetic):
    model = fit(est, synthetic)
    item = synthetic.item_id.iloc[0]
    new = pd.DataFrame({"user_id": ["new-1", "new-1", "new-2"],
                        "item_id": [item, "never-seen", "never-seen"],
                        "timestamp": [1, 2, 1]})
    with pytest.warns(UserWarning) as caught:
        recs = model.recommend(new, k=4)
    messages = " ".join(str(w.message) for w in caught)
    assert "2 interaction(s) in histories have items unseen at fit" in messages
    assert "1 user(s) have no history item" in messages
    assert recs.groupby("user_id").size().to_dict() == {"new-1": 4, "new-2": 4}
    assert item not in set(recs[recs.user_id == "new-1"].item_id)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_score_is_ndcg_in_unit_interval(est, synthetic):
    model = fit(est, synthetic)
    value = model.score(synthetic[synthetic.user_id < 50])
    assert 0.0 <= value <= 1.0


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3"])
def test_bad_k(k, synthetic):
    model = PopularRecommender().fit(synthetic)
    with pytest.raises(ValueError, match=r"k must be an integer >= 1"):
        model.recommend(k=k)


def test_k_above_catalogue_returns_whole_catalogue(tiny):
    recs = PopularRecommender(filter_seen=False).fit(tiny).recommend(k=50)
    assert recs.groupby("user_id").item_id.apply(sorted).map(["w", "x", "y", "z"].__eq__).all()


def test_users_who_saw_almost_everything_get_fewer_rows(tiny):
    recs = PopularRecommender().fit(tiny).recommend(k=2)
    # a saw x, y, w and b saw x, z, w: one unseen item each
    assert recs.groupby("user_id").item_id.apply(list).to_dict() == {"a": ["z"], "b": ["y"]}
    unfiltered = PopularRecommender(filter_seen=False).fit(tiny).recommend(k=4)
    assert unfiltered.groupby("user_id").size().eq(4).all()


def test_popular_hand_computed(tiny):
    recs = PopularRecommender(filter_seen=False).fit(tiny).recommend(tiny[tiny.user_id == "a"],
                                                                     k=2)
    # x and w have two interactions each, more than any other item
    assert set(recs.item_id) == {"w", "x"}
    assert recs.score.tolist() == [2.0, 2.0]


def test_custom_columns(tiny):
    renamed = tiny.rename(columns={"user_id": "u", "item_id": "i", "timestamp": "t"})
    model = PopularRecommender(user_col="u", item_col="i", time_col="t").fit(renamed)
    recs = model.recommend(k=1)
    assert list(recs.columns) == ["u", "i", "score", "rank"]
    assert 0 <= model.score(renamed) <= 1


def test_missing_column_error_names_parameter(tiny):
    with pytest.raises(ValueError, match=r"missing column\(s\) \['time'\]"):
        PopularRecommender(time_col="time").fit(tiny)


def test_histories_validated(synthetic):
    model = PopularRecommender().fit(synthetic)
    with pytest.raises(ValueError, match=r"histories is missing column\(s\) \['timestamp'\]"):
        model.recommend(synthetic.drop(columns="timestamp"))


def test_poprandom_follows_popularity(synthetic):
    model = PopRandomRecommender(random_state=1).fit(synthetic)
    recs = model.recommend(k=5)
    popularity = synthetic.item_id.value_counts()
    # sampled items are on average far more popular than uniform draws
    assert popularity.reindex(recs.item_id).mean() > 1.5 * popularity.mean()
    other = PopRandomRecommender(random_state=2).fit(synthetic).recommend(k=5)
    assert not recs.item_id.equals(other.item_id)


def test_puresvd_folds_in_exactly(synthetic):
    model = PureSVDRecommender(n_factors=6, random_state=0, filter_seen=False).fit(synthetic)
    user = synthetic[synthetic.user_id == 3]
    codes = model.item_ids_.get_indexer(user.item_id.unique())
    x = np.zeros(model.n_items_)
    x[codes] = 1
    expected = x @ model.item_factors_ @ model.item_factors_.T
    recs = model.recommend(user, k=3)
    np.testing.assert_allclose(recs.score, np.sort(expected)[::-1][:3], rtol=1e-4)


def test_als_fold_in_matches_fitted_factors(synthetic):
    model = ALSRecommender(n_factors=8, iterations=10, regularization=0.1, random_state=0,
                           num_threads=1).fit(synthetic)
    user = synthetic[synthetic.user_id == 7]
    folded = model._user_factors(model._encode_histories(user), np.array([0]))
    # after convergence a user's fold-in is close to its fitted factor
    fitted = model.user_factors_[model.interactions_.user_ids.get_loc(7)]
    cos = folded[0] @ fitted / np.linalg.norm(folded[0]) / np.linalg.norm(fitted)
    assert cos > 0.95


def test_parameter_errors(synthetic):
    with pytest.raises(ValueError, match="n_factors must be in"):
        PureSVDRecommender(n_factors=1000).fit(synthetic)
    with pytest.raises(ValueError, match=r"'n_factors' parameter of ALSRecommender must be an "
                                         r"int in the range \[1, inf\)"):
        ALSRecommender(n_factors=0).fit(synthetic)
    with pytest.raises(ValueError, match="'learning_rate' parameter of SASRecRecommender must "
                                         r"be a float in the range \(0.0, inf\)"):
        SASRecRecommender(learning_rate=-1).fit(synthetic)
    with pytest.raises(ValueError, match="loss must be one of"):
        SASRecRecommender(loss="bpr").fit(synthetic)
    with pytest.raises(ValueError, match="n_heads"):
        SASRecRecommender(n_factors=10, n_heads=3).fit(synthetic)
    with pytest.raises(ValueError, match="'graph_last_frac' parameter of LightGCNRecommender"):
        LightGCNRecommender(graph_last_frac=1.5).fit(synthetic)


def test_no_warning_on_fitted_recommend(synthetic):
    model = PopularRecommender().fit(synthetic)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.recommend(k=3)


def test_grid_search_als_on_ml100k(ml100k):
    from sklearn.model_selection import GridSearchCV

    from skcreate import GlobalTemporalSplit

    grid = {"n_factors": [8, 32], "regularization": [0.01, 10.0]}
    search = GridSearchCV(ALSRecommender(iterations=5, random_state=0), grid,
                          cv=GlobalTemporalSplit(quantile=[0.7, 0.8]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        search.fit(ml100k)
    results = pd.DataFrame(search.cv_results_)
    assert len(results) == 4 and {"split0_test_score", "split1_test_score"} <= set(results)
    assert results.mean_test_score.between(0, 1).all()
    assert results.mean_test_score.nunique() > 1
    assert search.best_params_ == results.loc[results.rank_test_score.idxmin(), "params"]
    assert search.best_score_ == results.mean_test_score.max()
    assert search.best_estimator_.n_factors == search.best_params_["n_factors"]


def test_pipeline_with_preprocessing_fits_and_scores(ml100k):
    from sklearn.pipeline import make_pipeline

    from skcreate import GlobalTemporalSplit
    from skcreate.data.preprocessing import MinInteractionsFilter

    train_idx, test_idx = next(GlobalTemporalSplit(0.8).split(ml100k))
    train, test = ml100k.iloc[train_idx], ml100k.iloc[test_idx]
    pipe = make_pipeline(MinInteractionsFilter(10, 10), ALSRecommender(iterations=5,
                                                                       random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pipe.fit(train)
        value = pipe.score(test)
    kept = pipe[0].items_
    assert set(pipe[-1].item_ids_) == set(kept) and len(kept) < train.item_id.nunique()
    assert 0 < value <= 1


def test_command_line_comparison(capsys, shared_data):
    from skcreate.__main__ import main

    assert main(["compare", "--dataset", "ml-100k", "--data-home", str(shared_data),
                 "--models", "Popular,ALS"]) == 0
    out = capsys.readouterr().out
    assert "| Popular |" in out and "| ALS |" in out and "ndcg@10" in out


def test_command_line_falls_back_to_synthetic(capsys, tmp_path):
    from skcreate.__main__ import main

    main(["compare", "--dataset", "ml-1m", "--data-home", str(tmp_path), "--models", "Popular",
          "--no-download"])
    captured = capsys.readouterr()
    assert "using the synthetic data set" in captured.err
    assert captured.out.startswith("\nsynthetic")


NON_NEURAL = ESTIMATORS[:6]
NON_NEURAL_IDS = IDS[:6]


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("param, value", [("filter_seen", "no"), ("filter_seen", 1),
                                          ("random_state", "seed"), ("user_col", ["user_id"])])
def test_shared_parameters_validated_by_name(est, param, value, tiny):
    if param not in est.get_params():
        return
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of {type(est).__name__}"):
        clone(est).set_params(**{param: value}).fit(tiny)


@pytest.mark.parametrize("est", [ALSRecommender(), BPRRecommender()], ids=["ALS", "BPR"])
@pytest.mark.parametrize("param, value", [
    ("n_factors", 8.0), ("n_factors", 0), ("regularization", "x"), ("regularization", -1.0),
    ("iterations", np.inf), ("iterations", 2.5), ("num_threads", -3), ("num_threads", 1.0),
])
def test_implicit_parameters_validated_before_implicit_runs(est, param, value, tiny):
    # num_threads=-3 used to reach OpenMP as 2**32 - 3 threads and kill the interpreter
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of {type(est).__name__} "
                                         r"must be"):
        clone(est).set_params(**{param: value}).fit(tiny)


@pytest.mark.parametrize("est, param", [(ALSRecommender(), "alpha"),
                                        (BPRRecommender(), "learning_rate")], ids=["ALS", "BPR"])
@pytest.mark.parametrize("value", [np.nan, np.inf, 0.0, "1"])
def test_implicit_step_parameters_validated(est, param, value, tiny):
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of {type(est).__name__}"):
        clone(est).set_params(**{param: value}).fit(tiny)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("est, param", [(ALSRecommender(), "alpha"),
                                        (BPRRecommender(), "learning_rate")], ids=["ALS", "BPR"])
def test_implicit_divergence_names_the_parameters(est, param, synthetic):
    big = clone(est).set_params(**{param: 1e300}, n_factors=4, iterations=2, random_state=0)
    with pytest.raises(ValueError, match=rf"{type(est).__name__} diverged \(NaN encountered in "
                                         rf"factors\) with {param}=1e\+300, regularization=0.01"):
        big.fit(synthetic)


def test_parameters_a_subclass_does_not_declare_are_skipped(tiny):
    class Weighted(PopularRecommender):
        def __init__(self, weight=1.0, filter_seen=True, user_col="user_id",
                     item_col="item_id", time_col="timestamp"):
            super().__init__(filter_seen, user_col, item_col, time_col)
            self.weight = weight

    # undeclared: any value passes the constraints; declared ones are still checked
    assert Weighted(weight="anything").fit(tiny).recommend(k=1)["rank"].eq(1).all()
    with pytest.raises(ValueError, match="The 'filter_seen' parameter of Weighted"):
        Weighted(filter_seen="False").fit(tiny)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_tags_match_what_fit_accepts(est, tiny):
    tags = est.__sklearn_tags__()
    assert not tags.input_tags.two_d_array
    assert tags.input_tags.string and tags.input_tags.categorical
    with pytest.raises(TypeError, match="must be a pandas \\(or polars\\) DataFrame"):
        clone(est).fit(tiny.to_numpy())


def _changed(value):
    """Another valid value of a parameter."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2
    return value


@pytest.mark.parametrize("est", NON_NEURAL, ids=NON_NEURAL_IDS)
def test_set_params_after_fit_changes_nothing_served(est, synthetic):
    model = fit(est, synthetic)
    history = synthetic[synthetic.user_id < 30]
    before = model.recommend(history, k=5), model.recommend(k=5), model.score(history)
    columns = {"user_col", "item_col", "time_col"}
    changes = {name: _changed(value) for name, value in model.get_params().items()
               if name not in columns}
    if "random_state" in changes:
        changes["random_state"] = 12345
    model.set_params(**changes)
    assert model.filter_seen is not est.filter_seen
    after = model.recommend(history, k=5), model.recommend(k=5), model.score(history)
    pd.testing.assert_frame_equal(before[0], after[0])
    pd.testing.assert_frame_equal(before[1], after[1])
    assert before[2] == after[2]


def test_puresvd_needs_two_users_and_two_items(tiny):
    with pytest.raises(ValueError, match=r"PureSVD needs at least 2 users and 2 items.*1 user"):
        PureSVDRecommender(n_factors=1).fit(tiny[tiny.user_id == "a"])
